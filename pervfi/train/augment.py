"""The training augmentation of the authors' recipe, drawn from a per-sample generator.

One ColorJitter(0.05, 0.05, 0.05, 0.05) whose factors and order are drawn once and applied to
all three frames (before cropping, as the reference does), one crop shared by the frames and
both flows, and a temporal reversal with p = 0.5 that swaps the two frames and the two flows.
Every random choice comes from `sample_rng(seed, epoch, position)`, so a sample is the same on
any number of processes, in any worker, before and after a resume (never the wall clock).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

JITTER = 0.05  # brightness, contrast, saturation and hue of the reference's ColorJitter


@dataclass(frozen=True)
class Triplet:
    """One training sample: frames 3×H×W in [0, 1] (gt at t = 0.5), flows 2×H×W in pixels."""

    img0: Tensor
    img1: Tensor
    gt: Tensor
    flow01: Tensor
    flow10: Tensor

    @property
    def size(self) -> tuple[int, int]:
        return self.img0.shape[-2], self.img0.shape[-1]


def sample_rng(seed: int, epoch: int, position: int, stream: int = 0) -> np.random.Generator:
    """The generator of the random choices for the sample at `position` of `epoch`'s order
    (`stream` 0: its augmentation; 1: the loss's noise)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch, position, stream])))


def augment(sample: Triplet, rng: np.random.Generator, crop: int) -> Triplet:
    """Shared colour jitter, a shared `crop`×`crop` window, then a temporal reversal with p = 0.5."""
    height, width = sample.size
    if height < crop or width < crop:
        raise ValueError(f"frames of {width}×{height} are smaller than the {crop}×{crop} crop (data.crop)")
    frames = color_jitter(torch.stack([sample.img0, sample.img1, sample.gt]), rng)
    top, left = int(rng.integers(0, height - crop + 1)), int(rng.integers(0, width - crop + 1))
    window = (slice(None), slice(top, top + crop), slice(left, left + crop))
    img0, img1, gt = (frame[window] for frame in frames)
    cropped = Triplet(img0, img1, gt, sample.flow01[window], sample.flow10[window])
    return reversed_in_time(cropped) if rng.random() < 0.5 else cropped


def color_jitter(frames: Tensor, rng: np.random.Generator) -> Tensor:
    """torchvision's ColorJitter(0.05, 0.05, 0.05, 0.05) with one draw for all `frames` (N×3×H×W)."""
    import torchvision.transforms.functional as TF  # imported on use: torchvision is slow to import

    factors = {
        "brightness": rng.uniform(1 - JITTER, 1 + JITTER),
        "contrast": rng.uniform(1 - JITTER, 1 + JITTER),
        "saturation": rng.uniform(1 - JITTER, 1 + JITTER),
        "hue": rng.uniform(-JITTER, JITTER),
    }
    operations = {
        "brightness": TF.adjust_brightness,
        "contrast": TF.adjust_contrast,
        "saturation": TF.adjust_saturation,
        "hue": TF.adjust_hue,
    }
    names = list(operations)
    for index in rng.permutation(len(names)):
        frames = operations[names[index]](frames, float(factors[names[index]]))
    return frames


def reversed_in_time(sample: Triplet) -> Triplet:
    """The same triplet played backwards: frames and flows swapped."""
    return replace(sample, img0=sample.img1, img1=sample.img0, flow01=sample.flow10, flow10=sample.flow01)
