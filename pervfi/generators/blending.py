"""PerVFI's asymmetric blending: forward-warped features of the first frame, deformably
aligned features of the second, and soft-binary masks that choose between them."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops import forward_splat, resize_flow
from ..ops.deform import deform_conv2d
from .encoder import PYRAMID_CHANNELS, FeatureEncoder, SoftMetric

# Softmax splatting exponentiates the metric; the reference clips it to ±20 first.
METRIC_CLIP = 20.0
# A pixel is a hole when (splatted ones) / (splatted ones + 1e-7) <= 0.5, as the
# reference's `binary_hole` decides from an "avg" splat of ones.
HOLE_THRESHOLD = 0.5


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.1)


def _upsample2x(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def _hole_mask(coverage: Tensor) -> Tensor:
    """1 where (almost) nothing was splatted, else 0."""
    normalised = coverage / (coverage + 1e-7)
    return (normalised <= HOLE_THRESHOLD).to(coverage.dtype)


class FeaturePyramid(nn.Module):
    """Encodes both frames, splats the first frame's pyramid to time t, and estimates
    the flow from t to the second frame."""

    def __init__(self) -> None:
        super().__init__()
        self.netEncode = FeatureEncoder()
        self.netSoftmetric = SoftMetric()

    def forward(self, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor,
                time: float) -> tuple[list[tuple[Tensor, Tensor]], list[Tensor], Tensor]:
        """Returns per level (first frame splatted to t, second frame as is), the hole
        masks of the splat per level, and the flow t→1 at full resolution."""
        batch = img0.shape[0]
        # Both frames, and the metrics of both directions, go through the networks as one batch.
        both = self.netEncode(torch.cat([img0, img1]))
        features0 = [level[:batch] for level in both]
        features1 = [level[batch:] for level in both]
        swapped = [torch.cat([level[batch:], level[:batch]]) for level in both]
        metrics = self.netSoftmetric(both, swapped, torch.cat([flow01, flow10]))
        metric0t = metrics[:batch] * (2 * time)
        metric1t = metrics[batch:] * (2 * (1 - time))

        flow1t = (1 - time) * flow10
        flow_t1 = -forward_splat(flow1t, flow1t, metric1t.neg().clamp(-METRIC_CLIP, METRIC_CLIP), "soft").output
        warped0, holes = self._splat_pyramid(features0, metric0t, time * flow01)
        return list(zip(warped0, features1)), holes, flow_t1

    @staticmethod
    def _splat_pyramid(features: list[Tensor], metric: Tensor, flow: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Softmax-splat each level; metric and flow are resized level by level, as the reference does."""
        warped, holes = [], []
        for level, feature in enumerate(features):
            if level > 0:
                size = feature.shape[-2:]
                metric = _resize(metric, size)
                flow = resize_flow(flow, size)
            result = forward_splat(feature, flow, metric.neg().clamp(-METRIC_CLIP, METRIC_CLIP), "soft", coverage=True)
            warped.append(result.output)
            holes.append(_hole_mask(result.coverage))
        return warped, holes


class DCNPack(nn.Module):
    """Modulated deformable 3×3 convolution whose offsets and masks come from guide features."""

    def __init__(self, channels: int, offset_groups: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv_offset = nn.Conv2d(channels, offset_groups * 3 * kernel_size**2, 3, padding=1)
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
                coarse_offset = _upsample2x(offset) * 2
                coarse_aligned = _upsample2x(_lrelu(aligned1))
                coarse_merged = _upsample2x(merged)
        return outs


class SoftBinary(nn.Module):
    """The soft-binary mask of one level: where the hole mask (dilated by a large
    convolution) says the first frame is missing, lean on the second, gated by channel
    attention over both features."""

    def __init__(self, channels: int, dilate_size: int = 9, width: int = 64, reduction: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(1, width, dilate_size, padding="same", bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding="same", bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 1, bias=False),
        )
        self.att = nn.Conv2d(channels * 2, width, 3, padding="same")
        self.fc = nn.Sequential(
            nn.Linear(width, width // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(width // reduction, width, bias=False),
            nn.Sigmoid(),
        )
        self.conv2 = nn.Conv2d(width, 1, 1, bias=False)

    def forward(self, hole: Tensor, feature0: Tensor, feature1: Tensor) -> Tensor:
        mask_features = self.conv1(hole)
        attention = self.fc(conv_spatial_mean(self.att, torch.cat([feature0, feature1], 1)))[:, :, None, None]
        return torch.tanh(torch.abs(self.conv2(mask_features * attention)))


def conv_spatial_mean(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """``conv(x).mean((2, 3))`` for a stride-1 "same" convolution, without convolving.

    The mean of a convolution is each tap's weights applied to the sum of the input
    window that tap sees (zero padding contributes nothing): C_in·taps multiply-adds per
    output channel instead of C_in·taps per pixel.
    """
    kernel_h, kernel_w = conv.kernel_size
    height, width = x.shape[-2:]
    pad_top, pad_left = (kernel_h - 1) // 2, (kernel_w - 1) // 2
    window_sums = []
    for i in range(kernel_h):
        rows = slice(max(0, i - pad_top), height + min(0, i - pad_top))
        for j in range(kernel_w):
            cols = slice(max(0, j - pad_left), width + min(0, j - pad_left))
            window_sums.append(x[:, :, rows, cols].sum((2, 3)))
    sums = torch.stack(window_sums, dim=-1)  # B×C_in×taps
    mean = torch.einsum("bct,oct->bo", sums, conv.weight.flatten(2)) / (height * width)
    return mean if conv.bias is None else mean + conv.bias


class AttentionMerge(nn.Module):
    """Blends the two feature pyramids with soft-binary masks, coarse to fine."""

    def __init__(self, dilate_size: int = 9) -> None:
        super().__init__()
        self.softbinary = nn.ModuleDict()
        for i in range(2, -1, -1):
            self.softbinary[str(i)] = SoftBinary(PYRAMID_CHANNELS[i], dilate_size)

    def forward(self, features0: list[Tensor], features1: list[Tensor],
                holes: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Blended features fine to coarse, and the soft masks coarse to fine."""
        blended, masks = [], []
        for i in range(2, -1, -1):
            mask = self.softbinary[str(i)](holes[i], features0[i], features1[i])
            masks.append(mask)
            blended.insert(0, features0[i] * (1 - mask) + features1[i] * mask)
        return blended, masks
