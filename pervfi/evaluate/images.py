"""Frames as the evaluation handles them: files → H×W×3 uint8 RGB → 1×3×H×W float in [0, 1]."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from ..errors import InputError


def read_rgb(path: Path) -> np.ndarray:
    """An image file as H×W×3 uint8 RGB."""
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if frame is None:
        raise InputError(f"cannot read image {path}")
    return np.ascontiguousarray(frame[..., ::-1])


def to_tensor(frame: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """H×W×3 uint8 → 1×3×H×W float32 in [0, 1] on `device`."""
    return torch.from_numpy(np.array(frame, copy=True)).to(device).permute(2, 0, 1)[None].float() / 255.0


def to_uint8(image: Tensor) -> np.ndarray:
    """1×3×H×W in [0, 1] → H×W×3 uint8, rounded to the nearest level."""
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"expected one 1×3×H×W image, got {tuple(image.shape)}")
    return (image[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).contiguous().cpu().numpy()


def quantize(image: Tensor) -> Tensor:
    """The image as an 8-bit file would store it (rounded to multiples of 1/255)."""
    return (image.clamp(0, 1) * 255).round() / 255
