"""What the README promises about the tool that no other test covers: `--device auto`'s order,
`--quiet`, and the audio left out (with a warning) when `-fps` turns a video into slow motion."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch

from pervfi.media.audio import has_audio
from pervfi.media.sources import video_sequence
from pervfi.runtime.device import resolve_device
from pervfi.runtime.interpolator import Interpolator
from pervfi.runtime.sequence import SequenceRun, Settings
from tests.doubles import Blend, CountingZeroFlow
from tests.media import moving_frames, write_frames

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("cuda, mps, expected", [
    (True, True, "cuda"), (False, True, "mps"), (False, False, "cpu"), (True, False, "cuda"),
])
def test_device_auto_takes_cuda_then_mps_then_the_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device(" AUTO ") == torch.device(expected)


def _tool(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "infer_video.py", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})


def test_quiet_prints_no_progress_bar_or_summary(tmp_path):
    write_frames(tmp_path / "seq", moving_frames(3, 32, 48))
    quiet = _tool("-m", "dis+splat", "-data", tmp_path / "seq", "-s", tmp_path / "quiet", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == ""
    assert (tmp_path / "quiet" / "seq" / "seq-dis+splat.mp4").is_file()
    talkative = _tool("-m", "dis+splat", "-data", tmp_path / "seq", "-s", tmp_path / "loud", "--device", "auto")
    assert talkative.returncode == 0
    assert f"dis+splat on {resolve_device('auto')}" in talkative.stderr  # the device auto chose, said
    assert "seq: 5 frames" in talkative.stderr  # the summary
    assert (tmp_path / "loud" / "seq" / "seq-dis+splat.mp4").is_file()


@pytest.fixture(scope="module")
def clip_with_audio(tmp_path_factory) -> Path:
    """1 s of a 24 fps test pattern with a 1 s tone."""
    path = tmp_path_factory.mktemp("audio") / "tone.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-v", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc=size=64x48:rate=24:duration=1",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)], check=True)
    return path


@pytest.mark.parametrize("fps, kept", [(None, True), (24, False)])
def test_slow_motion_leaves_the_audio_out_with_a_warning(tmp_path, caplog, clip_with_audio, fps, kept):
    # ×2 at the source's 24 fps plays twice as long: the tone would no longer match the picture
    settings = Settings(scale=2, fps=fps, quiet=True, scene_cut="off")
    interpolator = Interpolator(CountingZeroFlow(), Blend(), device="cpu")
    with caplog.at_level(logging.WARNING, logger="pervfi"):
        report = SequenceRun(interpolator, video_sequence(clip_with_audio), tmp_path, "m", settings).run()
    assert has_audio(report.video) == kept
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    if kept:
        assert warnings == []
    else:
        assert warnings == ["tone: audio left out: -fps 24 changes the duration (the source plays at 24 × 2 = 48)"]


def test_the_readmes_two_frame_example_runs(monkeypatch):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Install as a package"):]
    code = section[section.index("```python\n") + len("```python\n"):section.index("```\n", section.index("```python"))]
    monkeypatch.chdir(ROOT)  # the example reads input/shapes
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    frame, img0, img1 = namespace["frame"], namespace["img0"], namespace["img1"]
    assert frame.shape == (240, 320, 3) and frame.dtype.name == "uint8"
    assert not np.array_equal(frame, namespace["to_uint8"](img0))
    assert not np.array_equal(frame, namespace["to_uint8"](img1))
