"""Animated GIFs with an optimised palette: ffmpeg's palettegen, then paletteuse.

A GIF holds at most 256 colours. One palette computed from the whole clip (first pass)
and applied with error diffusion (second pass) looks far better than ffmpeg's fixed
default palette. The two passes read the source twice instead of holding every frame
in memory, so long clips cost no more memory than short ones.
"""
from __future__ import annotations

import logging
from pathlib import Path

from pervfi.core.errors import OutputError

from . import ffmpeg

log = logging.getLogger(__name__)

# GIF frame delays are whole hundredths of a second, and browsers show delays under
# 2/100 s as 1/10 s: rates above this play slower than asked.
FASTEST_GIF_RATE = 50
DITHER = "sierra2_4a"  # error diffusion: smooth gradients, little flicker


def encode_gif(source: Path, target: Path, max_side: int | None = None) -> None:
    """Write `target`, an animated GIF of the video `source` at its frame rate, looping.

    `max_side` shrinks frames whose larger side exceeds it (keeping the aspect ratio), for
    GIFs meant for web pages. An OutputError carries ffmpeg's reason when encoding fails.
    """
    palette = target.with_name(f".{target.name}.palette.png")
    resize = _fit(max_side) if max_side else "null"
    try:
        _ffmpeg(["-i", str(source), "-vf", f"{resize},palettegen=stats_mode=full", "-update", "1",
                 "-frames:v", "1", "-y", str(palette)], target)
        _ffmpeg(["-i", str(source), "-i", str(palette),
                 "-lavfi", f"[0:v]{resize}[frames];[frames][1:v]paletteuse=dither={DITHER}:diff_mode=rectangle",
                 "-loop", "0", "-f", "gif", "-y", str(target)], target)
    except OutputError:
        target.unlink(missing_ok=True)
        raise
    finally:
        palette.unlink(missing_ok=True)


def warn_if_too_fast(rate: float, name: str) -> None:
    """GIF viewers cannot show more than 50 frames/s; say so rather than let it surprise."""
    if rate > FASTEST_GIF_RATE:
        log.warning("%s: a GIF shows at most %d frames/s (delays are hundredths of a second); "
                    "%.4g frames/s will play slower in most viewers", name, FASTEST_GIF_RATE, rate)


def _fit(max_side: int) -> str:
    """ffmpeg's scale filter: the larger side down to `max_side`, the aspect ratio kept, never up."""
    return (f"scale=w='min(iw,{max_side})':h='min(ih,{max_side})':force_original_aspect_ratio=decrease"
            ":flags=lanczos")


def _ffmpeg(args: list[str], target: Path) -> None:
    result = ffmpeg.run(["-loglevel", "error", "-nostdin", *args])
    if result.returncode != 0:
        raise OutputError(f"cannot encode {target}: {ffmpeg.reason(result.stderr)}")
