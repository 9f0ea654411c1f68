"""HRNet-style multi-scale fusion of the blended pyramid (Wang et al., "Deep
High-Resolution Representation Learning", 2019), as configured by PerVFI: a bottleneck
stem at full resolution, then stages of 2 and 3 parallel branches (32, 64, 96 channels)
that exchange information, and strided heads that halve every level.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from pervfi.ops.bands import in_bands

from .encoder import PYRAMID_CHANNELS
from .layers import conv3x3

STAGE2_CHANNELS = (32, 64)
STAGE3_CHANNELS = (32, 64, 96)
MODULES_PER_STAGE = 2
BLOCKS_PER_BRANCH = 2
STEM_CHANNELS = 64
BOTTLENECKS = 4
# The full-resolution head (stem, bottlenecks, transition) reaches one row per 3×3
# convolution: 1 + BOTTLENECKS + 1.
HEAD_REACH = BOTTLENECKS + 2


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv2(self.relu(self.conv1(x))).add_(x))


class Bottleneck(nn.Module):
    """1×1 → 3×3 → 1×1 (×4 channels) with a (projected) residual connection."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.conv2 = conv3x3(channels, channels)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.downsample = None if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.conv1(x))
        out = self.relu(self.conv2(out))
        return self.relu(self.conv3(out).add_(residual))


def _conv_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(conv3x3(in_channels, out_channels, stride), nn.ReLU(inplace=True))


def _fuse_path(channels: tuple[int, ...], source: int, target: int) -> nn.Module | None:
    """How branch `source` reaches branch `target`: 1×1 conv + nearest upsampling from
    coarser branches, a chain of strided 3×3 convs from finer ones (ReLU between)."""
    if source == target:
        return None
    if source > target:
        return nn.Sequential(
            nn.Conv2d(channels[source], channels[target], 1, bias=False),
            nn.Upsample(scale_factor=2 ** (source - target), mode="nearest"),
        )
    steps = [_conv_relu(channels[source], channels[source], stride=2) for _ in range(target - source - 1)]
    steps.append(conv3x3(channels[source], channels[target], stride=2))
    return nn.Sequential(*steps)


class HighResolutionModule(nn.Module):
    """Parallel branches of basic blocks, then every branch receives the sum of all."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlock(c) for _ in range(BLOCKS_PER_BRANCH)]) for c in channels
        )
        self.fuse_layers = nn.ModuleList(
            nn.ModuleList(_fuse_path(channels, source, target) for source in range(len(channels)))
            for target in range(len(channels))
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        fused = []
        for target, paths in enumerate(self.fuse_layers):
            total = xs[0].clone() if paths[0] is None else paths[0](xs[0])
            for source in range(1, len(xs)):
                total.add_(xs[source] if paths[source] is None else paths[source](xs[source]))
            fused.append(self.relu(total))
        return fused


class MultiscaleFuse(nn.Module):
    """Fuses the three blended levels (35 ch at 1, 64 at 1/2, 96 at 1/4) into the
    conditions of the decoder (35 ch at 1/2, 64 at 1/4, 96 at 1/8)."""

    def __init__(self, channels: tuple[int, int, int] = PYRAMID_CHANNELS) -> None:
        super().__init__()
        self.stems = nn.ModuleList(_conv_relu(c, STEM_CHANNELS) for c in channels)
        stem_out = STEM_CHANNELS * Bottleneck.expansion
        self.layer1 = nn.Sequential(
            *[Bottleneck(STEM_CHANNELS if i == 0 else stem_out, STEM_CHANNELS) for i in range(BOTTLENECKS)]
        )
        # Stage 1 -> 2: the full-resolution branch narrows, a new 1/2 branch starts.
        self.transition1 = nn.ModuleList([
            _conv_relu(stem_out, STAGE2_CHANNELS[0]),
            nn.Sequential(_conv_relu(stem_out, STAGE2_CHANNELS[1], stride=2)),
        ])
        self.extra1 = _conv_relu(STEM_CHANNELS + STAGE2_CHANNELS[1], STAGE2_CHANNELS[1])
        self.stage2 = nn.Sequential(*[HighResolutionModule(STAGE2_CHANNELS) for _ in range(MODULES_PER_STAGE)])
        # Stage 2 -> 3: branches kept, a new 1/4 branch from the coarsest one.
        self.transition2 = nn.ModuleList([
            None, None, nn.Sequential(_conv_relu(STAGE2_CHANNELS[1], STAGE3_CHANNELS[2], stride=2)),
        ])
        self.extra2 = _conv_relu(STEM_CHANNELS + STAGE3_CHANNELS[2], STAGE3_CHANNELS[2])
        self.stage3 = nn.Sequential(*[HighResolutionModule(STAGE3_CHANNELS) for _ in range(MODULES_PER_STAGE)])
        self.final_layers = nn.ModuleList(
            nn.Conv2d(STAGE3_CHANNELS[i], channels[i], 3, stride=2, padding=1) for i in range(3)
        )

    def forward(self, levels: list[Tensor]) -> list[Tensor]:
        # The head's 256-channel full-resolution features are the largest of the whole
        # generator (about 700 floats per pixel while they live): large frames go a band
        # of rows at a time, so they never exist for the whole frame.
        finest = levels[0]
        bytes_per_row = 4 * 700 * finest.shape[0] * finest.shape[-1]
        branches = in_bands(lambda low, high: self._head(finest[..., low:high, :]), finest.shape[-2], HEAD_REACH,
                            (1, 2), bytes_per_row)
        stem1, stem2 = (stem(x) for stem, x in zip(self.stems[1:], levels[1:]))
        # Each new branch also receives the stem of the input level at its resolution.
        branches[1] = self.extra1(torch.cat([stem1, branches[1]], 1))
        branches = self.stage2(branches)
        branches = [branches[0], branches[1], self.transition2[2](branches[1])]
        branches[2] = self.extra2(torch.cat([stem2, branches[2]], 1))
        branches = self.stage3(branches)
        return [head(x) for head, x in zip(self.final_layers, branches)]

    def _head(self, level: Tensor) -> list[Tensor]:
        """The two branches that stage 2 starts from (full and 1/2 resolution) from the
        finest level (or a band of its rows)."""
        x = self.layer1(self.stems[0](level))
        return [self.transition1[0](x), self.transition1[1](x)]
