"""Deformable alignment of the second frame's features to time t (EDVR-style pyramid,
cascading DCNv2), guided by the flow t→1 and the holes of the first frame's splat."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pervfi.ops import resize_flow, upsample2x
from pervfi.ops.deform import deform_conv2d

from .encoder import PYRAMID_CHANNELS


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.1)


class DCNPack(nn.Module):
    """Modulated deformable 3×3 convolution whose offsets and masks come from guide features
    (a new module starts from zero offsets and masks of 0.5, as the reference's training)."""

    def __init__(self, channels: int, offset_groups: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv_offset = nn.Conv2d(channels, offset_groups * 3 * kernel_size**2, 3, padding=1)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)
        self.dconv = _DeformConv(channels, kernel_size)

    def forward(self, x: Tensor, guide: Tensor) -> Tensor:
        offset_y, offset_x, mask = torch.chunk(self.conv_offset(guide), 3, dim=1)
        return self.dconv(x, torch.cat([offset_y, offset_x], 1), torch.sigmoid(mask))


class _DeformConv(nn.Module):
    """Holds the weight and bias of torchvision's DeformConv2d (same names), run by our op."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(channels))
        self.padding = kernel_size // 2
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, offset: Tensor, mask: Tensor) -> Tensor:
        return deform_conv2d(x, offset, self.weight, self.bias, self.padding, mask)


class DeformableAlign(nn.Module):
    """Aligns the second frame's features to time t, coarse to fine (EDVR-style PCD).

    Offsets at each level come from both features, the hole mask and the flow t→1, and
    from the upsampled offsets of the coarser level.
    """

    def __init__(self) -> None:
        super().__init__()
        c = PYRAMID_CHANNELS
        self.offset_conv1 = nn.ModuleDict()
        self.offset_conv2 = nn.ModuleDict()
        self.offset_conv3 = nn.ModuleDict()
        self.deform_conv = nn.ModuleDict()
        self.feat_conv = nn.ModuleDict()
        self.merge_conv1 = nn.ModuleDict()
        self.merge_conv2 = nn.ModuleDict()
        for i in range(2, -1, -1):
            level = f"l{i}"
            self.offset_conv1[level] = nn.Conv2d(c[i] * 2 + 3, c[i], 3, padding=1)
            coarser = 0 if i == 2 else c[i + 1]
            self.offset_conv2[level] = nn.Conv2d(c[i] + coarser, c[i], 3, padding=1)
            if i < 2:
                self.offset_conv3[level] = nn.Conv2d(c[i], c[i], 3, padding=1)
                self.feat_conv[level] = nn.Conv2d(c[i] + coarser, c[i], 3, padding=1)
                self.merge_conv2[level] = nn.Conv2d(c[i] + coarser, c[i], 3, padding=1)
            self.deform_conv[level] = DCNPack(c[i], offset_groups=7 if i == 0 else 8)
            self.merge_conv1[level] = nn.Conv2d(c[i] * 2 + 1, c[i], 3, padding=1)

    def forward(self, features: list[tuple[Tensor, Tensor]], holes: list[Tensor], flow_t1: Tensor) -> list[Tensor]:
        """Merged features per level, fine to coarse order as in `features`."""
        outs: list[Tensor] = [None, None, None]  # type: ignore[list-item]
        for i in range(2, -1, -1):
            level = f"l{i}"
            warped0, feature1 = features[i]
            hole = holes[i]
            flow = resize_flow(flow_t1, hole.shape[-2:])
            offset = _lrelu(self.offset_conv1[level](torch.cat([warped0, feature1, hole, flow], 1)))
            if i == 2:
                offset = _lrelu(self.offset_conv2[level](offset))
            else:
                offset = _lrelu(self.offset_conv2[level](torch.cat([offset, coarse_offset], 1)))
                offset = _lrelu(self.offset_conv3[level](offset))
            aligned1 = self.deform_conv[level](feature1, offset)
            if i < 2:
                aligned1 = self.feat_conv[level](torch.cat([aligned1, coarse_aligned], 1))
            merged = self.merge_conv1[level](torch.cat([warped0, aligned1, hole], 1))
            if i < 2:
                merged = self.merge_conv2[level](torch.cat([merged, coarse_merged], 1))
            outs[i] = merged
            if i > 0:
                coarse_offset = upsample2x(offset) * 2
                coarse_aligned = upsample2x(_lrelu(aligned1))
                coarse_merged = upsample2x(merged)
        return outs
