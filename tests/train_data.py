"""Tiny training sets for the training tests: a Vimeo90K tree with KITTI flow files, and frame folders.

The frames are `media.moving_frames` (a texture panned by a known step per frame), so the
flows stored beside them are the true ones outside its small moving square.
"""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pervfi.train.flow_files import write_flow
from tests.media import moving_frames, write_frames

STEP = 2  # media.moving_frames pans the texture this many pixels right per frame
SHIFT = (-STEP, 0)  # the content's motion per frame, x then y (but for a small square moving down)


def make_vimeo(root: Path, train: int = 4, test: int = 2, height: int = 64, width: int = 96,
               methods: tuple[str, ...] = ("raft", "gmflow")) -> Path:
    """A Vimeo90K-layout tree of `train` + `test` clips with flows of every method."""
    clips = [f"{1 + i // 3:05d}/{1 + i % 3:04d}" for i in range(train + test)]
    for number, clip in enumerate(clips):
        write_frames(root / "sequences" / clip, moving_frames(3, height, width, STEP, seed=number),
                     names=["im1.png", "im2.png", "im3.png"])
        forward = np.broadcast_to(np.array([2 * SHIFT[0], 2 * SHIFT[1]], np.float32), (height, width, 2))
        for method in methods:
            write_flow(root / "optical_flows" / method / clip / "fflow.png", forward)
            write_flow(root / "optical_flows" / method / clip / "bflow.png", -forward)
    (root / "tri_trainlist.txt").write_text("\n".join(clips[:train]) + "\n")
    (root / "tri_testlist.txt").write_text("\n".join(clips[train:]) + "\n")
    return root


def make_frames(root: Path, sequences: int = 1, count: int = 8, height: int = 64, width: int = 64) -> Path:
    """Folders of moving frames, one per sequence."""
    for number in range(sequences):
        write_frames(root / f"seq{number}", moving_frames(count, height, width, STEP, seed=100 + number))
    return root


class TinyPerceptual(nn.Module):
    """A stand-in for the VGG19 perceptual loss (whose ImageNet weights the tests do not download):
    L1 between the images' features under one fixed random convolution."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False).requires_grad_(False)
        torch.nn.init.normal_(self.conv.weight, generator=torch.Generator().manual_seed(0))

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        return (self.conv(pred) - self.conv(gt)).abs().mean()


def write_network_lf(folder: Path) -> Path:
    """A checkpoint folder holding a stand-in for softmax splatting's network-lf.pytorch (seeded
    values in its original key naming), so that `init: scratch` runs without the network."""
    from pervfi.models.generators import build_generator
    from tests.seeded_weights import seeded_state

    pyramid = build_generator("vb").featurePyramid.state_dict()
    lf = {f"moduleSynthesis.{key.replace('net', 'module')}": value for key, value in pyramid.items()}
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(seeded_state(lf, salt="network-lf-standin", gain=0.5), folder / "network-lf.pytorch")
    return folder


@functools.cache
def scratch_checkpoint_dir() -> Path:
    """A checkpoint folder (one per test process, removed at exit) holding `write_network_lf`'s
    stand-in, so that the default `init: scratch` runs without the network."""
    folder = Path(tempfile.mkdtemp(prefix="pervfi-network-lf-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return write_network_lf(folder)


def tiny_run_overrides() -> list[str]:
    """Config overrides for a run of seconds: 64×64 crops, 2 triplets a batch, 3 epochs, one state
    per step, no validation, the checkpoints of `scratch_checkpoint_dir`."""
    return ["device=cpu", "data.crop=64", "data.workers=0", "train.batch_size=2", "train.epochs=3",
            "log.val_every=0", "log.save_every=1", "log.keep=2", f"checkpoint_dir={scratch_checkpoint_dir()}"]
