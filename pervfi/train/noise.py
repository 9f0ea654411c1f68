"""The random amounts of one training step, drawn per sample so that they do not depend on how the
batch is split over processes (nor on a resume).

The recipe's noise (see the conformance README, "Training vectors"): U(−0.005, 0.005) on each
soft-binary mask (coarse to fine: H/4, H/2, H), and for v00 the dequantisation
U(−0.5, 0.5)/255 of the target and the unit-normal latents (6×H/2, 12×H/4, 48×H/8).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from pervfi.models.generators.normalizing_flow import latent_shapes
from pervfi.models.generators.soft_binary_masks import MASK_NOISE

MASK_SCALES = (4, 2, 1)  # the masks' sizes, coarse to fine, as fractions of the frame


def draw_noise(recipe: str, height: int, width: int, rng: np.random.Generator) -> dict[str, list[Tensor] | Tensor]:
    """One sample's noise for `recipe` ("v00" or "vb"), without the batch dimension."""
    def uniform(bound: float, *shape: int) -> Tensor:
        return torch.from_numpy(rng.uniform(-bound, bound, shape).astype(np.float32))

    noise: dict[str, list[Tensor] | Tensor] = {
        "masks": [uniform(MASK_NOISE, 1, height // scale, width // scale) for scale in MASK_SCALES]}
    if recipe == "v00":
        noise["dequant"] = uniform(0.5 / 255, 3, height, width)
        noise["zs"] = [torch.from_numpy(rng.standard_normal(shape, dtype=np.float32))
                       for shape in latent_shapes(height, width)]
    return noise


def stack_noise(samples: list[dict[str, list[Tensor] | Tensor]]) -> dict[str, list[Tensor] | Tensor]:
    """The batch's noise from its samples'."""
    stacked: dict[str, list[Tensor] | Tensor] = {}
    for key, value in samples[0].items():
        if isinstance(value, list):
            stacked[key] = [torch.stack([sample[key][i] for sample in samples]) for i in range(len(value))]
        else:
            stacked[key] = torch.stack([sample[key] for sample in samples])
    return stacked
