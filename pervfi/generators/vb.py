"""PerVFI-vb: the asymmetric-blending conditions decoded by a multi-scale convolutional
decoder (faster than v00's normalizing flow, deterministic)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..tiling import Region
from .base import PerVFIGenerator
from .encoder import PYRAMID_CHANNELS
from .layers import Basic
from .normalizing_flow import unsqueeze2d


class MultiscaleDecoder(nn.Module):
    """Coarse to fine: each level is refined with the upsampled coarser one, and the
    finest (1/2 resolution, 128 channels) is turned into the frame by depth-to-space."""

    def __init__(self, channels: tuple[int, int, int] = PYRAMID_CHANNELS) -> None:
        super().__init__()
        c0, c1, c2 = channels
        self.conv3 = Basic((c2, 128, c1), pre_activation=False)
        self.conv2 = Basic((c1 * 2, 256, c0), pre_activation=False)
        self.conv1 = Basic((c0 * 2, 96, 128), pre_activation=False)
        self.tail = nn.Conv2d(128 // 4, 3, 3, padding="same")

    def forward(self, conds: list[Tensor], region: Region | None = None) -> Tensor:
        half, quarter, eighth = conds
        x = _upsample2x(self.conv3(eighth), region, scale=8)
        x = _upsample2x(self.conv2(torch.cat([x, quarter], 1)), region, scale=4)
        x = self.conv1(torch.cat([x, half], 1))
        return self.tail(unsqueeze2d(x))


def _upsample2x(x: Tensor, region: Region | None, scale: int) -> Tensor:
    """×2 bilinear upsampling with align_corners=True (the reference's
    nn.UpsamplingBilinear2d) of a map at 1/`scale` of the frame.

    align_corners=True samples depend on the whole frame's size; for a tile (`region`)
    the samples are placed where the whole frame's upsampling puts them, so tiles agree.
    """
    height, width = x.shape[-2:]
    if region is None:
        rows = _upsample_matrix(height, height, 0, x.device)
        cols = _upsample_matrix(width, width, 0, x.device)
    else:
        rows = _upsample_matrix(height, region.frame_height // scale, region.top // scale, x.device)
        cols = _upsample_matrix(width, region.frame_width // scale, region.left // scale, x.device)
    return torch.einsum("oh,bchw,pw->bcop", rows, x, cols)


def _upsample_matrix(size: int, frame_size: int, offset: int, device: torch.device) -> Tensor:
    """(2·size)×size linear-interpolation matrix of a window of `size` samples starting at
    `offset` on an axis of `frame_size` samples, upsampled ×2 with align_corners=True."""
    target = torch.arange(2 * size, device=device, dtype=torch.float32) + 2 * offset
    step = (frame_size - 1) / (2 * frame_size - 1)
    source = (target * step - offset).clamp(0, size - 1)
    low = source.floor().clamp(max=max(size - 2, 0))
    frac = source - low
    rows = torch.arange(2 * size, device=device)
    matrix = torch.zeros(2 * size, size, device=device)
    matrix[rows, low.long()] = 1 - frac
    if size > 1:
        matrix[rows, low.long() + 1] += frac
    return matrix


class PerVFIvb(PerVFIGenerator):
    """PerVFI with the multi-scale decoder; `zs` and `generator` are ignored."""

    def __init__(self, dilate_size: int = 9) -> None:
        super().__init__(dilate_size)
        self.generator = MultiscaleDecoder(PYRAMID_CHANNELS)

    def decode(self, conds: list[Tensor], zs: list[Tensor] | None, generator: torch.Generator | None,
               region: Region | None) -> Tensor:
        return self.generator(conds, region)


def build_vb(dilate_size: int = 9) -> PerVFIvb:
    """The vb generator (architecture only; load weights separately)."""
    return PerVFIvb(dilate_size=dilate_size)
