"""Audio tracks: detect them, measure stream durations, and mux a source's audio into an
interpolated video, in sync and cut to the video's duration.

Everything runs through imageio-ffmpeg's bundled ffmpeg (there is no ffprobe): stream
facts are parsed from ffmpeg's own output. Audio is stream-copied when the container
takes its codec; a copy can only be cut at packet boundaries (about 20 ms), so when the
audio is longer than the video by more than a frame and its packets are longer than a
frame (AAC at 60 fps), it is re-encoded and cut sample-exactly instead. Either way the
audio ends within one video frame of the video (or earlier, when it is shorter).
"""
from __future__ import annotations

import functools
import re
import statistics
import uuid
from dataclasses import dataclass
from pathlib import Path

from pervfi.core.errors import InputError, OutputError

from . import ffmpeg
from .ffmpeg import MUXERS

# container -> the audio codecs it takes as a stream copy (None: any)
COPYABLE_CODECS: dict[str, frozenset[str] | None] = {
    "mp4": frozenset({"aac", "mp3", "ac3", "eac3", "alac", "flac", "opus"}),
    "mov": frozenset({"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le"}),
    "mkv": None,
    "webm": frozenset({"opus", "vorbis"}),
}
AAC_BITRATE = "192k"

_AUDIO_STREAM = re.compile(r"Stream #0:\d+\S*: Audio: (\w+)")


def has_audio(path: Path) -> bool:
    """Whether a media file has at least one audio stream (InputError if unreadable)."""
    return _audio_codec(Path(path)) is not None


def stream_duration(path: Path, kind: str = "audio") -> float:
    """Duration in seconds of the first audio or video stream of a file: audio from its
    decoded samples (encoder padding excluded), video from its packet timestamps (first
    frame's start to last frame's end; nothing is decoded)."""
    path = Path(path)
    if kind == "audio":
        out = _ffmpeg(path, ["-nostats", "-i", str(path), "-map", "0:a:0", "-f", "null", "-", "-progress", "pipe:1"])
        times = re.findall(r"^out_time_us=(\d+)$", out, re.MULTILINE)
        if not times:
            raise InputError(f"{path}: no decodable audio")
        return int(times[-1]) / 1e6
    if kind == "video":
        return _packets(path, "v").duration
    raise ValueError(f"kind must be 'audio' or 'video', got {kind!r}")


def mux_audio(video: Path, audio_source: Path, output: Path) -> None:
    """Write `output` with the video stream of `video` (copied) and the first audio stream
    of `audio_source`, cut to the video's duration. Without audio in `audio_source`, the
    output is the video alone. The container follows the suffix of `output` (mp4, mkv,
    mov, webm); it is written under a temporary name in the same folder and renamed when
    complete. OutputError (one line naming `output`) when ffmpeg fails."""
    video, audio_source, output = Path(video), Path(audio_source), Path(output)
    suffix = output.suffix.lower().lstrip(".")
    if suffix not in MUXERS:
        raise OutputError(f"{output}: unsupported container {suffix!r}; use one of {', '.join(MUXERS)}")
    muxer, copyable = MUXERS[suffix], COPYABLE_CODECS[suffix]
    codec = _audio_codec(audio_source)
    args = ["-y", "-v", "error", "-i", str(video)]
    if codec is None:
        args += ["-map", "0:v:0", "-c:v", "copy"]
    else:
        frames = _packets(video, "v")
        audio = _packets(audio_source, "a")
        excess = audio.duration - frames.duration
        fits = copyable is None or codec in copyable
        exact_enough = excess <= frames.typical or audio.longest <= frames.typical
        audio_codec = ["copy"] if fits and exact_enough else _encoder(suffix)
        args += ["-t", f"{frames.duration:.6f}", "-i", str(audio_source)]
        args += ["-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", *audio_codec]
    partial = output.with_name(f".{output.stem}.{uuid.uuid4().hex[:8]}.partial{output.suffix}")
    try:
        result = ffmpeg.run([*args, "-f", muxer, str(partial)])
        if result.returncode != 0:
            raise OutputError(f"cannot write {output}: {ffmpeg.reason(result.stderr)}")
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)


@dataclass(frozen=True)
class _PacketTimes:
    duration: float  # first packet's start to last packet's end, seconds
    typical: float  # median packet duration, seconds
    longest: float  # longest packet duration, seconds


def _packets(path: Path, kind: str) -> _PacketTimes:
    """Packet timestamps of the first stream of a kind, read without decoding."""
    out = _ffmpeg(path, ["-v", "error", "-i", str(path), "-map", f"0:{kind}:0", "-c", "copy", "-f", "framecrc", "-"])
    base = re.search(r"^#tb 0: (\d+)/(\d+)$", out, re.MULTILINE)
    rows = re.findall(r"^0,\s*-?\d+,\s*(-?\d+),\s*(\d+),", out, re.MULTILINE)
    if base is None or not rows:
        raise InputError(f"{path}: no {'video' if kind == 'v' else 'audio'} packets")
    unit = int(base.group(1)) / int(base.group(2))
    starts = [int(pts) for pts, _ in rows]
    lengths = [int(length) for _, length in rows]
    end = max(start + length for start, length in zip(starts, lengths))
    return _PacketTimes((end - min(starts)) * unit, statistics.median(lengths) * unit, max(lengths) * unit)


def _audio_codec(path: Path) -> str | None:
    """Codec name of the first audio stream, None without audio; InputError if unreadable."""
    result = ffmpeg.run(["-i", str(path)])
    if "Input #0" not in result.stderr:  # ffmpeg always exits 1 here: no output was named
        raise InputError(f"cannot read {path}: {ffmpeg.reason(result.stderr)}")
    match = _AUDIO_STREAM.search(result.stderr)
    return match.group(1) if match else None


@functools.cache
def _encoder(suffix: str) -> list[str]:
    """ffmpeg audio encoder arguments for a container: AAC, or for webm Opus (else Vorbis)."""
    if suffix != "webm":
        return ["aac", "-b:a", AAC_BITRATE]
    return ["libopus"] if "libopus" in ffmpeg.encoders("A") else ["libvorbis"]


def _ffmpeg(path: Path, args: list[str]) -> str:
    """Run ffmpeg reading `path`; its stdout, or InputError naming the file."""
    result = ffmpeg.run(args)
    if result.returncode != 0:
        raise InputError(f"cannot read {path}: {ffmpeg.reason(result.stderr)}")
    return result.stdout
