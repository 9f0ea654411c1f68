"""Resizing images and flow fields, and the two ×2 upsamplings of the PerVFI networks."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .region import Region


def resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of a B×C×H×W map to `size` (align_corners=False)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def resize_flow(flow: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinearly resize a flow field to `size` and scale its vectors by the height ratio.

    The reference scales both components by the height ratio only (``resize(..., scale=True)``
    in PFlowVFI); inside PerVFI the pyramid keeps the aspect ratio, so this is exact there.
    """
    return resize(flow, size) * (size[0] / flow.shape[-2])


def upsample2x(x: Tensor) -> Tensor:
    """×2 bilinear upsampling with align_corners=False (the pyramid's coarse-to-fine steps)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def upsample2x_corners(x: Tensor, region: Region | None = None, scale: int = 1) -> Tensor:
    """×2 bilinear upsampling with align_corners=True (the reference's nn.UpsamplingBilinear2d)
    of a map at 1/`scale` of the frame.

    align_corners=True samples depend on the whole frame's size: for a window `region` of a
    larger frame, the samples are placed where the whole frame's upsampling puts them, so
    tiles agree with the whole frame.
    """
    if region is None:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
    height, width = x.shape[-2:]
    rows = _window_upsample_matrix(height, region.frame_height // scale, region.top // scale, x)
    cols = _window_upsample_matrix(width, region.frame_width // scale, region.left // scale, x)
    return torch.einsum("oh,bchw,pw->bcop", rows, x, cols)


def _window_upsample_matrix(size: int, frame_size: int, offset: int, like: Tensor) -> Tensor:
    """(2·size)×size linear-interpolation matrix of a window of `size` samples starting at
    `offset` on an axis of `frame_size` samples, upsampled ×2 with align_corners=True."""
    target = torch.arange(2 * size, device=like.device, dtype=torch.float32) + 2 * offset
    step = (frame_size - 1) / (2 * frame_size - 1)
    source = (target * step - offset).clamp(0, size - 1)
    low = source.floor().clamp(max=max(size - 2, 0))
    frac = source - low
    rows = torch.arange(2 * size, device=like.device)
    matrix = torch.zeros(2 * size, size, device=like.device)
    matrix[rows, low.long()] = 1 - frac
    if size > 1:
        matrix[rows, low.long() + 1] += frac
    return matrix.to(like.dtype)
