"""PerVFI-v00: the asymmetric-blending conditions decoded by a conditional normalizing
flow, sampled from Gaussian noise (heat 0.3 by default)."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from pervfi.ops import Region
from pervfi.ops.collectives import global_std

from .base import PerVFIGenerator
from .encoder import PYRAMID_CHANNELS
from .normalizing_flow import CondFlowNet, latent_shapes

DEFAULT_HEAT = 0.3
FLOW_STEPS = 16


def latent_heat(latents: list[Tensor], global_batch: bool = False) -> Tensor:
    """The standard deviation (unbiased) of all the latents together: the heat at which
    noise decodes to frames like the ones encoded. `global_batch`: of the latents of every
    process (training with DDP: the same heat as one process with the whole batch)."""
    flat = torch.cat([z.flatten() for z in latents])
    return global_std(flat) if global_batch else flat.std()


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
            zs = [z.to(device=half.device, dtype=torch.float32) for z in zs]  # the flow's state: float32
        return self.condFLownet.reverse(zs, conds)

    def encode(self, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor, gt: Tensor,
               time: float = 0.5) -> tuple[list[Tensor], Tensor]:
        """Run the flow forwards on the true frame `gt`: (latents fine to coarse, NLL per
        image in bits per pixel). Latents are not standardised by the prior."""
        conds, _ = self.condition(img0, img1, flow01, flow10, time)
        return self._latents_and_nll(gt, conds, dequant=None)

    def forward(self, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor, gt: Tensor,
                time: float = 0.5, mask_noise: list[Tensor] | None = None, dequant: Tensor | None = None,
                zs: list[Tensor] | None = None) -> dict[str, Tensor | list[Tensor]]:
        """The training pass (the reference's ``encode_decode``), differentiable throughout.

        Encodes `gt` (dequantised in training: plus `dequant`, else U(-0.5, 0.5)/255 in
        [-1, 1] space) to its NLL, then decodes unit-normal `zs` (drawn when not given)
        times heat, the standard deviation of all the batch's latents (of the global batch with
        DDP; not detached).
        Returns ``pred`` (before clamping, [0, 1] space), ``masks`` (coarse to fine, with
        the training noise), ``nll`` (B,) in bits per pixel, and ``heat``.
        """
        conds, masks = self.condition(img0, img1, flow01, flow10, time, mask_noise=mask_noise)
        if dequant is None and self.training:
            dequant = (torch.rand_like(gt) - 0.5) / 255
        latents, nll = self._latents_and_nll(gt, conds, dequant)
        heat = latent_heat(latents, global_batch=True)
        if zs is None:
            batch, _, height, width = gt.shape
            zs = self.sample_noise(batch, height, width, heat=1.0, device=gt.device)
        pred = (self.decode(conds, [z.to(heat) * heat for z in zs], None, None) + 1) / 2
        return {"pred": pred, "masks": masks, "nll": nll, "heat": heat}

    def _latents_and_nll(self, gt: Tensor, conds: list[Tensor],
                         dequant: Tensor | None) -> tuple[list[Tensor], Tensor]:
        """Latents of `gt` and its NLL in bits per pixel (pixels = H·W); with `dequant`
        added, the NLL of the 8-bit frame (plus log2 255 for the bin width)."""
        expected = (conds[0].shape[0], 3, conds[0].shape[2] * 2, conds[0].shape[3] * 2)
        if tuple(gt.shape) != expected:
            raise ValueError(f"expected gt of shape {expected}, got {tuple(gt.shape)}")
        target = gt * 2 - 1
        if dequant is not None:
            target = target + dequant.to(target)
        log_p, logdet, zs, _ = self.condFLownet(target, conds)
        nll = -(logdet + log_p) / (math.log(2) * gt.shape[2] * gt.shape[3])
        if dequant is not None:
            nll = nll + math.log2(255)
        return zs, nll

    def interpolate_best_noise(self, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor, gt: Tensor,
                               time: float = 0.5, rng: torch.Generator | None = None) -> Tensor:
        """The reference's "best noise" protocol: encode `gt`, draw fresh noise whose heat
        is the standard deviation of all its latents, decode. Before clamping, [0, 1] space."""
        conds, _ = self.condition(img0, img1, flow01, flow10, time)
        zs, _ = self._latents_and_nll(gt, conds, dequant=None)
        heat = latent_heat(zs).item()
        batch, _, height, width = gt.shape
        noise = self.sample_noise(batch, height, width, heat=heat, rng=rng, device=gt.device)
        return (self.condFLownet.reverse(noise, conds) + 1) / 2


def build_v00(dilate_size: int = 9, heat: float = DEFAULT_HEAT) -> PerVFIv00:
    """The v00 generator (architecture only; load weights separately)."""
    return PerVFIv00(dilate_size=dilate_size, heat=heat)
