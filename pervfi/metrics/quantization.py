"""Predictions as the evaluation scores them: rounded to 8 bits, as a saved frame would be."""
from __future__ import annotations

from torch import Tensor


def quantize(image: Tensor) -> Tensor:
    """The image as an 8-bit file would store it (rounded to multiples of 1/255)."""
    return (image.clamp(0, 1) * 255).round() / 255
