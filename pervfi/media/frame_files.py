"""Frame files: which files are frames, their natural order, and reading them as 8-bit RGB.

Frames are read with Pillow, which refuses truncated files instead of returning a
partial image. Grey, alpha, palette and 16-bit frames are converted to 8-bit RGB; the
caller is told what was converted so it can warn once per sequence.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pervfi.core.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def natural_key(name: str) -> list[int | str]:
    """Sort key that orders digit runs by value: ``frame2`` before ``frame10``, any prefix."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def list_frames(folder: Path) -> list[Path]:
    """The frame files directly inside `folder`, in natural order."""
    return sorted((p for p in folder.iterdir() if is_image(p)), key=lambda p: natural_key(p.name))


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding the pixels."""
    _check_not_empty(path)
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise InputError(f"cannot read image {path}: {_reason(err)}") from None


def read_image(path: str | Path) -> tuple[np.ndarray, str | None]:
    """The frame as H×W×3 uint8 RGB, and a note on what was converted (None if nothing)."""
    path = Path(path)
    _check_not_empty(path)
    try:
        with Image.open(path) as image:
            sixteen_bit = _is_16_bit(image)
            mode = image.mode
            image.load()
            pixels = _to_rgb8(image)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        raise InputError(f"cannot read image {path}: {_reason(err)}") from None
    notes = []
    if sixteen_bit:
        notes.append("16-bit")
    if mode in ("L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "1"):
        notes.append("grey")
    if "A" in mode or (mode == "P" and "transparency" in image.info):
        notes.append("alpha")
    return pixels, " ".join(notes) or None


def read_frame(path: str | Path) -> np.ndarray:
    """The frame as H×W×3 uint8 RGB, converted silently where needed."""
    return read_image(path)[0]


def _check_not_empty(path: Path) -> None:
    """A zero-byte file is "empty", clearer than the decoder's "cannot identify image file"."""
    try:
        empty = path.stat().st_size == 0
    except OSError as err:
        raise InputError(f"cannot read image {path}: {err.strerror or err}") from None
    if empty:
        raise InputError(f"image {path} is empty (0 bytes)")


def _is_16_bit(image: Image.Image) -> bool:
    """Whether the file stores 16 bits per sample (Pillow reads 16-bit RGB as 8-bit RGB)."""
    if image.mode.startswith("I;16") or image.mode == "I":
        return True
    for tile in image.tile:
        rawmode = tile.args if isinstance(tile.args, str) else (tile.args or ("",))[0]
        if isinstance(rawmode, str) and "16" in rawmode:
            return True
    return False


def _to_rgb8(image: Image.Image) -> np.ndarray:
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit grey: scale to 8 bits
        grey = np.asarray(image).astype(np.float32) / 257.0
        grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode == "F":
        grey = np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode != "RGB":
        image = image.convert("RGB")  # alpha dropped, grey and palette expanded
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
