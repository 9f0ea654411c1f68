"""A window of a larger frame, for models run tile by tile."""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class Region:
    """A window of a frame: position and size in pixels, and the whole frame's size."""

    top: int
    left: int
    height: int
    width: int
    frame_height: int
    frame_width: int

    def crop(self, x: Tensor, scale: int = 1) -> Tensor:
        """The window of `x` (…×H/scale×W/scale)."""
        return x[..., self.top // scale:(self.top + self.height) // scale,
                 self.left // scale:(self.left + self.width) // scale]
