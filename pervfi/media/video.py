"""Video files through PyAV: the header, each frame's presentation time, and the frames,
reached by seeking.

A segment of a long film is reached by a keyframe seek and decoding forward to the exact
frame by its timestamp (not by decoding from frame 0), and every frame read is checked
against its timestamp, so a read can fail but never lands a frame off.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pervfi.core.errors import InputError

from .timeline import FrameTimes

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
# Rates that containers store rounded (23.98) but that are really NTSC fractions.
NTSC_RATES = tuple(Fraction(n * 1000, 1001) for n in (24, 30, 48, 60, 120, 240))
# A video that decodes to fewer frames than this share of its announced length is truncated
# (a few frames short is ordinary rounding of the duration).
TRUNCATION_SHARE = 0.9


class DecodeCount:
    """How many frames this process has decoded (what the long-film benchmark measures)."""

    frames = 0


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES and not path.name.startswith(".")


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video's first video stream."""

    width: int
    height: int
    fps: Fraction
    duration: float  # seconds, 0 when unknown
    frames: int = 0  # the frame count the container announces, 0 when it does not

    @property
    def expected_frames(self) -> int:
        return self.frames or round(self.duration * self.fps)


def exact_rate(fps: float | Fraction) -> Fraction:
    """The frame rate as a fraction, NTSC rates recognised from a rounded value."""
    for rate in NTSC_RATES:
        if abs(float(rate) - float(fps)) < 0.01:
            return rate
    return Fraction(fps).limit_denominator(1000)


def probe_video(path: Path) -> VideoInfo:
    """Size, rate and duration of a video from its header; InputError naming the file if it
    cannot be opened."""
    with _open(path) as container:
        stream = _video_stream(container, path)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            raise InputError(f"cannot read video {path}: no frame rate found")
        if stream.duration is not None:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = (container.duration or 0) / av.time_base
        return VideoInfo(width=stream.codec_context.width, height=stream.codec_context.height,
                         fps=exact_rate(Fraction(rate)), duration=duration, frames=stream.frames or 0)


def scan_times(path: Path, rate: Fraction) -> FrameTimes:
    """Every frame's presentation time, from the packets (demuxed, not decoded). A video whose
    packets carry no timestamps (some AVI files) gets constant-rate times by count."""
    stamps: list[int] = []
    latest = last_packet = 0
    with _open(path) as container:
        stream = _video_stream(container, path)
        time_base = Fraction(stream.time_base)
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.pts is None:
                    return FrameTimes.constant(rate, _count_packets(path))
                if not stamps or packet.pts > latest:
                    latest, last_packet = packet.pts, packet.duration or 0
                stamps.append(packet.pts)
        except av.FFmpegError:
            pass  # a truncated file: its readable packets are the frames (the reader warns)
        if not stamps:
            raise InputError(f"cannot read video {path}: no video frames")
        first = min(stamps)
        end = None
        if container.duration is not None:  # the container's end (audio included), from the first frame
            end = Fraction(container.duration + (container.start_time or 0), av.time_base) - first * time_base
    stamps.sort()
    return FrameTimes.from_pts(rate, stamps, time_base, last_packet, end)


def read_video(path: Path, start: int = 0, stop: int | None = None,
               times: FrameTimes | None = None) -> Iterator[np.ndarray]:
    """Frames `start`..`stop` (inclusive; None: to the end) as H×W×3 uint8 RGB, in order;
    InputError if the video is unreadable. With the video's `times` a later start is reached
    by a keyframe seek, and every frame is checked against its timestamp.

    A truncated video (fewer frames decode than its header announces) gives what decodes,
    as ffmpeg does, with one warning that gives both counts."""
    pts = times.pts if times is not None else None
    with _open(path) as container:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        index = 0
        if pts is not None and start > 0:
            container.seek(pts[start], stream=stream, backward=True, any_frame=False)
            index = start
        decoded = 0
        for frame in _decode(container, stream, path):
            decoded += 1
            DecodeCount.frames += 1
            if pts is not None:
                if index == start and frame.pts is not None and frame.pts < pts[start]:
                    continue  # decoded from the keyframe, before the frame wanted
                if index >= len(pts) or frame.pts != pts[index]:
                    raise InputError(f"cannot read video {path}: frame {index} is not at its timestamp "
                                     f"({frame.pts} instead of {pts[index] if index < len(pts) else 'none'})")
            if index >= start:
                yield frame.to_ndarray(format="rgb24")
            if stop is not None and index >= stop:
                return
            index += 1
        if start == 0 and stop is None:
            _warn_if_truncated(path, container, stream, decoded)


def _decode(container, stream, path: Path) -> Iterator[av.VideoFrame]:
    """The stream's frames; decoding stops at damage after the first frame (a truncated file)."""
    decoded = 0
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
            frames = packet.decode()
        except StopIteration:
            return
        except av.FFmpegError as err:
            if decoded == 0:
                raise InputError(f"cannot read video {path}: {_reason(err)}") from None
            return
        for frame in frames:
            decoded += 1
            yield frame


def _warn_if_truncated(path: Path, container, stream, count: int) -> None:
    expected = stream.frames or round(float((container.duration or 0) / av.time_base) * float(stream.average_rate or 0))
    if expected > 2 and count < TRUNCATION_SHARE * expected:
        log.warning("video %s is truncated: %d frames decode of the %d its header announces; "
                    "interpolating those %d", path, count, expected, count)


def _count_packets(path: Path) -> int:
    with _open(path) as container:
        return sum(1 for packet in container.demux(_video_stream(container, path)) if packet.size)


def _open(path: Path):
    """The container of `path`; InputError naming it with ffmpeg's own reason ("moov atom not
    found"), which PyAV passes on only while its log is on."""
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture() as messages:
            return av.open(str(path))
    except (av.FFmpegError, OSError) as err:
        said = [text.strip() for _, _, text in messages if text.strip()]
        raise InputError(f"cannot read video {path}: {said[-1] if said else _reason(err)}") from None
    finally:
        av.logging.set_level(previous)


def _video_stream(container, path: Path):
    if not container.streams.video:
        raise InputError(f"cannot read video {path}: no video stream")
    return container.streams.video[0]


def _reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err)
