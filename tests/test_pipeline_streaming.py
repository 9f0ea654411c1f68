"""The pipeline streams: memory stays flat in the number of frames, each pair is estimated once."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pervfi.core.errors import NonFiniteOutputError
from pervfi.media.sources import video_sequence
from pervfi.runtime.interpolator import Interpolator
from pervfi.runtime.sequence import SequenceRun, Settings
from tests.doubles import Blend, CountingZeroFlow, NaNBlend
from tests.media import video_frames, write_video

ROOT = Path(__file__).resolve().parents[1]


def _clip(path: Path, count: int, height: int = 360, width: int = 640) -> Path:
    rng = np.random.default_rng(0)
    base = (rng.random((height, width + count, 3)) * 255).astype(np.uint8)
    return write_video(path, [np.ascontiguousarray(base[:, i:i + width]) for i in range(count)], fps=25)


# Runs one sequence in a fresh interpreter and prints the frames written, the pairs estimated and
# the program's peak resident memory in MB. VmHWM, not ru_maxrss: ru_maxrss survives exec, so it
# would include the parent's size when it forked (which grows with the clip it just made).
_RUN_AND_MEASURE = """
import sys
from pathlib import Path
from pervfi.runtime.interpolator import Interpolator
from pervfi.runtime.sequence import SequenceRun, Settings
from pervfi.media.sources import video_sequence
from tests.doubles import Blend, CountingZeroFlow
flow = CountingZeroFlow()
settings = Settings(scale=2, quiet=True, scene_cut="off")
report = SequenceRun(Interpolator(flow, Blend(), device="cpu"), video_sequence(Path(sys.argv[1])),
                     Path(sys.argv[2]), "test", settings).run()
peak_kb = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(report.frames_written, flow.pairs, int(peak_kb) / 1024)
"""


def _run_in_own_process(clip: Path, out: Path) -> tuple[int, int, float]:
    result = subprocess.run([sys.executable, "-c", _RUN_AND_MEASURE, str(clip), str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    frames, pairs, peak = result.stdout.split()
    return int(frames), int(pairs), float(peak)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="peak memory is read from /proc (Linux)")
def test_peak_memory_does_not_grow_with_the_sequence_length(tmp_path):
    # Each run's peak is measured in its own process, so neither the other run nor making the
    # clips counts. Holding the long clip's 200 decoded frames alone would take 200 × 0.69 MB.
    short_frames, short_pairs, short_peak = _run_in_own_process(_clip(tmp_path / "short.mp4", 20), tmp_path / "a")
    long_frames, long_pairs, long_peak = _run_in_own_process(_clip(tmp_path / "long.mp4", 200), tmp_path / "b")
    assert (short_frames, long_frames) == (39, 399)
    assert (short_pairs, long_pairs) == (19, 199)  # each pair's flows once
    growth = long_peak - short_peak
    assert growth < 40, f"peak memory grew by {growth:.0f} MB from 20 to 200 frames ({short_peak:.0f} → {long_peak:.0f} MB)"


def test_each_pair_is_estimated_once_for_all_its_times(tmp_path):
    clip = _clip(tmp_path / "c.mp4", 4, 32, 48)
    flow = CountingZeroFlow()
    settings = Settings(scale=4, quiet=True, scene_cut="off", png=True)
    report = SequenceRun(Interpolator(flow, Blend(), device="cpu"), video_sequence(clip), tmp_path / "out", "m",
                         settings).run()
    assert flow.pairs == 3 and report.frames_written == 13
    meta, frames = video_frames(report.video)
    assert len(frames) == 13 and meta["fps"] == 100


def test_a_frame_of_nan_is_an_error_not_a_black_frame(tmp_path):
    """NaN would become black pixels silently; the run stops with the way out and leaves no video."""
    clip = _clip(tmp_path / "c.mp4", 4, 32, 48)
    run = SequenceRun(Interpolator(CountingZeroFlow(), NaNBlend(), device="cpu"), video_sequence(clip), tmp_path / "out",
                      "m", Settings(scale=2, quiet=True, scene_cut="off", png=True))
    with pytest.raises(NonFiniteOutputError, match="NaN or infinite values .* run with --precision fp32"):
        run.run()
    assert not [path for path in (tmp_path / "out").rglob("*") if path.suffix in (".mp4", ".png")]
