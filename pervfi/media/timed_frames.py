"""Output frames that keep their own times (×N of a variable-frame-rate video).

ffmpeg's raw-video input has one rate for all frames, so timed frames reach the same ffmpeg
encoder as NUT (raw RGB frames, each with its timestamp) muxed here by PyAV; ffmpeg passes
the times through. Neither format carries the last frame's duration, so `set_last_duration`
writes it into the finished file afterwards (a stream copy): the video then lasts as long as
its source, and audio cut to it stays whole.
"""
from __future__ import annotations

import io
import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pervfi.core.errors import OutputError

# ffmpeg's input options for the NUT stream
INPUT_ARGS = ["-f", "nut", "-i", "pipe:0"]


def passthrough_args(time_base: Fraction) -> list[str]:
    """ffmpeg's output options that keep each frame's time: no frame dropped or repeated, and the
    encoder counting in `time_base` (by default ffmpeg rounds to a rate it guesses)."""
    return ["-fps_mode", "passthrough", "-enc_time_base", f"{time_base.numerator}:{time_base.denominator}"]


class _Pipe(io.RawIOBase):
    """A write-only file object over a `write(bytes)` callable (ffmpeg's stdin)."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        super().__init__()
        self._write = write

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._write(bytes(data))
        return len(data)


class TimedFrames:
    """Muxes H×W×3 uint8 RGB frames, each at its time (a Fraction of seconds, a multiple of
    `time_base`), as NUT into `write`."""

    def __init__(self, write: Callable[[bytes], None], width: int, height: int, time_base: Fraction) -> None:
        self.time_base = Fraction(time_base)
        self._container = av.open(_Pipe(write), "w", format="nut")
        self._stream = self._container.add_stream("rawvideo", rate=1 / self.time_base)
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "rgb24"
        self._stream.time_base = self._stream.codec_context.time_base = self.time_base

    def write(self, frame: np.ndarray, time: Fraction) -> None:
        ticks = Fraction(time) / self.time_base
        if ticks.denominator != 1:
            raise ValueError(f"time {time} is not a multiple of {self.time_base}")
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        picture.pts, picture.time_base = int(ticks), self.time_base
        self._container.mux(self._stream.encode(picture))

    def close(self) -> None:
        self._container.mux(self._stream.encode(None))
        self._container.close()


def set_last_duration(path: Path, muxer: str, end: Fraction) -> None:
    """Rewrite the video `path` (container `muxer`) so that its last frame shows until `end`
    seconds after its first; the packets are copied, not re-encoded."""
    fixed = path.with_name(f"{path.name}.timed")
    options = {"movflags": "+faststart"} if muxer in ("mp4", "mov") else {}
    try:
        with av.open(str(path)) as source:  # first pass: where the first and the last frame are
            stamps = [packet.pts for packet in source.demux(source.streams.video[0]) if packet.size]
        first, last = min(stamps), max(stamps)
        with av.open(str(path)) as source, av.open(str(fixed), "w", format=muxer, options=options) as target:
            stream = source.streams.video[0]
            copy = target.add_stream_from_template(stream)
            ticks = round(end / Fraction(stream.time_base)) - (last - first)
            for packet in source.demux(stream):
                if not packet.size:
                    continue
                if packet.pts == last and ticks > 0:
                    packet.duration = ticks
                packet.stream = copy
                target.mux(packet)
        os.replace(fixed, path)
    except av.FFmpegError as err:
        raise OutputError(f"cannot write {path}: {err}") from None
    finally:
        fixed.unlink(missing_ok=True)
