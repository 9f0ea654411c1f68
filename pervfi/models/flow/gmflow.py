"""GMFlow optical flow (Xu et al., CVPR 2022) with the configuration PerVFI uses:
one scale at 1/8, swin attention with 2×2 windows, global matching, global propagation,
convex upsampling by 8."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from pervfi.ops import Padder, coords_grid, float32_island, held_float32

from .base import FlowEstimator, check_pair
from .gmflow_transformer import FeatureFlowAttention, FeatureTransformer, add_window_position, global_attention
from .raft_parts import DOWNSAMPLE, Encoder, convex_upsample

# ImageNet statistics, which GMFlow normalises its input with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class GMFlow(FlowEstimator):
    """Flow as global matching of transformer features, then propagated and upsampled.

    Images RGB in [0, 1], any size from 1×1: centred zero padding to a multiple of 8 times
    `attn_splits` (16 for PerVFI's 2×2 windows, so the 1/8 map splits evenly), flow
    cropped back. Runs in float32 (autocast is off inside).
    """

    def __init__(self, feature_channels: int = 128, num_transformer_layers: int = 6,
                 ffn_dim_expansion: int = 4, attn_splits: int = 2) -> None:
        super().__init__()
        self.attn_splits = attn_splits
        self.backbone = Encoder(output_dim=feature_channels, norm="instance", conv_bias=False)
        self.transformer = FeatureTransformer(num_transformer_layers, feature_channels, ffn_dim_expansion)
        self.feature_flow_attn = FeatureFlowAttention(feature_channels)
        self.upsampler = nn.Sequential(
            nn.Conv2d(2 + feature_channels, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, DOWNSAMPLE**2 * 9, 1),
        )

    def estimate(self, img0: Tensor, img1: Tensor) -> Tensor:
        return self._flows(img0, img1, bidirectional=False)[0]

    def estimate_bidirectional(self, img0: Tensor, img1: Tensor) -> tuple[Tensor, Tensor]:
        """Both directions from one backbone and one transformer pass over the 2B frames
        (the transformer already updates each frame's features against the other's); the
        reverse matching is the transposed correlation, and propagation and upsampling
        run on the 2B flows as one batch."""
        flow01, flow10 = self._flows(img0, img1, bidirectional=True)
        return flow01, flow10

    def _flows(self, img0: Tensor, img1: Tensor, bidirectional: bool) -> list[Tensor]:
        check_pair(img0, img1)
        height, width = img0.shape[-2:]
        if height == 0 or width == 0:
            raise ValueError(f"expected frames of at least 1×1 pixels, got {height}×{width}")
        padder = Padder(height, width, multiple=DOWNSAMPLE * self.attn_splits, mode="center")
        with float32_island(img0.device.type):
            img0, img1 = padder.apply(img0.float(), img1.float())
            mean = torch.tensor(IMAGENET_MEAN, device=img0.device).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD, device=img0.device).view(1, 3, 1, 1)
            features = self.backbone((torch.cat([img0, img1]) - mean) / std)
            feature0, feature1 = (add_window_position(f, self.attn_splits) for f in features.chunk(2))
            feature0, feature1 = self.transformer(feature0, feature1, self.attn_splits)

            sources, targets = [feature0], [feature1]
            if bidirectional:
                sources.append(feature1)
                targets.append(feature0)
            source = torch.cat(sources)
            flow = held_float32("GMFlow", _soft_argmax_flow(source, torch.cat(targets)))
            flow = self.feature_flow_attn(source, flow)
            mask = self.upsampler(torch.cat([flow, source], 1))
            return held_float32("GMFlow", list(padder.crop(convex_upsample(flow, mask))[0].chunk(len(sources))))


def _soft_argmax_flow(source: Tensor, target: Tensor) -> Tensor:
    """Global matching: each source pixel's expected position under the softmax of its
    similarities (dot products / √C) with all target pixels, minus its own position. The
    all-pairs similarities are never stored (fused attention, row block by row block)."""
    batch, _, height, width = source.shape
    grid = coords_grid(batch, height, width, source.device, source.dtype)
    positions = grid.flatten(2).transpose(1, 2)  # B×(H·W)×2
    matched = global_attention(source.flatten(2).transpose(1, 2), target.flatten(2).transpose(1, 2), positions)
    return matched.transpose(1, 2).reshape(batch, 2, height, width) - grid


def build_gmflow(feature_channels: int = 128, num_scales: int = 1, upsample_factor: int = 8, num_head: int = 1,
                 attention_type: str = "swin", ffn_dim_expansion: int = 4, num_transformer_layers: int = 6,
                 attn_splits: Sequence[int] = (2,), corr_radius: Sequence[int] = (-1,),
                 prop_radius: Sequence[int] = (-1,)) -> GMFlow:
    """GMFlow as PerVFI runs it (architecture only).

    The options are the reference's model arguments and the per-scale lists its forward
    takes, with PerVFI's values as defaults. Implemented: one scale, single-head swin
    attention (`attn_splits` windows per side; 1 is full attention), global matching and
    global propagation (radius −1); anything else raises ValueError.
    """
    _require("num_scales", num_scales, 1)
    _require("upsample_factor", upsample_factor, DOWNSAMPLE)  # one scale: the features are at 1/8
    _require("num_head", num_head, 1)
    _require("attention_type", attention_type, "swin")
    _require("corr_radius", list(corr_radius), [-1])
    _require("prop_radius", list(prop_radius), [-1])
    splits = list(attn_splits)
    if len(splits) != num_scales or splits[0] < 1:
        raise ValueError(f"GMFlow attn_splits must be one positive number per scale, got {attn_splits!r}")
    return GMFlow(feature_channels, num_transformer_layers, ffn_dim_expansion, splits[0])


def _require(option: str, value: Any, supported: Any) -> None:
    if value != supported:
        raise ValueError(f"GMFlow {option}={value!r} is not implemented; supported: {supported!r}")
