"""PerVFI-v00: the asymmetric-blending conditions decoded by a conditional normalizing
flow, sampled from Gaussian noise (heat 0.3 by default)."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..ops import Region
from .base import PerVFIGenerator, check_inputs
from .encoder import PYRAMID_CHANNELS
from .normalizing_flow import CondFlowNet, latent_shapes

DEFAULT_HEAT = 0.3
FLOW_STEPS = 16


class PerVFIv00(PerVFIGenerator):
    """PerVFI with the conditional normalizing-flow decoder.

    `heat` is the standard deviation of the noise drawn when `zs` is not given.
    """

    def __init__(self, dilate_size: int = 9, heat: float = DEFAULT_HEAT, steps: int = FLOW_STEPS) -> None:
        super().__init__(dilate_size)
        self.condFLownet = CondFlowNet(PYRAMID_CHANNELS, steps=steps)
        self.heat = heat

    def sample_noise(self, batch: int, height: int, width: int, heat: float | None = None,
                     rng: torch.Generator | None = None, device: torch.device | None = None) -> list[Tensor]:
        """Three noise tensors N(0, heat²) for a B×3×H×W frame, drawn where they are used:
        on `device` (CPU by default) from `rng`, or on `rng`'s device and then moved when
        the two differ. A seed gives the same noise every time on one kind of device.
        """
        heat = self.heat if heat is None else heat
        device = torch.device(device) if device is not None else torch.device("cpu")
        draw_device = rng.device if rng is not None else device
        return [
            (torch.randn((batch, *shape), generator=rng, device=draw_device) * heat).to(device)
            for shape in latent_shapes(height, width)
        ]

    def decode(self, conds: list[Tensor], zs: list[Tensor] | None, rng: torch.Generator | None,
               region: Region | None) -> Tensor:
        half = conds[0]
        if zs is None:
            batch, _, height, width = half.shape
            zs = self.sample_noise(batch, height * 2, width * 2, rng=rng, device=half.device)
        else:
            expected = [(half.shape[0], *shape) for shape in latent_shapes(half.shape[2] * 2, half.shape[3] * 2)]
            if [tuple(z.shape) for z in zs] != expected:
                raise ValueError(f"expected zs of shapes {expected}, got {[tuple(z.shape) for z in zs]}")
            zs = [z.to(half) for z in zs]
        return self.condFLownet.reverse(zs, conds)

    def encode(self, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor, gt: Tensor,
               time: float = 0.5) -> tuple[list[Tensor], Tensor]:
        """Run the flow forwards on the true frame `gt`: (latents fine to coarse, NLL per
        image in bits per pixel). Latents are not standardised by the prior."""
        zs, nll, _ = self._encode_with_conds(img0, img1, flow01, flow10, gt, time)
        return zs, nll

    def _encode_with_conds(self, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor, gt: Tensor,
                           time: float) -> tuple[list[Tensor], Tensor, list[Tensor]]:
        check_inputs(img0, img1, flow01, flow10, time)
        if gt.shape != img0.shape:
            raise ValueError(f"expected gt of shape {tuple(img0.shape)}, got {tuple(gt.shape)}")
        conds, _ = self.condition(img0, img1, flow01, flow10, time)
        log_p, logdet, zs, _ = self.condFLownet(gt * 2 - 1, conds)
        pixels = gt.shape[2] * gt.shape[3]
        nll = -(logdet + log_p) / (math.log(2) * pixels)
        return zs, nll, conds

    def interpolate_best_noise(self, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor, gt: Tensor,
                               time: float = 0.5, rng: torch.Generator | None = None) -> Tensor:
        """The reference's "best noise" protocol: encode `gt`, draw fresh noise whose heat
        is the standard deviation of all its latents, decode. Before clamping, [0, 1] space."""
        zs, _, conds = self._encode_with_conds(img0, img1, flow01, flow10, gt, time)
        heat = torch.cat([z.flatten() for z in zs]).std().item()
        batch, _, height, width = gt.shape
        noise = self.sample_noise(batch, height, width, heat=heat, rng=rng, device=gt.device)
        return (self.condFLownet.reverse(noise, conds) + 1) / 2


def build_v00(dilate_size: int = 9, heat: float = DEFAULT_HEAT) -> PerVFIv00:
    """The v00 generator (architecture only; load weights separately)."""
    return PerVFIv00(dilate_size=dilate_size, heat=heat)
