"""imageio-ffmpeg's bundled ffmpeg: the binary, its capabilities, and its error lines."""
from __future__ import annotations

import functools
import re
import subprocess

import imageio_ffmpeg

# Output containers by file suffix → ffmpeg muxer name.
MUXERS = {"mp4": "mp4", "mkv": "matroska", "mov": "mov", "webm": "webm", "gif": "gif"}


def executable() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def run(args: list[str]) -> subprocess.CompletedProcess:
    """ffmpeg with `args` (banner hidden), output captured as text."""
    return subprocess.run([executable(), "-hide_banner", *args], capture_output=True, text=True, errors="replace")


def last_line(text: str) -> str:
    """ffmpeg's last meaningful message in `text` (its own banner and imageio's frames skipped)."""
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.startswith("===") and "ffmpeg version" not in line]
    return lines[-1] if lines else "ffmpeg failed without a message"


@functools.cache
def encoders(kind: str) -> frozenset[str]:
    """Names of the encoders of a kind ("V" video, "A" audio) this ffmpeg has."""
    listing = run(["-encoders"]).stdout
    return frozenset(re.findall(rf"^\s*{kind}\S*\s+(\S+)\s", listing, re.MULTILINE))


@functools.cache
def output_pixel_formats() -> frozenset[str]:
    """Pixel formats ffmpeg can convert to."""
    listing = run(["-pix_fmts"]).stdout
    return frozenset(re.findall(r"^\SO\S*\s+(\S+)\s", listing, re.MULTILINE))
