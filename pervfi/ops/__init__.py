"""Tensor operations shared by the flow estimators and generators (imports only `pervfi.core`)."""
from .collectives import channel_mean_std
from .padding import Padder
from .precision import FLOAT32_CONTRACT, PRECISIONS, autocast, float32_island, held_float32, precision_dtype
from .region import Region
from .resample import resize, resize_flow, upsample2x, upsample2x_corners
from .splat import SplatResult, forward_splat, softsplat
from .warp import backward_warp, coords_grid

__all__ = [
    "FLOAT32_CONTRACT",
    "PRECISIONS",
    "Padder",
    "Region",
    "SplatResult",
    "autocast",
    "backward_warp",
    "channel_mean_std",
    "coords_grid",
    "float32_island",
    "forward_splat",
    "held_float32",
    "precision_dtype",
    "resize",
    "resize_flow",
    "softsplat",
    "upsample2x",
    "upsample2x_corners",
]
