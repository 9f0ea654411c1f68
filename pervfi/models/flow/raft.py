"""RAFT and RAFT-small optical flow (Teed & Deng, ECCV 2020), as PerVFI runs them."""
from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from pervfi.ops import Padder, float32_island, held_float32

from .alternate_correlation import AlternateCorrelation, correlation_lookup
from .base import FlowEstimator, check_pair
from .raft_parts import (
    DOWNSAMPLE,
    CorrelationPyramid,
    Encoder,
    UpdateBlock,
    bilinear_upsample8,
    convex_upsample,
    initial_coords,
)

CORR_LEVELS = 4
# Below 128 pixels the coarsest correlation level of the official code shrinks to one
# pixel (and NaN) or less: smaller frames are zero-padded up to this size, then cropped.
MIN_PADDED_SIZE = 128
MIN_INPUT_SIZE = 16


class RAFT(FlowEstimator):
    """RAFT: correlations of all pixel pairs, refined by a recurrent update `iters` times.

    Images RGB in [0, 1] (the networks see them in [−1, 1]), centred zero padding to a
    multiple of 8 (at least 128), flow cropped back. `mixed_precision` runs the networks
    under autocast on CUDA, as the reference did; elsewhere everything stays float32.
    """

    def __init__(self, small: bool = False, iters: int = 12, mixed_precision: bool = False) -> None:
        super().__init__()
        self.iters = iters
        self.mixed_precision = mixed_precision
        self.hidden_dim = 96 if small else 128
        self.context_dim = 64 if small else 128
        self.corr_radius = 3 if small else 4
        self.fnet = Encoder(output_dim=128 if small else 256, norm="instance", small=small)
        self.cnet = Encoder(output_dim=self.hidden_dim + self.context_dim, norm="none" if small else "batch",
                            small=small)
        corr_channels = CORR_LEVELS * (2 * self.corr_radius + 1) ** 2
        self.update_block = self._update_block(corr_channels, small)

    def _update_block(self, corr_channels: int, small: bool) -> nn.Module:
        return UpdateBlock(corr_channels, self.hidden_dim, self.context_dim, small)

    def context_attention(self, context: Tensor) -> Tensor | None:
        """Global attention over the context (GMA); RAFT has none."""
        return None

    def estimate(self, img0: Tensor, img1: Tensor) -> Tensor:
        check_pair(img0, img1)
        padder, (img0, img1) = self._pad(img0, img1)
        fmap0, fmap1 = self._features(torch.cat([img0, img1])).chunk(2)
        with float32_island(img0.device.type):
            pyramid = correlation_lookup(fmap0, fmap1, CORR_LEVELS, self.corr_radius, bidirectional=False)
        flow = self._refine(img0, pyramid)
        return padder.crop(flow)[0]

    def estimate_bidirectional(self, img0: Tensor, img1: Tensor) -> tuple[Tensor, Tensor]:
        """Both directions from one feature pass; the reverse correlation volume is the
        forward one transposed (a view of it, see `CorrelationPyramid.bidirectional`; large
        frames use the alternate correlation, see `correlation_lookup`), and both
        directions refine as one batch."""
        check_pair(img0, img1)
        padder, (img0, img1) = self._pad(img0, img1)
        fmap0, fmap1 = self._features(torch.cat([img0, img1])).chunk(2)
        with float32_island(img0.device.type):
            pyramid = correlation_lookup(fmap0, fmap1, CORR_LEVELS, self.corr_radius, bidirectional=True)
        flows = self._refine(torch.cat([img0, img1]), pyramid)
        flow01, flow10 = padder.crop(flows)[0].chunk(2)
        return flow01, flow10

    def _pad(self, img0: Tensor, img1: Tensor) -> tuple[Padder, list[Tensor]]:
        height, width = img0.shape[-2:]
        if min(height, width) < MIN_INPUT_SIZE:
            raise ValueError(f"expected frames of at least {MIN_INPUT_SIZE}×{MIN_INPUT_SIZE} pixels, got {height}×{width}")
        padder = Padder(height, width, multiple=DOWNSAMPLE, mode="center", minimum=MIN_PADDED_SIZE)
        # Zero padding is black, as in the reference (which pads the [0, 255] image).
        return padder, padder.apply(img0.float(), img1.float())

    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.mixed_precision and device.type == "cuda":  # the reference's GPU setting
            return torch.autocast(device.type)
        return contextlib.nullcontext()

    def _features(self, images: Tensor) -> Tensor:
        with self._autocast(images.device):
            return self.fnet(images * 2 - 1).float()

    def _refine(self, images: Tensor, pyramid: CorrelationPyramid | AlternateCorrelation) -> Tensor:
        """Iterate the update from zero flow for the source `images`; full-resolution flow."""
        with self._autocast(images.device):
            context = self.cnet(images * 2 - 1)
            hidden, context = torch.split(context, [self.hidden_dim, self.context_dim], dim=1)
            hidden, context = torch.tanh(hidden), torch.relu(context)
            attention = self.context_attention(context)
        batch, _, height, width = images.shape
        coords0 = initial_coords(batch, height // DOWNSAMPLE, width // DOWNSAMPLE, images)
        coords1 = coords0.clone()
        for _ in range(self.iters):
            with float32_island(images.device.type):
                corr = held_float32("correlation lookup", pyramid.lookup(coords1))
            flow = coords1 - coords0
            with self._autocast(images.device):
                hidden, delta = self.update_block(hidden, context, corr, flow, attention)
            coords1 = held_float32("flow coordinates", coords1 + delta.float())
        flow = coords1 - coords0
        with self._autocast(images.device):
            mask = self.update_block.upsampling_mask(hidden)
        with float32_island(images.device.type):
            flow = bilinear_upsample8(flow) if mask is None else convex_upsample(flow, mask.float())
        return held_float32("flow coordinates", flow)


def build_raft(small: bool = False, iters: int = 12, mixed_precision: bool = False) -> RAFT:
    """RAFT (or RAFT-small) with PerVFI's inference settings (architecture only)."""
    return RAFT(small=small, iters=iters, mixed_precision=mixed_precision)
