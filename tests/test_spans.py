"""Segments of a sequence give the frames the whole run gives: v00's noise is drawn per output
frame from (seed, frame number), and spans share their boundary frames (issue 17)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pervfi.media.frame_files import list_frames
from pervfi.media.sources import frame_sequence, video_sequence
from pervfi.runtime.interpolator import Interpolator
from pervfi.runtime.sequence import SequenceRun, Settings, Span, noise_seed
from tests.media import moving_frames, read_png, write_frames, write_video


def _pngs(save: Path, name: str) -> dict[str, np.ndarray]:
    return {path.name: read_png(path) for path in list_frames(save / name / f"{name}-m-frames")}


def _run(interpolator, sequence, save: Path, settings: Settings, spans: list[Span]) -> dict[str, np.ndarray]:
    frames: dict[str, np.ndarray] = {}
    for index, span in enumerate(spans):
        SequenceRun(interpolator, sequence, save / str(index), "m", settings, span=span).run()
        found = _pngs(save / str(index), sequence.name)
        assert not set(found) & set(frames), "two spans wrote the same output frame"
        frames.update(found)
    return frames


@pytest.fixture(scope="module")
def v00(ckpt_dir) -> Interpolator:
    return Interpolator.from_method("dis+pervfi", checkpoint_dir=str(ckpt_dir), device="cpu", download=False)


def test_seeded_v00_spans_reproduce_the_whole_run(tmp_path, v00, ckpt_dir):
    write_frames(tmp_path / "seq", moving_frames(5, 32, 40))
    sequence = frame_sequence(tmp_path / "seq", "seq")
    settings = Settings(scale=3, png=True, seed=7, quiet=True, scene_cut="off")
    whole = _run(v00, sequence, tmp_path / "whole", settings, [Span()])
    assert sorted(whole) == [f"{index:08d}.png" for index in range(13)]
    split = _run(v00, sequence, tmp_path / "split", settings, [Span(0, 2), Span(2, 3), Span(3)])
    assert sorted(split) == sorted(whole)
    for name, frame in whole.items():
        np.testing.assert_array_equal(split[name], frame, err_msg=name)
    # Pairs batched through the model draw each frame's own noise too: what differs is float
    # rounding of batched convolutions (a level here and there; other noise moves every pixel).
    batched = Interpolator.from_method("dis+pervfi", checkpoint_dir=str(ckpt_dir), device="cpu", download=False,
                                       batch=3)
    for name, frame in _run(batched, sequence, tmp_path / "batched", settings, [Span(1)]).items():
        difference = np.abs(frame.astype(int) - whole[name])
        assert difference.max() <= 1 and (difference > 0).mean() < 0.01, name
    # The noise matters: another seed moves the interpolated frames, not the source frames.
    other = _run(v00, sequence, tmp_path / "other", Settings(scale=3, png=True, seed=8, quiet=True,
                                                             scene_cut="off"), [Span(2)])
    assert np.array_equal(other["00000006.png"], whole["00000006.png"])
    assert not np.array_equal(other["00000007.png"], whole["00000007.png"])


def test_a_video_span_with_a_target_rate_numbers_its_frames_globally(tmp_path, v00):
    path = write_video(tmp_path / "clip.mp4", moving_frames(6, 32, 40), fps=10)
    sequence = video_sequence(path)
    # 10 -> 25 fps: output times do not fall on source frames, except every second one.
    settings = Settings(target_fps=Fraction(25), png=True, seed=1, quiet=True, scene_cut="off")
    whole = _run(v00, sequence, tmp_path / "whole", settings, [Span()])
    split = _run(v00, sequence, tmp_path / "split", settings, [Span(0, 3), Span(3)])
    assert len(whole) == 15 and sorted(split) == sorted(whole)
    for name, frame in whole.items():
        np.testing.assert_array_equal(split[name], frame, err_msg=name)


def test_noise_seeds_differ_per_frame_and_per_seed():
    seeds = {noise_seed(seed, index) for seed in range(3) for index in range(100)}
    assert len(seeds) == 300 and all(0 <= seed < 2**63 for seed in seeds)
    assert noise_seed(5, 17) == noise_seed(5, 17)


def test_span_bounds_are_checked():
    with pytest.raises(ValueError, match="start < stop"):
        Span(3, 3)
    with pytest.raises(ValueError, match="start < stop"):
        Span(-1)
