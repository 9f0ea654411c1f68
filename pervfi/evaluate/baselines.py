"""Weight-free baselines: blending the two frames, and repeating the nearer one."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


class AverageBaseline:
    """The frame at t as the blend (1 − t)·I0 + t·I1."""

    name = "average"

    def interpolate(self, img0: Tensor, img1: Tensor, times: Sequence[float],
                    references: Sequence[Tensor] = (), rng: torch.Generator | None = None) -> list[Tensor]:
        return [torch.lerp(img0, img1, time) for time in times]


class RepeatBaseline:
    """The frame at t as a copy of the nearer input frame (I0 at t = 0.5)."""

    name = "repeat"

    def interpolate(self, img0: Tensor, img1: Tensor, times: Sequence[float],
                    references: Sequence[Tensor] = (), rng: torch.Generator | None = None) -> list[Tensor]:
        return [(img1 if time > 0.5 else img0).clone() for time in times]
