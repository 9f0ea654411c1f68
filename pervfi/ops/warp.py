"""Backward warping and coordinate grids."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def coords_grid(batch: int, height: int, width: int, device: torch.device | str | None = None,
                dtype: torch.dtype = torch.float32) -> Tensor:
    """Pixel coordinates, B×2×H×W, channel 0 is x (column), channel 1 is y (row)."""
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype),
        torch.arange(width, device=device, dtype=dtype),
        indexing="ij",
    )
    return torch.stack([xs, ys]).unsqueeze(0).expand(batch, 2, height, width)


def backward_warp(image: Tensor, flow: Tensor, mode: str = "bilinear") -> Tensor:
    """Sample `image` at (x + u, y + v) bilinearly (or by `mode`, as `grid_sample` takes it);
    zeros outside the frame. Apple MPS has no bicubic `grid_sample`: there, bicubic
    sampling falls back to bilinear.

    The normalisation (align_corners=True, divide by (size − 1) / 2) follows the
    reference `backwarp`; zero padding is supported by `grid_sample` on every backend.
    """
    batch, _, height, width = flow.shape
    grid = (coords_grid(batch, height, width, flow.device, flow.dtype) + flow).permute(0, 2, 3, 1)
    x, y = grid.unbind(-1)
    # Plain numbers, so no tensor is created on the device per call.
    grid = torch.stack([x / _half_extent(width) - 1.0, y / _half_extent(height) - 1.0], dim=-1)
    if mode == "bicubic" and image.device.type == "mps":
        mode = "bilinear"
    return F.grid_sample(image, grid, mode=mode, padding_mode="zeros", align_corners=True)


def _half_extent(size: int) -> float:
    """(size − 1) / 2, the reference's normalisation; for one pixel a tiny number instead
    of zero (where the reference divides by zero)."""
    return (size - 1.0) / 2.0 or math.ulp(0.0)

