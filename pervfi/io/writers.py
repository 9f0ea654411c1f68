"""Writing the output: an encoded video (or animated GIF) and, optionally, the frames as PNG files.

Both writers work under temporary names next to their destination and move the result
into place only in `finish()`, so a failed or interrupted run never leaves a file that
looks complete; `abort()` removes what was written.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

from ..errors import OutputError
from . import ffmpeg
from .ffmpeg import MUXERS
from .gif import encode_gif, warn_if_too_fast

DEFAULT_CODECS = {"mp4": "libx264", "mkv": "libx264", "mov": "libx264", "webm": "libvpx-vp9", "gif": "gif"}
# Pixel formats whose chroma is subsampled by two in both directions need even sides.
EVEN_SIZE_PIX_FMTS = ("yuv420p", "yuvj420p", "yuv420p10le", "nv12")
# PNG compression: 1 is fast and still lossless.
PNG_COMPRESSION = 1


@dataclass(frozen=True)
class Encoding:
    """How the output video is encoded."""

    ext: str = "mp4"
    codec: str | None = None  # None: the container's default (H.264, VP9 for webm)
    crf: int = 18
    pix_fmt: str = "yuv420p"

    def __post_init__(self) -> None:
        if self.ext not in MUXERS:
            raise OutputError(f"unknown container {self.ext!r}; choose one of {', '.join(MUXERS)}")
        if self.ext == "gif" and self.video_codec != "gif":
            raise OutputError(f"a GIF is encoded by ffmpeg's gif encoder, not {self.codec!r}; leave out the codec")
        if not 0 <= self.crf <= 63:
            raise OutputError(f"crf must lie in 0..63, got {self.crf}")
        if self.video_codec not in ffmpeg.encoders("V"):
            raise OutputError(f"ffmpeg has no video encoder {self.video_codec!r} (see `ffmpeg -encoders`)")
        if self.pix_fmt not in ffmpeg.output_pixel_formats():
            raise OutputError(f"ffmpeg has no output pixel format {self.pix_fmt!r} (see `ffmpeg -pix_fmts`)")

    @property
    def video_codec(self) -> str:
        return self.codec or DEFAULT_CODECS[self.ext]

    @property
    def holds_audio(self) -> bool:
        return self.ext != "gif"

    def output_params(self) -> list[str]:
        params = ["-crf", str(self.crf), "-f", MUXERS[self.ext]]
        if self.video_codec in ("libvpx-vp9", "libvpx", "libaom-av1"):
            params += ["-b:v", "0"]  # constant quality for the VPx / AV1 encoders
        if self.ext in ("mp4", "mov"):
            params += ["-movflags", "+faststart"]
        return params


def temporary_path(final: Path) -> Path:
    """A hidden name beside `final` that no one mistakes for the finished file."""
    return final.with_name(f".{final.name}.partial")


class VideoWriter:
    """Encodes H×W×3 uint8 RGB frames with ffmpeg into a temporary file.

    Odd sides are padded by one replicated pixel when the pixel format needs even sides.
    `finish()` completes the encoding and returns the temporary file; the caller moves it
    into place (possibly muxing audio on the way).
    """

    def __init__(self, final: Path, width: int, height: int, fps: Fraction, encoding: Encoding) -> None:
        self.final = final
        self.path = temporary_path(final)
        pad = encoding.pix_fmt in EVEN_SIZE_PIX_FMTS
        self.pad = (height % 2 if pad else 0, width % 2 if pad else 0)
        self._ffmpeg = imageio_ffmpeg.write_frames(
            str(self.path), (width + self.pad[1], height + self.pad[0]), fps=fps, codec=encoding.video_codec,
            pix_fmt_out=encoding.pix_fmt, quality=None, macro_block_size=1, ffmpeg_log_level="error",
            output_params=encoding.output_params(),
        )
        try:
            self._ffmpeg.send(None)  # starts ffmpeg
        except (OSError, RuntimeError) as err:
            self.abort()
            raise OutputError(f"cannot encode {final}: {ffmpeg.last_line(str(err))}") from None

    def write(self, frame: np.ndarray) -> None:
        if any(self.pad):
            frame = np.pad(frame, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
        try:
            self._ffmpeg.send(np.ascontiguousarray(frame))
        except (OSError, RuntimeError, BrokenPipeError) as err:
            self.abort()
            raise OutputError(f"cannot encode {self.final}: {ffmpeg.last_line(str(err))}") from None

    def finish(self) -> Path:
        try:
            self._ffmpeg.close()
        except (OSError, RuntimeError) as err:
            self.abort()
            raise OutputError(f"cannot encode {self.final}: {ffmpeg.last_line(str(err))}") from None
        return self.path

    def abort(self) -> None:
        try:
            self._ffmpeg.close()
        except (OSError, RuntimeError, ValueError):
            pass  # ffmpeg already failed; the error that got us here is the one to report
        self.path.unlink(missing_ok=True)


class GifWriter:
    """Encodes H×W×3 uint8 RGB frames into an animated GIF with an optimised palette.

    The frames wait in a lossless RGB video until the palette of the whole clip is known
    (so memory stays flat in the clip's length); `finish()`
    turns it into the GIF under the temporary name and returns that, like `VideoWriter`.
    """

    def __init__(self, final: Path, width: int, height: int, fps: Fraction, encoding: Encoding) -> None:
        warn_if_too_fast(float(fps), final.name)
        self.final = final
        self.path = temporary_path(final)
        lossless = Encoding(ext="mkv", codec="libx264rgb", crf=0, pix_fmt="rgb24")
        self._frames = VideoWriter(final.with_name(f"{final.name}.mkv"), width, height, fps, lossless)

    def write(self, frame: np.ndarray) -> None:
        self._frames.write(frame)

    def finish(self) -> Path:
        frames = self._frames.finish()
        try:
            encode_gif(frames, self.path)
        finally:
            frames.unlink(missing_ok=True)
        return self.path

    def abort(self) -> None:
        self._frames.abort()
        self.path.unlink(missing_ok=True)


def open_video_writer(final: Path, width: int, height: int, fps: Fraction,
                      encoding: Encoding) -> VideoWriter | GifWriter:
    """The writer for `encoding`'s container: a GIF or an ffmpeg-encoded video."""
    kind = GifWriter if encoding.ext == "gif" else VideoWriter
    return kind(final, width, height, fps, encoding)


class FrameFolderWriter:
    """Writes frames as ``00000000.png``, ``00000001.png``, ... (numbered from `first`) into
    a temporary folder that `finish()` renames to `final` (replacing an older folder of that name)."""

    def __init__(self, final: Path, first: int = 0) -> None:
        self.final = final
        self.path = temporary_path(final)
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        self.count = first

    def write(self, frame: np.ndarray) -> None:
        target = self.path / f"{self.count:08d}.png"
        if not cv2.imwrite(str(target), frame[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]):
            raise OutputError(f"cannot write {target}")
        self.count += 1

    def finish(self) -> Path:
        if self.final.exists():
            shutil.rmtree(self.final)
        os.replace(self.path, self.final)
        return self.final

    def abort(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
