"""The contenders the evaluation scores: a ``FLOW+GENERATOR`` method or a baseline.

Every contender has ``interpolate(img0, img1, times, references, rng)`` returning one
1×3×H×W frame in [0, 1] per time. `references` (the true frames) are used only by the
v00 "best noise" protocol; `rng` seeds the noise of sampled generators.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor

from pervfi.core.errors import PerVFIError
from pervfi.models.method_names import parse_method
from pervfi.runtime.interpolator import Interpolator

from .baselines import AverageBaseline, RepeatBaseline
from .minterpolate import MinterpolateBaseline

BASELINES = {"average": AverageBaseline, "repeat": RepeatBaseline, "minterpolate": MinterpolateBaseline}
NOISE_MODES = ("heat", "best")


class EvaluatedMethod(Protocol):
    name: str

    def interpolate(self, img0: Tensor, img1: Tensor, times: Sequence[float],
                    references: Sequence[Tensor] = (), rng: torch.Generator | None = None) -> list[Tensor]:
        ...


class ModelMethod:
    """A flow estimator + generator pipeline.

    `noise="heat"` samples v00's noise at its default heat (0.3) from `rng`;
    `noise="best"` is the reference's "best noise" protocol for v00: encode the true frame,
    draw noise whose heat is the standard deviation of those latents, decode.
    """

    def __init__(self, name: str, interpolator: Interpolator, noise: str = "heat") -> None:
        if noise not in NOISE_MODES:
            raise PerVFIError(f"unknown noise mode {noise!r}; choose from {', '.join(NOISE_MODES)}")
        if noise == "best" and not hasattr(interpolator.generator, "interpolate_best_noise"):
            raise PerVFIError(f"--noise best applies to the v00 generator (e.g. raft+pervfi), not to {name}")
        self.name = name if noise == "heat" else f"{name} (best noise)"
        self.interpolator = interpolator
        self.noise = noise

    def interpolate(self, img0: Tensor, img1: Tensor, times: Sequence[float],
                    references: Sequence[Tensor] = (), rng: torch.Generator | None = None) -> list[Tensor]:
        if self.noise == "heat":
            return self.interpolator.interpolate_times(img0, img1, times, rng=rng)
        return self._best_noise(img0, img1, times, references, rng)

    @torch.no_grad()
    def _best_noise(self, img0: Tensor, img1: Tensor, times: Sequence[float], references: Sequence[Tensor],
                    rng: torch.Generator | None) -> list[Tensor]:
        if len(references) != len(times):
            raise ValueError(f"best noise needs one reference frame per time, got {len(references)} for {len(times)}")
        padder, img0, img1, flow01, flow10 = self.interpolator.padded_flows(img0, img1)
        frames = []
        for time, reference in zip(times, references):
            (gt,) = padder.apply(reference.to(img0))
            pred = self.interpolator.generator.interpolate_best_noise(img0, img1, flow01, flow10, gt,
                                                                      time=time, rng=rng)
            frames.append(padder.crop(pred.clamp(0.0, 1.0))[0])
        return frames


def method_names() -> list[str]:
    return [*BASELINES, "FLOW+GENERATOR"]


def build_method(name: str, checkpoint_dir: str = "checkpoints", device: str | torch.device = "auto",
                 noise: str = "heat", download: bool = True) -> EvaluatedMethod:
    """A baseline by name, or ``FLOW+GENERATOR`` with its official weights."""
    key = name.strip().lower()
    if key in BASELINES:
        if noise != "heat":
            raise PerVFIError(f"--noise {noise} applies to the v00 generator, not to the {key} baseline")
        return BASELINES[key]()
    parse_method(name)  # a bad name fails here, before any weights are looked for
    interpolator = Interpolator.from_method(name, checkpoint_dir=checkpoint_dir, device=device, download=download)
    return ModelMethod(name, interpolator, noise=noise)
