"""The pipeline streams: memory stays flat in the number of frames, each pair is estimated once."""
from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import pytest
from pervfi.interpolator import Interpolator
from pervfi.io.pipeline import SequenceRun, Settings
from pervfi.io.sources import video_sequence
from tests.doubles import Blend, CountingZeroFlow
from tests.media import video_frames, write_video


def _clip(path: Path, count: int, height: int = 360, width: int = 640) -> Path:
    rng = np.random.default_rng(0)
    base = (rng.random((height, width + count, 3)) * 255).astype(np.uint8)
    return write_video(path, [np.ascontiguousarray(base[:, i:i + width]) for i in range(count)], fps=25)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_sequence_length(tmp_path):
    short, long = _clip(tmp_path / "short.mp4", 30), _clip(tmp_path / "long.mp4", 300)
    settings = Settings(scale=2, quiet=True, scene_cut="off")
    flow = CountingZeroFlow()
    interpolator = Interpolator(flow, Blend(), device="cpu")
    SequenceRun(interpolator, video_sequence(short), tmp_path / "out", "test", settings).run()
    after_short = _peak_rss_mb()
    report = SequenceRun(interpolator, video_sequence(long), tmp_path / "out", "test", settings).run()
    growth = _peak_rss_mb() - after_short
    assert report.frames_written == 599
    assert flow.pairs == 29 + 299  # each pair's flows once
    # Holding the 300 decoded frames alone would take 300 × 0.69 MB = 207 MB.
    assert growth < 40, f"peak memory grew by {growth:.0f} MB from 30 to 300 frames"


def test_each_pair_is_estimated_once_for_all_its_times(tmp_path):
    clip = _clip(tmp_path / "c.mp4", 4, 32, 48)
    flow = CountingZeroFlow()
    settings = Settings(scale=4, quiet=True, scene_cut="off", png=True)
    report = SequenceRun(Interpolator(flow, Blend(), device="cpu"), video_sequence(clip), tmp_path / "out", "m",
                         settings).run()
    assert flow.pairs == 3 and report.frames_written == 13
    meta, frames = video_frames(report.video)
    assert len(frames) == 13 and meta["fps"] == 100
