"""Building blocks of RAFT (Teed & Deng, ECCV 2020), shared by RAFT, RAFT-small and GMA.

One small module per idea of the paper: feature/context encoders, the all-pairs
correlation pyramid, the motion encoder, the (separable) convolutional GRU, the flow
head, and convex upsampling. Parameter names follow the official checkpoints.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pervfi.ops import coords_grid, float32_island, held_float32

# RAFT works at 1/8 of the frame: the encoders downsample three times.
DOWNSAMPLE = 8


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels)
    if kind == "none":
        return nn.Sequential()
    raise ValueError(f"unknown normalisation {kind!r}")


class ResidualBlock(nn.Module):
    """Two 3×3 convolutions with normalisation; a (strided) 1×1 projection on the skip."""

    def __init__(self, in_channels: int, channels: int, norm: str, stride: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1, stride=stride, bias=bias)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.relu = nn.ReLU(inplace=True)
        self.norm1 = _norm(norm, channels)
        self.norm2 = _norm(norm, channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            # The official layout registers the skip's norm twice: as norm3 and as
            # downsample.1 (one module). Order matters: on loading, downsample.1 wins.
            self.norm3 = _norm(norm, channels)
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride), self.norm3)

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.norm1(self.conv1(x)))
        y = self.relu(self.norm2(self.conv2(y)))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(skip + y)


class BottleneckBlock(nn.Module):
    """1×1 → 3×3 → 1×1 convolutions (a quarter of the width inside), RAFT-small's block."""

    def __init__(self, in_channels: int, channels: int, norm: str, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels // 4, 1)
        self.conv2 = nn.Conv2d(channels // 4, channels // 4, 3, padding=1, stride=stride)
        self.conv3 = nn.Conv2d(channels // 4, channels, 1)
        self.relu = nn.ReLU(inplace=True)
        self.norm1 = _norm(norm, channels // 4)
        self.norm2 = _norm(norm, channels // 4)
        self.norm3 = _norm(norm, channels)
        self.downsample = None
        if stride != 1:
            self.norm4 = _norm(norm, channels)
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride), self.norm4)

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.norm1(self.conv1(x)))
        y = self.relu(self.norm2(self.conv2(y)))
        y = self.relu(self.norm3(self.conv3(y)))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(skip + y)


class Encoder(nn.Module):
    """Image → features at 1/8 resolution: a 7×7 strided stem and three stages of two blocks.

    `small` uses RAFT-small's bottleneck blocks; `conv_bias=False` is GMFlow's backbone
    (no bias in the stem and the blocks' 3×3 convolutions).
    """

    def __init__(self, output_dim: int, norm: str, small: bool = False, conv_bias: bool = True) -> None:
        super().__init__()
        widths = (32, 32, 64, 96) if small else (64, 64, 96, 128)
        self.norm1 = _norm(norm, widths[0])
        self.conv1 = nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=conv_bias)
        self.relu1 = nn.ReLU(inplace=True)

        def block(c_in: int, c_out: int, stride: int = 1) -> nn.Module:
            if small:
                return BottleneckBlock(c_in, c_out, norm, stride)
            return ResidualBlock(c_in, c_out, norm, stride, bias=conv_bias)

        stages = []
        for stage, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
            stride = 1 if stage == 0 else 2
            stages.append(nn.Sequential(block(c_in, c_out, stride), block(c_out, c_out)))
        self.layer1, self.layer2, self.layer3 = stages
        self.conv2 = nn.Conv2d(widths[-1], output_dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu1(self.norm1(self.conv1(x)))
        return self.conv2(self.layer3(self.layer2(self.layer1(x))))


def correlation_volume(fmap0: Tensor, fmap1: Tensor) -> Tensor:
    """All-pairs dot products / sqrt(C): B×(H0·W0)×H1×W1, source pixels first; float32
    whatever the precision (the contract's "correlation volume")."""
    batch, channels, height, width = fmap0.shape
    with float32_island(fmap0.device.type):
        corr = torch.matmul(fmap0.float().flatten(2).transpose(1, 2), fmap1.float().flatten(2))
    return held_float32("correlation volume", corr.div_(math.sqrt(channels)).view(batch, height * width,
                                                                                 *fmap1.shape[-2:]))


class CorrelationPyramid:
    """The correlation volume pooled over the target image, indexed around a flow each iteration.

    Built once per image pair (not stored between calls), looked up every iteration. Each
    batch row has its own pyramid of N×1×H×W maps (N source pixels). `bidirectional`
    stores one volume: the reverse direction's maps are strided views of the forward
    volume (its transpose) and their pooled levels, so both directions cost one volume
    and two pyramids' pooled levels instead of two volumes.
    """

    def __init__(self, pyramids: list[list[Tensor]], radius: int) -> None:
        self.pyramids = pyramids
        self.radius = radius
        # Built once per pair, so lookups create no small tensors on the device.
        self.offsets = [window_offsets(radius, *level.shape[-2:], level) for level in pyramids[0]]

    @classmethod
    def forward_only(cls, fmap0: Tensor, fmap1: Tensor, levels: int, radius: int) -> "CorrelationPyramid":
        """img0→img1 for each batch row."""
        corr = correlation_volume(fmap0, fmap1)
        return cls([_pooled(row.unsqueeze(1), levels) for row in corr], radius)

    @classmethod
    def bidirectional(cls, fmap0: Tensor, fmap1: Tensor, levels: int, radius: int) -> "CorrelationPyramid":
        """img0→img1 for each batch row, then img1→img0 for each, from one volume."""
        corr = correlation_volume(fmap0, fmap1)
        height, width = corr.shape[-2:]
        forward = [_pooled(row.unsqueeze(1), levels) for row in corr]
        # The reverse maps of row b are corr[b] transposed: viewed H×W×N (img0's pixels
        # first), they are pooled over H×W without a copy.
        reverse = [_pooled_pixels_first(row.view(height, width, -1), levels) for row in corr]
        return cls(forward + reverse, radius)

    @property
    def out_channels(self) -> int:
        return len(self.offsets) * (2 * self.radius + 1) ** 2

    def lookup(self, coords: Tensor) -> Tensor:
        """Correlations in a (2r+1)² window around each target position, per level:
        B×(levels·(2r+1)²)×H×W. As in the official code, the window is flattened with
        the x offset as the major index."""
        batch, _, height, width = coords.shape
        centres = coords.permute(0, 2, 3, 1).reshape(batch, height * width, 1, 1, 2)
        windows = []
        for index, offsets in enumerate(self.offsets):
            sampled = torch.stack([sample_pixels(pyramid[index], centres[row] / 2**index, offsets)
                                   for row, pyramid in enumerate(self.pyramids)])
            windows.append(sampled.view(batch, height, width, -1))
        return torch.cat(windows, dim=-1).permute(0, 3, 1, 2).contiguous().float()


def _pooled(level: Tensor, levels: int) -> list[Tensor]:
    """`level` and its 2×2 average pools, `levels` maps in all."""
    pyramid = [level]
    for _ in range(levels - 1):
        pyramid.append(F.avg_pool2d(pyramid[-1], 2, stride=2))
    return pyramid


def _pooled_pixels_first(level: Tensor, levels: int) -> list[Tensor]:
    """`_pooled` for an H×W×N map (N maps stored pixel-interleaved), pooled in that
    layout (`avg_pool2d` would copy it), returned as N×1×H×W views."""
    pyramid = [level]
    for _ in range(levels - 1):
        previous = pyramid[-1]
        half_h, half_w = previous.shape[0] // 2, previous.shape[1] // 2
        even = previous[:2 * half_h, :2 * half_w]  # as avg_pool2d, an odd last row or column is dropped
        pyramid.append(even.reshape(half_h, 2, half_w, 2, -1).mean((1, 3)))
    return [level.permute(2, 0, 1).unsqueeze(1) for level in pyramid]


def sample_pixels(image: Tensor, coords: Tensor, offsets: Tensor | None = None) -> Tensor:
    """Bilinear samples of `image` at pixel coordinates (x, y), zeros outside; with
    `offsets` (normalised, see `window_offsets`), at those offsets around each point.

    Pixel p maps to (2p + 1) / size − 1 with align_corners=False: the same points as the
    official 2p / (size − 1) − 1 with align_corners=True, but defined for one-pixel maps
    too (where the official formula divides by zero). The normalisation uses plain
    numbers, so no tensor is created on the device per call.
    """
    height, width = image.shape[-2:]
    x, y = coords.unbind(-1)
    grid = torch.stack([(2 * x + 1) / width - 1, (2 * y + 1) / height - 1], dim=-1)
    if offsets is not None:
        grid = grid + offsets
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def window_offsets(radius: int, height: int, width: int, like: Tensor) -> Tensor:
    """The integer offsets (dx, dy) in [−r, r]² of a lookup window on an H×W map, in the
    normalised units of `sample_pixels`: (2r+1)×(2r+1)×2, dx varying along the first axis."""
    steps = torch.arange(-radius, radius + 1, device=like.device, dtype=torch.float32)
    return torch.stack(torch.meshgrid(steps * (2 / width), steps * (2 / height), indexing="ij"), dim=-1)


class MotionEncoder(nn.Module):
    """Encodes correlations and the current flow into motion features (ending with the flow)."""

    def __init__(self, corr_channels: int, small: bool) -> None:
        super().__init__()
        self.small = small
        if small:
            self.convc1 = nn.Conv2d(corr_channels, 96, 1)
            self.convf1 = nn.Conv2d(2, 64, 7, padding=3)
            self.convf2 = nn.Conv2d(64, 32, 3, padding=1)
            self.conv = nn.Conv2d(128, 80, 3, padding=1)
        else:
            self.convc1 = nn.Conv2d(corr_channels, 256, 1)
            self.convc2 = nn.Conv2d(256, 192, 3, padding=1)
            self.convf1 = nn.Conv2d(2, 128, 7, padding=3)
            self.convf2 = nn.Conv2d(128, 64, 3, padding=1)
            self.conv = nn.Conv2d(64 + 192, 128 - 2, 3, padding=1)

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels + 2

    def forward(self, flow: Tensor, corr: Tensor) -> Tensor:
        cor = F.relu(self.convc1(corr))
        if not self.small:
            cor = F.relu(self.convc2(cor))
        flo = F.relu(self.convf2(F.relu(self.convf1(flow))))
        out = F.relu(self.conv(torch.cat([cor, flo], 1)))
        return torch.cat([out, flow], 1)


class ConvGRU(nn.Module):
    """Convolutional GRU with 3×3 gates (RAFT-small)."""

    def __init__(self, hidden_dim: int, input_dim: int) -> None:
        super().__init__()
        self.convz = nn.Conv2d(hidden_dim + input_dim, hidden_dim, 3, padding=1)
        self.convr = nn.Conv2d(hidden_dim + input_dim, hidden_dim, 3, padding=1)
        self.convq = nn.Conv2d(hidden_dim + input_dim, hidden_dim, 3, padding=1)

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        return _gru_step(self.convz, self.convr, self.convq, h, x)


class SepConvGRU(nn.Module):
    """Two GRU steps, with 1×5 then 5×1 gates (RAFT, GMA)."""

    def __init__(self, hidden_dim: int, input_dim: int) -> None:
        super().__init__()
        channels = hidden_dim + input_dim
        self.convz1 = nn.Conv2d(channels, hidden_dim, (1, 5), padding=(0, 2))
        self.convr1 = nn.Conv2d(channels, hidden_dim, (1, 5), padding=(0, 2))
        self.convq1 = nn.Conv2d(channels, hidden_dim, (1, 5), padding=(0, 2))
        self.convz2 = nn.Conv2d(channels, hidden_dim, (5, 1), padding=(2, 0))
        self.convr2 = nn.Conv2d(channels, hidden_dim, (5, 1), padding=(2, 0))
        self.convq2 = nn.Conv2d(channels, hidden_dim, (5, 1), padding=(2, 0))

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        h = _gru_step(self.convz1, self.convr1, self.convq1, h, x)
        return _gru_step(self.convz2, self.convr2, self.convq2, h, x)


def _gru_step(convz: nn.Module, convr: nn.Module, convq: nn.Module, h: Tensor, x: Tensor) -> Tensor:
    hx = torch.cat([h, x], 1)
    z = torch.sigmoid(convz(hx))
    r = torch.sigmoid(convr(hx))
    q = torch.tanh(convq(torch.cat([r * h, x], 1)))
    return (1 - z) * h + z * q


class FlowHead(nn.Module):
    """Hidden state → flow update."""

    def __init__(self, input_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(input_dim, hidden_dim, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden_dim, 2, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.relu(self.conv1(x)))


class UpdateBlock(nn.Module):
    """One refinement step: motion features → GRU → flow update; and, from the final hidden
    state, the weights of the convex upsampling."""

    def __init__(self, corr_channels: int, hidden_dim: int, context_dim: int, small: bool) -> None:
        super().__init__()
        self.encoder = MotionEncoder(corr_channels, small)
        gru_input = context_dim + self.encoder.out_channels + self.extra_input_channels(hidden_dim)
        self.gru = (ConvGRU if small else SepConvGRU)(hidden_dim, gru_input)
        self.flow_head = FlowHead(hidden_dim, 128 if small else 256)
        self.mask = None
        if not small:  # weights of the convex upsampling: 9 neighbours for each of 8×8 sub-pixels
            self.mask = nn.Sequential(
                nn.Conv2d(hidden_dim, 256, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(256, 9 * DOWNSAMPLE**2, 1),
            )

    def extra_input_channels(self, hidden_dim: int) -> int:
        """Channels a subclass adds to the GRU input (GMA: aggregated motion)."""
        return 0

    def gru_input(self, context: Tensor, motion: Tensor, attention: Tensor | None) -> Tensor:
        return torch.cat([context, motion], 1)

    def forward(self, hidden: Tensor, context: Tensor, corr: Tensor, flow: Tensor,
                attention: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The new hidden state and the flow update."""
        motion = self.encoder(flow, corr)
        hidden = self.gru(hidden, self.gru_input(context, motion, attention))
        return hidden, self.flow_head(hidden)

    def upsampling_mask(self, hidden: Tensor) -> Tensor | None:
        """Convex-upsampling weights from the hidden state (None for RAFT-small). Only the
        last iteration's are used, so they are computed once, after the loop."""
        if self.mask is None:
            return None
        # The official code scales the mask by 0.25 "to balance gradients".
        return 0.25 * self.mask(hidden)


def convex_upsample(flow: Tensor, mask: Tensor) -> Tensor:
    """Flow at 1/8 → full resolution, each fine pixel a convex combination of its 3×3
    coarse neighbours (weights from `mask`)."""
    batch, _, height, width = flow.shape
    weights = torch.softmax(mask.view(batch, 1, 9, DOWNSAMPLE, DOWNSAMPLE, height, width), dim=2)
    neighbours = F.unfold(DOWNSAMPLE * flow, [3, 3], padding=1).view(batch, 2, 9, 1, 1, height, width)
    up = torch.sum(weights * neighbours, dim=2).permute(0, 1, 4, 2, 5, 3)
    return up.reshape(batch, 2, DOWNSAMPLE * height, DOWNSAMPLE * width)


def bilinear_upsample8(flow: Tensor) -> Tensor:
    """Flow at 1/8 → full resolution by bilinear interpolation (RAFT-small)."""
    size = (DOWNSAMPLE * flow.shape[2], DOWNSAMPLE * flow.shape[3])
    return DOWNSAMPLE * F.interpolate(flow, size=size, mode="bilinear", align_corners=True)


def initial_coords(batch: int, height: int, width: int, like: Tensor) -> Tensor:
    """Pixel coordinates of the 1/8-resolution grid (x, y), float32."""
    return coords_grid(batch, height, width, like.device, torch.float32).clone()
