"""Output frames on their way from the model to the encoder.

On CUDA a frame is converted to 8 bits on the device and copied into pinned memory on a side
stream (one per device, made once), so the model goes on while the copy runs; the encoder's
thread waits for that copy alone. Whether the frame was finite travels with it (NaN would
otherwise become a black pixel silently), and is an error when the frame is read.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from pervfi.core.errors import NonFiniteOutputError
from pervfi.media.tensors import to_pixels

_side_streams: dict[torch.device, "torch.cuda.Stream"] = {}


def side_stream(device: torch.device) -> "torch.cuda.Stream":
    """The copy stream of a CUDA device, created on first use."""
    if device not in _side_streams:
        _side_streams[device] = torch.cuda.Stream(device)
    return _side_streams[device]


class PendingFrame:
    """An output frame on its way to host memory; `array()` waits for it."""

    def __init__(self, image: Tensor) -> None:
        pixels, finite = to_pixels(image), torch.isfinite(image).all()
        self._event = None
        if not pixels.is_cuda:
            self._host, self._finite = pixels.cpu(), finite
            return
        stream = side_stream(pixels.device)
        stream.wait_stream(torch.cuda.current_stream(pixels.device))
        with torch.cuda.stream(stream):
            self._host = torch.empty(pixels.shape, dtype=torch.uint8, pin_memory=True)
            self._host.copy_(pixels, non_blocking=True)
            self._finite = torch.empty((), dtype=torch.bool, pin_memory=True)
            self._finite.copy_(finite, non_blocking=True)
            for tensor in (pixels, finite):  # the model's allocator must not reuse them before the copy
                tensor.record_stream(stream)
            self._event = torch.cuda.Event()
            self._event.record(stream)

    def array(self) -> np.ndarray:
        """H×W×3 uint8 RGB; NonFiniteOutputError if the model's frame held NaN or infinity."""
        if self._event is not None:
            self._event.synchronize()
        if not self._finite.item():
            raise NonFiniteOutputError(
                "the model made NaN or infinite values for an output frame (numbers beyond its precision's "
                "range, e.g. fp16's 65504, or broken weights); run with --precision fp32")
        return self._host.numpy()
