"""The public API (`pervfi/__init__.py`) is for users: each of its names works as documented,
`import pervfi` needs no PyTorch, and every name is shown by the README or used here."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import pervfi

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "input" / "shapes"


class Shift(pervfi.FlowEstimator):
    """A user's estimator: every pixel moves 2 px to the right."""

    def estimate(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        flow = torch.zeros(img0.shape[0], 2, *img0.shape[-2:])
        flow[:, 0] = 2.0
        return flow


def test_import_pervfi_loads_no_torch() -> None:
    code = "import sys, pervfi; pervfi.PerVFIError; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_public_name_is_shown_by_the_readme_or_used_here() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    here = Path(__file__).read_text(encoding="utf-8")
    unused = [name for name in pervfi.__all__
              if not re.search(rf"\b{name}\b", readme) and len(re.findall(rf"pervfi\.{name}\b", here)) == 0]
    assert unused == [], f"public names nobody shows or tests: {unused}"


def test_two_frames_through_the_public_api(without_autograd) -> None:
    frames = [pervfi.read_frame(path) for path in pervfi.list_frames(EXAMPLE)[:2]]
    img0, img1 = (pervfi.to_tensor(frame) for frame in frames)
    interpolator = pervfi.Interpolator(pervfi.build_flow_estimator("dis"), pervfi.build_generator("splat"),
                                       device=pervfi.resolve_device("cpu"), precision="fp32")
    middle = pervfi.to_uint8(interpolator.interpolate(img0, img1, time=0.5))
    assert middle.shape == frames[0].shape and middle.dtype == np.uint8
    assert set(pervfi.PRECISIONS) == {"fp32", "bf16", "fp16"}
    assert pervfi.parse_method("raft+pervfi").generator == "v00"


def test_a_user_flow_estimator_moves_the_frame(without_autograd) -> None:
    """A FlowEstimator subclass feeds the weight-free generator: the middle frame is the
    first moved by half the motion."""
    img0 = torch.zeros(1, 3, 32, 48)
    img0[..., 8:24, 8:16] = 1.0
    img1 = torch.roll(img0, 2, dims=-1)
    middle = pervfi.Interpolator(Shift(), pervfi.build_generator("splat"), device="cpu").interpolate(img0, img1)
    column_mass = middle[0, 0].sum(0)
    centre = float((column_mass * torch.arange(48)).sum() / column_mass.sum())
    assert centre == pytest.approx(11.5 + 1.0, abs=0.2)  # columns 8..15, moved by half of 2 px


def test_a_sequence_through_the_public_api(tmp_path: Path) -> None:
    (sequence,) = pervfi.discover_sequences(EXAMPLE)
    settings = pervfi.Settings(scale=2, quiet=True, png=True)
    report = pervfi.SequenceRun(pervfi.Interpolator.from_method("dis+splat", device="cpu"), sequence, tmp_path,
                                "dis+splat", settings).run()
    assert isinstance(report, pervfi.Report) and isinstance(sequence, pervfi.Sequence)
    count = len(pervfi.list_frames(EXAMPLE))
    assert report.frames_written == 2 * count - 1 == len(list(report.frames.glob("*.png")))
    gif = tmp_path / "clip.gif"
    pervfi.encode_gif(report.video, gif, max_side=64)
    assert gif.read_bytes()[:6] == b"GIF89a"


def test_models_and_weights_through_the_public_api(ckpt_dir: Path, without_autograd) -> None:
    assert {"v00", "vb", "raft", "gmflow"} <= set(pervfi.checkpoint_names())
    vb = pervfi.load_model("vb", "generator", checkpoint_dir=ckpt_dir)
    assert not vb.training and sum(p.numel() for p in vb.parameters()) > 0
    assert pervfi.fetch_checkpoints(["vb"], ckpt_dir) == [ckpt_dir / "PerVFI" / "vb.pth"]


def test_errors_are_one_family() -> None:
    with pytest.raises(pervfi.UnknownNameError):
        pervfi.parse_method("nope+pervfi")
    with pytest.raises(pervfi.InputError):
        pervfi.read_frame(EXAMPLE / "missing.png")
    for kind in (pervfi.UnknownNameError, pervfi.CheckpointError, pervfi.InputError, pervfi.OutputError):
        assert issubclass(kind, pervfi.PerVFIError)
    with pytest.raises(AttributeError, match="no attribute 'run_parallel'"):
        pervfi.run_parallel  # noqa: B018 - the multi-device runner is the CLI's, not the API's
