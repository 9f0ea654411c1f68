"""The feature pyramid encoder and the soft metric that ranks pixels for splatting."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from pervfi.ops import backward_warp

from .layers import Basic, Downsample, Upsample, conv3x3, prelu

# Channels of the three pyramid levels: the image (3) + 32 features at full resolution,
# then 64 at 1/2 and 96 at 1/4.
PYRAMID_CHANNELS = (35, 64, 96)


class FeatureEncoder(nn.Module):
    """Three-level feature pyramid of one image (the softsplat "Encode" network)."""

    def __init__(self) -> None:
        super().__init__()
        self.netOne = nn.Sequential(conv3x3(3, 32), prelu(32), conv3x3(32, 32), prelu(32))
        self.netTwo = nn.Sequential(conv3x3(32, 64, stride=2), prelu(64), conv3x3(64, 64), prelu(64))
        self.netThr = nn.Sequential(conv3x3(64, 96, stride=2), prelu(96), conv3x3(96, 96), prelu(96))

    def forward(self, image: Tensor) -> list[Tensor]:
        """[image ⊕ features (35 ch, full size), 64 ch at 1/2, 96 ch at 1/4]."""
        one = self.netOne(image)
        two = self.netTwo(one)
        three = self.netThr(two)
        return [torch.cat([image, one], 1), two, three]


def _grid_name(row: int, col: int, to_row: int, to_col: int) -> str:
    # The reference names its grid blocks "0x0 - 1x0" (row x column).
    return f"{row}x{col} - {to_row}x{to_col}"


class SoftMetric(nn.Module):
    """A per-pixel importance metric for softmax splatting (Niklaus & Liu 2020).

    It sees the image and the brightness-constancy error of the flow (feature distance
    between the image and the other image warped back along the flow) and runs a small
    two-column grid network over four scales.
    """

    def __init__(self) -> None:
        super().__init__()
        self.netInput = nn.Conv2d(3, 12, 3, padding=1, bias=False)
        self.netError = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        widths = (16, 32, 64, 96)
        for row, width in enumerate(widths):
            self.add_module(_grid_name(row, 0, row, 1), Basic((width, width, width), pre_activation=True))
        for row in range(3):
            self.add_module(_grid_name(row, 0, row + 1, 0), Downsample((widths[row], widths[row + 1], widths[row + 1])))
        for row in range(3, 0, -1):
            self.add_module(_grid_name(row, 1, row - 1, 1), Upsample((widths[row], widths[row - 1], widths[row - 1])))
        self.netOutput = Basic((16, 16, 1), pre_activation=False)

    def forward(self, features: list[Tensor], other_features: list[Tensor], flow: Tensor) -> Tensor:
        """Metric of the first image's pixels, B×1×H×W, for splatting along `flow`."""
        level0 = features[0]
        error = (level0 - backward_warp(other_features[0], flow)).abs().mean(1, keepdim=True)
        rows = [torch.cat([self.netInput(level0[:, :3]), self.netError(error)], 1)]
        for row in range(3):
            rows.append(self._modules[_grid_name(row, 0, row + 1, 0)](rows[-1]))
        for row in range(3, -1, -1):
            rows[row] = self._modules[_grid_name(row, 0, row, 1)](rows[row])
            if row < 3:
                up = self._modules[_grid_name(row + 1, 1, row, 1)](rows[row + 1])
                rows[row] = rows[row] + _crop_to(up, rows[row])
        return self.netOutput(rows[0])


def _crop_to(x: Tensor, like: Tensor) -> Tensor:
    """Drop the extra last row/column an upsampled odd-sized map can have."""
    return x[..., : like.shape[-2], : like.shape[-1]]
