"""Frames between files and models: H×W×3 uint8 RGB ↔ 1×3×H×W float in [0, 1]."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def to_tensor(frame: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """H×W×3 uint8 → 1×3×H×W float32 in [0, 1] on `device` (the array is copied, never shared).
    On CUDA the frame goes up from pinned memory without blocking the host."""
    device = torch.device(device)
    if device.type == "cuda":
        pixels = torch.from_numpy(frame).pin_memory().to(device, non_blocking=True)
    else:
        pixels = torch.tensor(frame, device=device)
    return pixels.permute(2, 0, 1).unsqueeze(0).float().div(255.0)


def to_pixels(image: Tensor) -> Tensor:
    """1×3×H×W in [0, 1] → H×W×3 uint8 on the image's device, rounded to the nearest level."""
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"expected one 1×3×H×W image, got {tuple(image.shape)}")
    return image[0].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).contiguous()


def to_uint8(image: Tensor) -> np.ndarray:
    """1×3×H×W in [0, 1] → H×W×3 uint8, rounded to the nearest level."""
    return to_pixels(image).cpu().numpy()
