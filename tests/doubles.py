"""Test doubles for the pipeline: a flow estimator and a generator whose output is known exactly."""
from __future__ import annotations

import torch
from torch import nn

from pervfi.models.flow.base import FlowEstimator


class CountingZeroFlow(FlowEstimator):
    """Zero motion; counts the pairs it is asked about."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs = 0

    def estimate_bidirectional(self, img0, img1):
        self.pairs += 1
        zero = torch.zeros_like(img0[:, :2])
        return zero, zero


class Blend(nn.Module):
    """The frame at t as the blend of the two frames (the pipeline's behaviour is under test)."""

    def interpolate(self, img0, img1, flow01, flow10, time=0.5, zs=None, rng=None, region=None):
        return torch.lerp(img0, img1, time)


class NaNBlend(Blend):
    """`Blend` whose frames are NaN, as an overflowing precision makes them."""

    def interpolate(self, img0, img1, flow01, flow10, time=0.5, zs=None, rng=None, region=None):
        return torch.full_like(img0, float("nan"))
