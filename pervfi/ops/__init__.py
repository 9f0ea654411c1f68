"""Tensor operations shared by the flow estimators and generators."""
from .padding import Padder
from .splat import SplatResult, forward_splat, softsplat
from .warp import backward_warp, coords_grid, resize_flow

__all__ = [
    "Padder",
    "SplatResult",
    "backward_warp",
    "coords_grid",
    "forward_splat",
    "resize_flow",
    "softsplat",
]
