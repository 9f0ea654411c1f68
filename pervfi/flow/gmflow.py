"""GMFlow optical flow (Xu et al., CVPR 2022) with the configuration PerVFI uses:
one scale at 1/8, swin attention with 2×2 windows, global matching, global propagation,
convex upsampling by 8."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops import Padder, coords_grid
from .base import FlowEstimator, check_pair
from .gmflow_transformer import FeatureFlowAttention, FeatureTransformer, add_window_position
from .raft_parts import Encoder, convex_upsample

UPSAMPLE = 8
# Padding to a multiple of 16 keeps the 1/8 map divisible into the 2×2 attention windows.
PAD_MULTIPLE = 16
MIN_INPUT_SIZE = 16
# ImageNet statistics, which GMFlow normalises its input with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class GMFlow(FlowEstimator):
    """Flow as global matching of transformer features, then propagated and upsampled.

    Images RGB in [0, 1], centred zero padding to a multiple of 16, flow cropped back.
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
            nn.Conv2d(256, UPSAMPLE**2 * 9, 1),
        )

    def estimate(self, img0: Tensor, img1: Tensor) -> Tensor:
        return self._flows(img0, img1, bidirectional=False)[0]

    def estimate_bidirectional(self, img0: Tensor, img1: Tensor) -> tuple[Tensor, Tensor]:
        """Both directions from one backbone and one transformer pass (the transformer
        treats the two frames symmetrically); the reverse matching is the transposed one."""
        flow01, flow10 = self._flows(img0, img1, bidirectional=True)
        return flow01, flow10

    def _flows(self, img0: Tensor, img1: Tensor, bidirectional: bool) -> list[Tensor]:
        check_pair(img0, img1)
        height, width = img0.shape[-2:]
        if min(height, width) < MIN_INPUT_SIZE:
            raise ValueError(f"expected frames of at least {MIN_INPUT_SIZE}×{MIN_INPUT_SIZE} pixels, got {height}×{width}")
        padder = Padder(height, width, multiple=PAD_MULTIPLE, mode="center")
        img0, img1 = padder.apply(img0.float(), img1.float())
        mean = torch.tensor(IMAGENET_MEAN, device=img0.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=img0.device).view(1, 3, 1, 1)
        features = self.backbone((torch.cat([img0, img1]) - mean) / std)
        feature0, feature1 = (add_window_position(f, self.attn_splits) for f in features.chunk(2))
        feature0, feature1 = self.transformer(feature0, feature1, self.attn_splits)

        correlation = _correlation(feature0, feature1)
        sources, correlations = [feature0], [correlation]
        if bidirectional:
            sources.append(feature1)
            correlations.append(correlation.transpose(1, 2))
        source = torch.cat(sources)
        flow = _soft_argmax_flow(torch.cat(correlations), *feature0.shape[-2:])
        flow = self.feature_flow_attn(source, flow)
        mask = self.upsampler(torch.cat([flow, source], 1))
        return list(padder.crop(convex_upsample(flow, mask))[0].chunk(len(sources)))


def _correlation(feature0: Tensor, feature1: Tensor) -> Tensor:
    """All-pairs similarity, B×(H·W)×(H·W), rows: pixels of frame 0."""
    c = feature0.shape[1]
    return torch.matmul(feature0.flatten(2).transpose(1, 2), feature1.flatten(2)) / c**0.5


def _soft_argmax_flow(correlation: Tensor, height: int, width: int) -> Tensor:
    """Expected matching position under the softmax of each row, minus the pixel's own."""
    batch = correlation.shape[0]
    grid = coords_grid(batch, height, width, correlation.device, correlation.dtype)
    positions = grid.flatten(2).transpose(1, 2)  # B×(H·W)×2
    matched = torch.matmul(F.softmax(correlation, dim=-1), positions)
    return matched.transpose(1, 2).reshape(batch, 2, height, width) - grid


def build_gmflow(feature_channels: int = 128, num_transformer_layers: int = 6, ffn_dim_expansion: int = 4,
                 attn_splits: int = 2) -> GMFlow:
    """GMFlow with PerVFI's inference settings (architecture only)."""
    return GMFlow(feature_channels, num_transformer_layers, ffn_dim_expansion, attn_splits)
