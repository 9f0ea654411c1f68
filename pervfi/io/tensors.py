"""Frames between files and models: H×W×3 uint8 RGB ↔ 1×3×H×W float in [0, 1].

On CUDA, frames go up from pinned memory without blocking, and come down on a side
stream into pinned memory (`PendingFrame`), so decoding, the model and encoding overlap.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

_side_streams: dict[torch.device, "torch.cuda.Stream"] = {}


def to_tensor(frame: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """H×W×3 uint8 → 1×3×H×W float32 in [0, 1] on `device` (the array is copied, never shared)."""
    device = torch.device(device)
    if device.type == "cuda":
        pixels = torch.from_numpy(frame).pin_memory().to(device, non_blocking=True)
    else:
        pixels = torch.tensor(frame, device=device)
    return pixels.permute(2, 0, 1).unsqueeze(0).float().div(255.0)


def _pixels(image: Tensor) -> Tensor:
    """1×3×H×W in [0, 1] → H×W×3 uint8 on the image's device, rounded to the nearest level."""
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"expected one 1×3×H×W image, got {tuple(image.shape)}")
    return image[0].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).contiguous()


def to_uint8(image: Tensor) -> np.ndarray:
    """1×3×H×W in [0, 1] → H×W×3 uint8, rounded to the nearest level."""
    return _pixels(image).cpu().numpy()


class PendingFrame:
    """An output frame on its way to host memory. On CUDA it is converted to 8 bits on
    the device and copied into pinned memory on a side stream, so the model goes on;
    `array()` (called by the encoder's thread) waits for that copy alone."""

    def __init__(self, image: Tensor) -> None:
        pixels = _pixels(image)
        self._event = None
        if not pixels.is_cuda:
            self._host = pixels.cpu()
            return
        stream = _side_streams.setdefault(pixels.device, torch.cuda.Stream(pixels.device))
        stream.wait_stream(torch.cuda.current_stream(pixels.device))
        with torch.cuda.stream(stream):
            self._host = torch.empty(pixels.shape, dtype=torch.uint8, pin_memory=True)
            self._host.copy_(pixels, non_blocking=True)
            pixels.record_stream(stream)  # the model's allocator must not reuse it before the copy
            self._event = torch.cuda.Event()
            self._event.record(stream)

    def array(self) -> np.ndarray:
        """H×W×3 uint8 RGB."""
        if self._event is not None:
            self._event.synchronize()
        return self._host.numpy()
