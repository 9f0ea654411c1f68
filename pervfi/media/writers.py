"""Writing the output: an encoded video (or animated GIF) and, optionally, the frames as PNG files.

Both writers work under temporary names next to their destination and move the result
into place only in `finish()`, so a failed or interrupted run never leaves a file that
looks complete; `abort()` removes what was written.
"""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from pervfi.core.errors import OutputError

from . import ffmpeg
from .ffmpeg import MUXERS
from .gif import encode_gif, warn_if_too_fast
from .timed_frames import INPUT_ARGS, TimedFrames, passthrough_args, set_last_duration

DEFAULT_CODECS = {"mp4": "libx264", "mkv": "libx264", "mov": "libx264", "webm": "libvpx-vp9", "gif": "gif"}
# Pixel formats whose chroma is subsampled by two in both directions need even sides.
EVEN_SIZE_PIX_FMTS = ("yuv420p", "yuvj420p", "yuv420p10le", "nv12")
# The highest crf of each encoder (ffmpeg itself accepts 63 for x264 and x265, which stop at 51).
CRF_LIMITS = {"libx264": 51, "libx264rgb": 51, "libx265": 51}
CRF_LIMIT = 63  # the others (VP8, VP9, AV1)
# PNG compression: 1 is fast and still lossless.
PNG_COMPRESSION = 1


@dataclass(frozen=True)
class Encoding:
    """How the output video is encoded; checked on creation (encoder, pixel format, quality
    range, and a one-frame trial that the container takes the codec), so a bad combination
    is reported before any work, with ffmpeg's reason."""

    ext: str = "mp4"
    codec: str | None = None  # None: the container's default (H.264, VP9 for webm)
    crf: int = 18
    pix_fmt: str = "yuv420p"

    def __post_init__(self) -> None:
        if self.ext not in MUXERS:
            raise OutputError(f"unknown container {self.ext!r}; choose one of {', '.join(MUXERS)}")
        if self.ext == "gif" and self.video_codec != "gif":
            raise OutputError(f"a GIF is encoded by ffmpeg's gif encoder, not {self.codec!r}; leave out the codec")
        highest = CRF_LIMITS.get(self.video_codec, CRF_LIMIT)
        if not 0 <= self.crf <= highest:
            raise OutputError(f"crf {self.crf} is out of range for {self.video_codec}: use 0..{highest}")
        if self.video_codec not in ffmpeg.encoders("V"):
            raise OutputError(f"ffmpeg has no video encoder {self.video_codec!r} (see `ffmpeg -encoders`)")
        if self.pix_fmt not in ffmpeg.output_pixel_formats():
            raise OutputError(f"ffmpeg has no output pixel format {self.pix_fmt!r} (see `ffmpeg -pix_fmts`)")
        if self.ext != "gif" and (why := ffmpeg.trial_encode(MUXERS[self.ext], tuple(self.codec_params()))):
            raise OutputError(f"cannot encode {self.ext} with {self.video_codec} ({self.pix_fmt}, crf {self.crf}): {why}")

    @property
    def video_codec(self) -> str:
        return self.codec or DEFAULT_CODECS[self.ext]

    @property
    def holds_audio(self) -> bool:
        return self.ext != "gif"

    def codec_params(self) -> list[str]:
        """ffmpeg's output options but the muxer: the encoder, its settings, the container's flags."""
        params = ["-c:v", self.video_codec, "-pix_fmt", self.pix_fmt, "-crf", str(self.crf)]
        if self.video_codec in ("libvpx-vp9", "libvpx", "libaom-av1"):
            params += ["-b:v", "0"]  # constant quality for the VPx / AV1 encoders
        if self.ext in ("mp4", "mov"):
            params += ["-movflags", "+faststart"]
        return params

    def output_params(self) -> list[str]:
        """ffmpeg's output options: `codec_params`, then the muxer."""
        return [*self.codec_params(), "-f", MUXERS[self.ext]]


@dataclass(frozen=True)
class OutputPaths:
    """Where one sequence's outputs go: ``<save>/<name>/<name>-<method>.<ext>``, its montage
    ``...-montage.<ext>`` and its PNG frames ``...-frames/``, all named like the video so runs
    of several methods or scales into one folder keep apart."""

    folder: Path
    video: Path
    montage: Path
    frames: Path

    @classmethod
    def of(cls, save: Path, name: str, method: str, ext: str) -> OutputPaths:
        folder = Path(save) / name
        stem = f"{name}-{output_name(method)}"
        return cls(folder, folder / f"{stem}.{ext}", folder / f"{stem}-montage.{ext}", folder / f"{stem}-frames")


def output_name(method: str) -> str:
    """The method as it appears in file names (a custom ``module:callable`` made safe)."""
    return re.sub(r"[^A-Za-z0-9+._-]", "_", method)


def temporary_path(final: Path) -> Path:
    """A hidden name beside `final` that no one mistakes for the finished file."""
    return final.with_name(f".{final.name}.partial")


class VideoWriter:
    """Encodes H×W×3 uint8 RGB frames with ffmpeg into a temporary file.

    Odd sides are padded by one replicated pixel when the pixel format needs even sides.
    Frames play at `fps`, or, with a `time_base`, each at the time given to `write` (variable
    frame rate). `finish()` completes the encoding and returns the temporary file; the caller
    moves it into place (possibly muxing audio on the way). Failures are OutputErrors naming
    the file, with ffmpeg's reason.
    """

    def __init__(self, final: Path, width: int, height: int, fps: Fraction, encoding: Encoding,
                 time_base: Fraction | None = None) -> None:
        self.final = final
        self.path = temporary_path(final)
        self.muxer = MUXERS[encoding.ext]
        pad = encoding.pix_fmt in EVEN_SIZE_PIX_FMTS
        self.pad = (height % 2 if pad else 0, width % 2 if pad else 0)
        size = f"{width + self.pad[1]}x{height + self.pad[0]}"
        rate = Fraction(fps)
        if time_base is None:
            source = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", size, "-r", f"{rate.numerator}/{rate.denominator}",
                      "-i", "pipe:0", "-an"]
        else:
            source = [*INPUT_ARGS, "-an", *passthrough_args(Fraction(time_base))]
        self._ffmpeg = ffmpeg.Encoder([*source, *encoding.output_params()], self.path, final)
        self._timed = None
        if time_base is not None:
            self._timed = TimedFrames(self._ffmpeg.write, width + self.pad[1], height + self.pad[0], time_base)

    def write(self, frame: np.ndarray, time: Fraction | None = None) -> None:
        """Add a frame (`time`: when it shows, from the first frame; used with a time base)."""
        if any(self.pad):
            frame = np.pad(frame, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
        try:
            if self._timed is not None:
                self._timed.write(frame, time)
            else:
                self._ffmpeg.write(memoryview(np.ascontiguousarray(frame)).cast("B"))
        except OutputError:
            self.abort()
            raise

    def finish(self, end: Fraction | None = None) -> Path:
        """Complete the file; `end`: when its last frame stops showing (timed frames)."""
        try:
            if self._timed is not None:
                self._timed.close()
            self._ffmpeg.finish()
            if self._timed is not None and end is not None:
                set_last_duration(self.path, self.muxer, end)
        except OutputError:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        self._ffmpeg.kill()
        self.path.unlink(missing_ok=True)


class GifWriter:
    """Encodes H×W×3 uint8 RGB frames into an animated GIF with an optimised palette.

    The frames wait in a lossless RGB video until the palette of the whole clip is known
    (so memory stays flat in the clip's length); `finish()`
    turns it into the GIF under the temporary name and returns that, like `VideoWriter`.
    """

    def __init__(self, final: Path, width: int, height: int, fps: Fraction, encoding: Encoding,
                 time_base: Fraction | None = None) -> None:
        warn_if_too_fast(float(fps), final.name)
        self.final = final
        self.path = temporary_path(final)
        lossless = Encoding(ext="mkv", codec="libx264rgb", crf=0, pix_fmt="rgb24")
        self._frames = VideoWriter(final.with_name(f"{final.name}.mkv"), width, height, fps, lossless, time_base)

    def write(self, frame: np.ndarray, time: Fraction | None = None) -> None:
        self._frames.write(frame, time)

    def finish(self, end: Fraction | None = None) -> Path:
        frames = self._frames.finish(end)
        try:
            encode_gif(frames, self.path)
        finally:
            frames.unlink(missing_ok=True)
        return self.path

    def abort(self) -> None:
        self._frames.abort()
        self.path.unlink(missing_ok=True)


def open_video_writer(final: Path, width: int, height: int, fps: Fraction, encoding: Encoding,
                      time_base: Fraction | None = None) -> VideoWriter | GifWriter:
    """The writer for `encoding`'s container: a GIF or an ffmpeg-encoded video (frames at
    their own times, multiples of `time_base`, when one is given)."""
    kind = GifWriter if encoding.ext == "gif" else VideoWriter
    return kind(final, width, height, fps, encoding, time_base)


class FrameFolderWriter:
    """Writes frames as ``00000000.png``, ``00000001.png``, ... (numbered from `first`) into a
    temporary folder that `finish()` moves to `final`.

    An existing `final` is replaced only when it holds nothing but frames named as this
    tool names them (an earlier run's); a folder with anything else is refused on creation,
    before any frame is written, so a user's files are never deleted.
    """

    def __init__(self, final: Path, first: int = 0) -> None:
        check_frame_folder(final)
        self.final = final
        self.path = temporary_path(final)
        shutil.rmtree(self.path, ignore_errors=True)  # an interrupted run's leftovers (our name)
        self.path.mkdir(parents=True)
        self.count = first

    def write(self, frame: np.ndarray) -> None:
        target = self.path / frame_name(self.count)
        if not cv2.imwrite(str(target), frame[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]):
            raise OutputError(f"cannot write {target}")
        self.count += 1

    def finish(self) -> Path:
        """Move the frames into place; an earlier run's frames there are swapped out, then removed."""
        old = self.final.with_name(f".{self.final.name}.old")
        if self.final.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(self.final, old)
        os.replace(self.path, self.final)
        shutil.rmtree(old, ignore_errors=True)
        return self.final

    def abort(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def check_frame_folder(final: Path) -> None:
    """OutputError unless `final` is absent or holds only frames this tool wrote (which a new
    run may replace): a user's files there are never deleted."""
    if not final.exists():
        return
    if not final.is_dir():
        raise OutputError(f"{final} is a file, where the PNG frames would go; move it or choose another output folder")
    strangers = [entry.name for entry in sorted(final.iterdir()) if not is_frame_name(entry)]
    if strangers:
        more = ", ..." if len(strangers) > 1 else ""
        raise OutputError(f"{final} holds files this tool did not write ({strangers[0]}{more}); move them or "
                          "choose another output folder")


def frame_name(index: int) -> str:
    """The file name of output frame `index`: ``00000000.png``."""
    return f"{index:08d}.png"


def is_frame_name(path: Path) -> bool:
    """Whether `path` is a file named as `FrameFolderWriter` names frames."""
    return path.is_file() and len(path.name) == 12 and path.name.endswith(".png") and path.name[:8].isdigit()
