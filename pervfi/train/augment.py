"""The training augmentation of the authors' recipe, drawn from a per-sample generator.

One ColorJitter(0.05, 0.05, 0.05, 0.05) whose factors and order are drawn once and applied to
all three frames, on 8-bit images through PIL as the reference's torchvision transform does
(so the result is PIL's, rounding included); one crop shared by the frames and both flows; a
temporal reversal with p = 0.5 that swaps the two frames and the two flows. The reference
jitters the whole frame and then crops (`jitter="frame"`); by default the crop comes first
(`jitter="crop"`), which is the same but for contrast, whose grey level is then the crop's mean
instead of the frame's, and costs a crop's work instead of a whole frame's.
Every random choice comes from `sample_rng(seed, epoch, position)`, so a sample is the same on
any number of processes, in any worker, before and after a resume (never the wall clock).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image
from torch import Tensor

JITTER = 0.05  # brightness, contrast, saturation and hue of the reference's ColorJitter
JITTER_PLACES = ("crop", "frame")  # data.jitter: the crop (fast) or the whole frame (the reference)
JITTER_OPERATIONS = ("brightness", "contrast", "saturation", "hue")  # torchvision's order of indices


@dataclass(frozen=True)
class Triplet:
    """One sample: frames 3×H×W uint8 (gt at t = 0.5), flows 2×H×W float32 in pixels."""

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


def augment(sample: Triplet, rng: np.random.Generator, crop: int, jitter: str = "crop") -> Triplet:
    """Shared colour jitter and `crop`×`crop` window (in the order `jitter` says), then a
    temporal reversal with p = 0.5. Frames stay uint8."""
    height, width = sample.size
    if height < crop or width < crop:
        raise ValueError(f"frames of {width}×{height} are smaller than the {crop}×{crop} crop (data.crop)")
    factors, order = draw_jitter(rng)
    top, left = int(rng.integers(0, height - crop + 1)), int(rng.integers(0, width - crop + 1))
    window = (slice(None), slice(top, top + crop), slice(left, left + crop))
    frames = (sample.img0, sample.img1, sample.gt)
    if jitter == "frame":
        frames = tuple(frame[window] for frame in color_jitter(frames, factors, order))
    else:
        frames = color_jitter(tuple(frame[window] for frame in frames), factors, order)
    cropped = Triplet(*frames, sample.flow01[window], sample.flow10[window])
    return reversed_in_time(cropped) if rng.random() < 0.5 else cropped


def draw_jitter(rng: np.random.Generator) -> tuple[dict[str, float], list[str]]:
    """ColorJitter(0.05, 0.05, 0.05, 0.05)'s random factors and order of operations."""
    factors = {
        "brightness": float(rng.uniform(1 - JITTER, 1 + JITTER)),
        "contrast": float(rng.uniform(1 - JITTER, 1 + JITTER)),
        "saturation": float(rng.uniform(1 - JITTER, 1 + JITTER)),
        "hue": float(rng.uniform(-JITTER, JITTER)),
    }
    return factors, [JITTER_OPERATIONS[i] for i in rng.permutation(len(JITTER_OPERATIONS))]


def color_jitter(frames: tuple[Tensor, ...], factors: dict[str, float], order: list[str]) -> tuple[Tensor, ...]:
    """The jitter of `factors`, applied in `order` to each 3×H×W uint8 frame as torchvision's
    ColorJitter applies it to a PIL image (8-bit results after every operation)."""
    import torchvision.transforms.functional as TF  # imported on use: torchvision is slow to import

    operations = {"brightness": TF.adjust_brightness, "contrast": TF.adjust_contrast,
                  "saturation": TF.adjust_saturation, "hue": TF.adjust_hue}
    jittered = []
    for frame in frames:
        image = Image.fromarray(frame.permute(1, 2, 0).numpy())
        for name in order:
            image = operations[name](image, factors[name])
        jittered.append(torch.from_numpy(np.array(image)).permute(2, 0, 1))
    return tuple(jittered)


def reversed_in_time(sample: Triplet) -> Triplet:
    """The same triplet played backwards: frames and flows swapped."""
    return replace(sample, img0=sample.img1, img1=sample.img0, flow01=sample.flow10, flow10=sample.flow01)
