"""Deformable alignment of the second frame's features to time t (EDVR-style pyramid,
cascading DCNv2), guided by the flow t→1 and the holes of the first frame's splat."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pervfi.ops import resize_flow, upsample2x
from pervfi.ops.bands import in_bands
from pervfi.ops.deform import deform_conv2d

from .encoder import PYRAMID_CHANNELS

# Rows a level's output depends on beyond its own: one per 3×3 convolution on the longest
# path (three offset convolutions, the deformable one's offsets, feat_conv, two merges).
LEVEL_REACH = 7


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

    def forward(self, x: Tensor, guide: Tensor, top: int = 0) -> Tensor:
        """The output rows of `guide` (a band of the frame's rows from row `top`, or all)."""
        # Offsets, masks and sampled columns take about 3·offset channels + 2·taps·C
        # floats per output pixel: large frames go a band of rows at a time.
        per_pixel = 3 * self.conv_offset.out_channels + 2 * self.dconv.weight[0, 0].numel() * x.shape[1]
        return in_bands(lambda low, high: [self._band(x, guide[..., low:high, :], top + low)], guide.shape[-2], 1,
                        [1], 4 * per_pixel * x.shape[0] * x.shape[-1])[0]

    def _band(self, x: Tensor, guide: Tensor, top: int) -> Tensor:
        offset_y, offset_x, mask = torch.chunk(self.conv_offset(guide), 3, dim=1)
        return self.dconv(x, torch.cat([offset_y, offset_x], 1), torch.sigmoid(mask), top)


class _DeformConv(nn.Module):
    """Holds the weight and bias of torchvision's DeformConv2d (same names), run by our op."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(channels))
        self.padding = kernel_size // 2
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, offset: Tensor, mask: Tensor, top: int = 0) -> Tensor:
        return deform_conv2d(x, offset, self.weight, self.bias, self.padding, mask, top)


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
        """Merged features per level, fine to coarse order as in `features`.

        Each level is computed a band of rows at a time when its intermediates would be
        large (they are local but for the deformable sampling, which reads the whole
        second frame), so the finest level's never exist for the whole frame at once.
        """
        outs: list[Tensor] = [None, None, None]  # type: ignore[list-item]
        coarse: list[Tensor] = []  # the coarser level's merged features, offsets and aligned features
        for i in range(2, -1, -1):
            warped0, feature1 = features[i]
            inputs = [warped0, feature1, holes[i], resize_flow(flow_t1, holes[i].shape[-2:])]
            channels, coarse_channels = warped0.shape[1], sum(x.shape[1] for x in coarse)
            bytes_per_row = 4 * (12 * channels + 2 * coarse_channels) * warped0.shape[0] * warped0.shape[-1]
            results = in_bands(lambda low, high: self._level(i, inputs, coarse, low, high), warped0.shape[-2],
                               LEVEL_REACH + 1, [1] * (1 if i == 0 else 3), bytes_per_row)
            outs[i], coarse = results[0], results
        return outs

    def _level(self, i: int, inputs: list[Tensor], coarse: list[Tensor], low: int, high: int) -> list[Tensor]:
        """Rows [low, high) of level `i`: the merged features, and for a coarser level also
        its offsets and aligned features (activated), which the next level upsamples."""
        level = f"l{i}"
        warped0, feature1, hole, flow = (x[..., low:high, :] for x in inputs)
        offset = _lrelu(self.offset_conv1[level](torch.cat([warped0, feature1, hole, flow], 1)))
        if coarse:
            coarse_merged, coarse_offset, coarse_aligned = (_upsampled_rows(x, low, high) for x in coarse)
            offset = _lrelu(self.offset_conv2[level](torch.cat([offset, coarse_offset * 2], 1)))
            offset = _lrelu(self.offset_conv3[level](offset))
        else:
            offset = _lrelu(self.offset_conv2[level](offset))
        aligned1 = self.deform_conv[level](inputs[1], offset, low)
        if coarse:
            aligned1 = self.feat_conv[level](torch.cat([aligned1, coarse_aligned], 1))
        merged = self.merge_conv1[level](torch.cat([warped0, aligned1, hole], 1))
        if coarse:
            merged = self.merge_conv2[level](torch.cat([merged, coarse_merged], 1))
        return [merged] if i == 0 else [merged, offset, _lrelu(aligned1)]


def _upsampled_rows(x: Tensor, low: int, high: int) -> Tensor:
    """Rows [low, high) of `upsample2x(x)` (low and high even), from the rows of `x` they
    depend on."""
    start, stop = max(0, low // 2 - 1), min(x.shape[-2], high // 2 + 1)
    return upsample2x(x[..., start:stop, :])[..., low - 2 * start:high - 2 * start, :]
