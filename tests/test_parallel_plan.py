"""Planning segments (cuts, even lengths, duplicates), naming devices and shares, the job key."""
from __future__ import annotations

import pytest
import torch

from pervfi.core.errors import PerVFIError
from pervfi.media.sources import frame_sequence
from pervfi.runtime.parallel import jobs
from pervfi.runtime.parallel.devices import Share, parse_devices, parse_shard, torchrun_share
from pervfi.runtime.parallel.jobs import job_key, plan_segments
from pervfi.runtime.parallel.plan import SequenceScan, scan, segments
from pervfi.runtime.sequence import Settings, Span
from tests.media import moving_frames, texture, write_frames
from tests.test_video_features import _shapes


def test_even_segments_share_their_boundary_frames():
    found = SequenceScan(10, tuple(range(10)), frozenset())
    assert segments(found, 3) == [Span(0, 3), Span(3, 6), Span(6)]  # the last frame alone makes no span
    assert segments(found, 100) == [Span(0)]


def test_a_segment_ends_at_the_nearest_scene_cut_within_half_a_length():
    found = SequenceScan(30, tuple(range(30)), frozenset({2, 8, 10, 24}))
    # 2 is too early (< 6/2); 8 is nearer 6 than 10; from 8 no cut in 11..17: 14; then 24 (in 17..23? no): 20;
    # from 20 the cut at 24 is the one in 23..29.
    assert segments(found, 6) == [Span(0, 8), Span(8, 14), Span(14, 20), Span(20, 24), Span(24)]


def test_boundaries_fall_on_key_frames_only():
    # frames 3, 4 and 5 duplicate frame 2: the whole run never starts an interval there
    found = SequenceScan(9, (0, 1, 2, 6, 7, 8), frozenset())
    spans = segments(found, 3)
    assert [span.start for span in spans] == [0, 6]
    assert all(span.start in found.keys for span in spans)


def test_scan_finds_cuts_and_duplicates_as_the_pipeline_does(tmp_path):
    first, second = moving_frames(4, 48, 64), [_shapes(index) for index in range(3)]
    write_frames(tmp_path / "seq", first + [first[-1]] + second)
    sequence = frame_sequence(tmp_path / "seq", "seq")
    found = scan(sequence, Settings(dedup=True))
    assert found.frame_count == 8
    assert found.keys == (0, 1, 2, 3, 5, 6, 7)  # frame 4 repeats frame 3
    assert found.cuts == {5}
    assert scan(sequence, Settings(scene_cut="off")).keys == tuple(range(8))


def test_the_job_key_follows_what_changes_the_output(tmp_path):
    write_frames(tmp_path / "seq", moving_frames(3, 16, 16))
    sequence = frame_sequence(tmp_path / "seq", "seq")
    model = {"method": "dis+splat"}
    base = job_key(sequence, Settings(), model, 10)
    assert job_key(sequence, Settings(quiet=True), model, 10) == base
    assert job_key(sequence, Settings(seed=1), model, 10) != base
    assert job_key(sequence, Settings(), {"method": "dis+pervfi"}, 10) != base
    assert job_key(sequence, Settings(), model, 11) != base
    write_frames(tmp_path / "seq", [texture(16, 16, seed=4)], ["00001.png"])  # the source changed
    assert job_key(frame_sequence(tmp_path / "seq", "seq"), Settings(), model, 10) != base


def test_the_plan_is_saved_and_read_back(tmp_path, monkeypatch):
    write_frames(tmp_path / "seq", moving_frames(7, 16, 16))
    sequence = frame_sequence(tmp_path / "seq", "seq")
    settings = Settings(scale=3, scene_cut="off")
    planned = plan_segments(sequence, settings, tmp_path / "job", 2)
    assert [segment.span for segment in planned] == [Span(0, 2), Span(2, 4), Span(4)]
    assert [segment.outputs for segment in planned] == [range(0, 6), range(6, 12), range(12, 19)]  # (7 − 1)·3 + 1
    assert (tmp_path / "job" / "plan.json").is_file()
    monkeypatch.setattr(jobs, "scan", lambda *args: pytest.fail("rescanned"))
    again = plan_segments(sequence, settings, tmp_path / "job", 2)
    assert [segment.span for segment in again] == [segment.span for segment in planned]


def test_devices_and_shares_are_parsed():
    assert parse_devices("cpu,cpu") == [torch.device("cpu")] * 2
    for text, message in [("", "at least one"), ("tpu", "unknown device|unsupported"),
                          ("cuda:0,cuda:0" if torch.cuda.is_available() else "cuda:0", "twice|not available")]:
        with pytest.raises(PerVFIError, match=message):
            parse_devices(text)
    if not torch.cuda.is_available():
        with pytest.raises(PerVFIError, match="no CUDA device"):
            parse_devices("all")
    assert parse_shard("1/4") == Share(1, 4)
    assert [n for n in range(9) if Share(1, 4).picks(n)] == [1, 5]
    for text in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(PerVFIError, match="--shard"):
            parse_shard(text)


def test_torchrun_environment_gives_the_share(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert torchrun_share() is None
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    assert torchrun_share() == Share(3, 4)
