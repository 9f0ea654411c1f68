"""Tiny training sets for the training tests: a Vimeo90K tree with KITTI flow files, and frame folders.

The frames show a smooth random texture moving by a known shift per frame, so the flows
stored beside them are the true ones.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from pervfi.train.flow_files import write_flow

SHIFT = (2, 1)  # pixels per frame, x then y


def texture(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random RGB texture, H×W×3 float in [0, 1], periodic so shifts wrap cleanly."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((3, height // 8, width // 8)).astype(np.float32)
    up = torch.nn.functional.interpolate(torch.from_numpy(coarse)[None], size=(height, width), mode="bicubic")
    return up[0].clamp(0, 1).permute(1, 2, 0).numpy()


def moving_frames(count: int, height: int, width: int, seed: int) -> list[np.ndarray]:
    """`count` uint8 frames of one texture moving by SHIFT per frame."""
    base = texture(height, width, seed)
    return [(np.roll(base, (SHIFT[1] * i, SHIFT[0] * i), axis=(0, 1)) * 255).round().astype(np.uint8)
            for i in range(count)]


def make_vimeo(root: Path, train: int = 4, test: int = 2, height: int = 64, width: int = 96,
               methods: tuple[str, ...] = ("raft", "gmflow")) -> Path:
    """A Vimeo90K-layout tree of `train` + `test` clips with flows of every method."""
    clips = [f"{1 + i // 3:05d}/{1 + i % 3:04d}" for i in range(train + test)]
    for number, clip in enumerate(clips):
        folder = root / "sequences" / clip
        folder.mkdir(parents=True)
        for i, frame in enumerate(moving_frames(3, height, width, seed=number)):
            Image.fromarray(frame).save(folder / f"im{i + 1}.png")
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
        folder = root / f"seq{number}"
        folder.mkdir(parents=True)
        for i, frame in enumerate(moving_frames(count, height, width, seed=100 + number)):
            Image.fromarray(frame).save(folder / f"{i:05d}.png")
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
