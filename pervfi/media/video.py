"""Video files through imageio-ffmpeg's bundled ffmpeg: reading frames and their rate."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from pervfi.core.errors import InputError

from . import ffmpeg

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
# Rates that ffmpeg prints rounded (23.98) but that are really NTSC fractions.
NTSC_RATES = tuple(Fraction(n * 1000, 1001) for n in (24, 30, 48, 60, 120, 240))
# A video that decodes to fewer frames than this share of its announced length is truncated
# (a few frames short is ordinary rounding of the duration).
TRUNCATION_SHARE = 0.9


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES and not path.name.startswith(".")


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video's first video stream."""

    width: int
    height: int
    fps: Fraction
    duration: float  # seconds, 0 when unknown

    @property
    def expected_frames(self) -> int:
        return round(self.duration * self.fps)


def exact_rate(fps: float) -> Fraction:
    """The frame rate as a fraction, NTSC rates recognised from ffmpeg's rounded print."""
    for rate in NTSC_RATES:
        if abs(float(rate) - fps) < 0.01:
            return rate
    return Fraction(fps).limit_denominator(1000)


def probe_video(path: Path) -> VideoInfo:
    """Size, rate and duration of a video; InputError naming the file if ffmpeg cannot open it."""
    reader = _open(path)
    try:
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as err:
        raise InputError(f"cannot read video {path}: {ffmpeg.reason(str(err))}") from None
    finally:
        reader.close()
    return _info(meta, path)


def read_video(path: Path) -> Iterator[np.ndarray]:
    """The frames of a video as H×W×3 uint8 RGB, in order; InputError if it is unreadable.

    A truncated video (fewer frames decode than its header announces) gives what decodes,
    as ffmpeg does, with one warning that gives both counts."""
    reader = _open(path)
    try:
        info = _info(next(reader), path)
        count = 0
        for data in reader:
            yield np.frombuffer(data, dtype=np.uint8).reshape(info.height, info.width, 3)
            count += 1
    except (OSError, RuntimeError, StopIteration) as err:
        raise InputError(f"cannot read video {path}: {ffmpeg.reason(str(err))}") from None
    finally:
        reader.close()
    if info.expected_frames > 2 and count < TRUNCATION_SHARE * info.expected_frames:
        log.warning("video %s is truncated: %d frames decode of the %d its header announces; "
                    "interpolating those %d", path, count, info.expected_frames, count)


def _open(path: Path):
    return imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24", bits_per_pixel=24)


def _info(meta: dict, path: Path) -> VideoInfo:
    fps = meta.get("fps") or 0
    if not fps or fps <= 0:
        raise InputError(f"cannot read video {path}: no frame rate found")
    width, height = meta["size"]
    return VideoInfo(width=width, height=height, fps=exact_rate(fps), duration=float(meta.get("duration") or 0))
