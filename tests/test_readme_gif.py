"""scripts/make_readme_gif.py: the README's GIF, input beside the result, from any frames."""
from __future__ import annotations

import subprocess
import sys

from tests.media import moving_frames, write_frames
from tests.test_gif import gif_frames
from tests.test_infer_video import ROOT


def test_the_script_makes_the_side_by_side_gif(tmp_path):
    write_frames(tmp_path / "frames", moving_frames(3, 48, 64, step=4))
    out = tmp_path / "demo.gif"
    result = subprocess.run([sys.executable, "scripts/make_readme_gif.py", "--data", str(tmp_path / "frames"),
                             "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    frames, delays, _ = gif_frames(out)
    assert len(frames) == 9 and frames[0].shape == (240, 640, 3)  # 3 frames ×4, each half 320 wide
    assert abs(sum(delays) - 9000 / 24) <= 10  # at 24 frames/s
    assert out.stat().st_size < 2_000_000
