"""Long films (issue 24): a segment is reached by seeking to its first frame's timestamp, not by
decoding from frame 0; the plan is made once per job; the job key follows the content, the
precision and the device; segments made differently are not joined (issue 23)."""
from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from pervfi.cli import main
from pervfi.media.audio import stream_duration
from pervfi.media.frame_files import list_frames
from pervfi.media.sources import video_sequence
from pervfi.media.video import DecodeCount
from pervfi.runtime.parallel import jobs
from pervfi.runtime.parallel.jobs import job_key, plan_segments
from pervfi.runtime.sequence import Settings, Span
from tests.media import frame_times, moving_frames, read_png, write_vfr_video, write_video

METHOD = "dis+splat"
GOP = 8  # keyframe interval of the clips: a seek decodes at most this many frames too many


@pytest.fixture(scope="module")
def ntsc_clip(tmp_path_factory) -> Path:
    """40 frames converted to 30000/1001 fps, H.264 with B-frames, with AAC audio: what made
    ffmpeg-based seeking land one frame off."""
    folder = tmp_path_factory.mktemp("film")
    source = write_video(folder / "source.mp4", moving_frames(40, 48, 64), fps=30)
    path = folder / "ntsc.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=44100:duration=1.4", "-map", "0:v", "-map", "1:a",
                    "-r", "30000/1001", "-c:v", "libx264", "-bf", "3", "-g", str(GOP), "-pix_fmt", "yuv444p",
                    "-crf", "0", "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory) -> Path:
    times = [round(k * 1000 / 30) for k in range(44) if k not in (5, 6, 17, 30)]
    return write_vfr_video(tmp_path_factory.mktemp("vfr") / "vfr.mp4", moving_frames(40, 48, 64), times,
                           round(44 * 1000 / 30), gop=GOP)


@pytest.mark.parametrize("clip", ["ntsc_clip", "vfr_clip"])
def test_a_span_is_reached_by_seeking_to_its_exact_frames(clip, request):
    sequence = video_sequence(request.getfixturevalue(clip)).with_times()
    whole = list(sequence.frames())
    assert len(whole) == sequence.frame_count == 40
    for start, stop in [(1, 3), (9, 17), (17, 18), (23, 39), (33, None)]:
        before = DecodeCount.frames
        part = list(sequence.frames(start, stop))
        expected = whole[start:None if stop is None else stop + 1]
        assert len(part) == len(expected), (start, stop)
        for index, (got, want) in enumerate(zip(part, expected), start):
            np.testing.assert_array_equal(got, want, err_msg=f"frame {index}")
        # decoded: the span, plus at most a keyframe interval before it (and the decoder's delay)
        assert DecodeCount.frames - before <= len(expected) + GOP + 4, (start, stop)


def _pngs(out: Path, name: str) -> dict[str, np.ndarray]:
    return {path.name: read_png(path) for path in list_frames(out / name / f"{name}-{METHOD}-frames")}


@pytest.mark.parametrize("clip", ["ntsc_clip", "vfr_clip"])
def test_the_segments_of_shards_give_the_one_process_frames(clip, request, tmp_path, capsys):
    path = request.getfixturevalue(clip)
    common = ["-m", METHOD, "-data", str(path), "--png", "--scene-cut", "off", "--quiet"]
    assert main([*common, "-s", str(tmp_path / "one")]) == 0
    shards = [*common, "-s", str(tmp_path / "split"), "--segment-frames", "10"]
    for index in range(4):
        assert main([*shards, "--shard", f"{index}/4"]) == 0
    assert main([*shards, "--merge"]) == 0, capsys.readouterr().err
    one, split = _pngs(tmp_path / "one", path.stem), _pngs(tmp_path / "split", path.stem)
    assert len(one) == 79 and sorted(split) == sorted(one)
    for name, frame in one.items():
        np.testing.assert_array_equal(split[name], frame, err_msg=name)
    videos = [folder / path.stem / f"{path.stem}-{METHOD}.mp4" for folder in (tmp_path / "one", tmp_path / "split")]
    np.testing.assert_allclose(frame_times(videos[1]), frame_times(videos[0]), atol=1e-3)
    for kind in ("video", "audio"):
        assert abs(stream_duration(videos[1], kind) - stream_duration(videos[0], kind)) < 1e-3, kind


def test_the_plan_is_made_once_while_the_others_wait(tmp_path, ntsc_clip, monkeypatch):
    sequence = video_sequence(ntsc_clip)
    scans = []
    real_scan = jobs.scan

    def slow_scan(*args):
        scans.append(1)
        return real_scan(*args)

    monkeypatch.setattr(jobs, "scan", slow_scan)
    plans = []
    workers = [threading.Thread(target=lambda: plans.append(plan_segments(sequence, Settings(), tmp_path / "job", 10)))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(scans) == 1 and len(plans) == 4
    assert all([s.span for s in plan] == [Span(0, 10), Span(10, 20), Span(20, 30), Span(30)] for plan in plans)
    assert all(plan[0].sequence.times == plans[0][0].sequence.times for plan in plans)  # the times come with it


def test_the_job_key_follows_the_content_not_the_path_or_the_file_time(tmp_path, ntsc_clip):
    model = {"method": METHOD, "precision": None}
    base = job_key(video_sequence(ntsc_clip), Settings(), model, 10, "auto")
    copy = tmp_path / "elsewhere" / ntsc_clip.name
    copy.parent.mkdir()
    shutil.copyfile(ntsc_clip, copy)  # another path, a newer file time: another machine's copy
    assert job_key(video_sequence(copy), Settings(), model, 10, "auto") == base
    assert job_key(video_sequence(copy), Settings(), {**model, "precision": "bf16"}, 10, "auto") != base
    assert job_key(video_sequence(copy), Settings(), model, 10, "cuda") != base
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte of the picture, same size
    copy.write_bytes(bytes(data))
    assert job_key(video_sequence(copy), Settings(), model, 10, "auto") != base


def test_a_merge_refuses_segments_made_with_different_precisions(tmp_path, ntsc_clip, capsys):
    common = ["-m", METHOD, "-data", str(ntsc_clip), "-s", str(tmp_path), "--scene-cut", "off", "--quiet",
              "--segment-frames", "20"]
    for index in range(2):
        assert main([*common, "--shard", f"{index}/2"]) == 0
    reports = sorted(tmp_path.glob(f"{ntsc_clip.stem}/.parallel-*/seg-*/report.json"))
    assert [json.loads(path.read_text())["made_with"] for path in reports] == ["fp32 on cpu"] * 2
    counts = json.loads(reports[1].read_text())
    reports[1].write_text(json.dumps({**counts, "made_with": "bf16 on cuda"}))  # as a GPU machine's shard would
    capsys.readouterr()
    assert main([*common, "--merge"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "fp32 on cpu" in line and "bf16 on cuda" in line and "not joined" in line
    assert not (tmp_path / ntsc_clip.stem / f"{ntsc_clip.stem}-{METHOD}.mp4").exists()



def test_missing_weights_are_fetched_by_one_process_while_the_others_wait(tmp_path, monkeypatch, ntsc_clip):
    fcntl = pytest.importorskip("fcntl")
    import pervfi.runtime.parallel as parallel

    seen = []

    def fetch(models, folder):  # another process trying the lock now would have to wait
        with (Path(folder) / ".download.lock").open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                seen.append("free")
            except BlockingIOError:
                seen.append("held")
        raise RuntimeError("stop here")

    monkeypatch.setattr(parallel, "require_checkpoints", fetch)
    with pytest.raises(RuntimeError, match="stop here"):
        parallel.run_parallel([video_sequence(ntsc_clip)], tmp_path / "out", METHOD, Settings(),
                              {"method": METHOD, "checkpoint_dir": str(tmp_path / "ckpt")}, shard="0/2")
    assert seen == ["held"]
