"""Optical flow as KITTI-style 16-bit PNG, the format of the authors' precomputed Vimeo90K flows.

Each pixel stores ``uint16(128·u + 2^15)``, ``uint16(128·v + 2^15)`` and a validity flag (1) in
the red, green and blue channels: 1/128 pixel steps over ±256 pixels. The reference writes with
a float-to-uint16 cast (truncation); values outside the range are clipped here instead of wrapping.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pervfi.core.errors import InputError
from pervfi.core.files import written_whole

SCALE = 128.0
OFFSET = 2.0**15


def write_flow(path: Path, flow: np.ndarray) -> None:
    """Write an H×W×2 float flow (pixels, x then y) atomically: a temporary file renamed into place."""
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"expected an H×W×2 flow, got shape {flow.shape}")
    coded = np.clip(SCALE * flow.astype(np.float32) + OFFSET, 0, 65535).astype(np.uint16)
    valid = np.ones(flow.shape[:2] + (1,), dtype=np.uint16)
    bgr = np.concatenate([coded, valid], axis=2)[..., ::-1]  # OpenCV writes B, G, R
    with written_whole(path, suffix=".png") as partial:
        if not cv2.imwrite(str(partial), np.ascontiguousarray(bgr)):
            raise OSError(f"cannot write {path}")


def read_flow(path: Path) -> np.ndarray:
    """The H×W×2 float32 flow in `path`; InputError naming the file when it is not such a PNG."""
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None
    if pixels is None:
        problem = "it does not exist" if not path.exists() else "it is not a readable PNG"
        raise InputError(f"cannot read flow file {path}: {problem}")
    if pixels.dtype != np.uint16 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise InputError(f"cannot read flow file {path}: expected a 16-bit 3-channel PNG (KITTI flow), "
                         f"got {pixels.dtype} with shape {pixels.shape}")
    return (pixels[..., 2:0:-1].astype(np.float32) - OFFSET) / SCALE
