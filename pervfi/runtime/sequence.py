"""The streaming interpolation of one sequence: decode ahead, interpolate, encode behind.

A reader thread decodes frames ahead of the model and a writer thread encodes the output
behind it, through bounded queues, so memory stays flat in the sequence's length. Each
source frame is converted to a tensor once, each pair's flows are computed once (all the
pair's output times share them), and every output frame is written once to each sink.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Sequence as Times
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from pervfi.core.errors import InputError, OutputError
from pervfi.media.audio import has_audio, mux_audio
from pervfi.media.scenes import (
    DEFAULT_CUT_THRESHOLD,
    DEFAULT_DUPLICATE_THRESHOLD,
    SCENE_CUT_MODES,
    Thumbnail,
    is_duplicate,
    is_scene_cut,
    thumbnail,
)
from pervfi.media.sources import Sequence
from pervfi.media.tensors import to_tensor
from pervfi.media.timeline import FrameTimes, Timeline
from pervfi.media.writers import Encoding, FrameFolderWriter, GifWriter, OutputPaths, VideoWriter, open_video_writer

from .threads import ReadAhead, WriteBehind
from .transfer import PendingFrame

log = logging.getLogger(__name__)

READ_AHEAD = 4  # decoded frames waiting for the model
WRITE_BEHIND = 8  # output frames waiting for the encoder
# Rate assumed for frame folders when none is given: only ratios of times matter there.
NOMINAL_RATE = Fraction(1)


class FrameInterpolator(Protocol):
    """What the pipeline needs of a model (`pervfi.Interpolator` is one): its device, how
    many pairs it takes at once, and the frames at several times between each of several
    pairs of 1×3×H×W frames in [0, 1], the noise drawn from `rng`."""

    device: torch.device
    batch: int

    def interpolate_pairs(self, pairs: Times[tuple[Tensor, Tensor, Times[float]]],
                          rng: torch.Generator | None = None) -> list[list[Tensor]]:
        ...


@dataclass(frozen=True)
class Settings:
    """How a sequence is turned into output (the CLI's flags)."""

    scale: int = 2
    target_fps: Fraction | None = None  # instead of `scale`: resample to this rate
    fps: Fraction | None = None  # the output video's rate; None: the video's rate × scale, or 10
    input_fps: Fraction | None = None  # the rate of frame folders (needed with target_fps)
    scene_cut: str = "repeat"
    cut_threshold: float = DEFAULT_CUT_THRESHOLD
    dedup: bool = False
    duplicate_threshold: float = DEFAULT_DUPLICATE_THRESHOLD
    png: bool = False
    montage: bool = False
    encoding: Encoding = field(default_factory=Encoding)
    seed: int | None = None
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.scale < 2:
            raise ValueError(f"scale must be at least 2, got {self.scale}")
        if self.scene_cut not in SCENE_CUT_MODES:
            raise ValueError(f"unknown scene-cut mode {self.scene_cut!r}; choose one of {', '.join(SCENE_CUT_MODES)}")
        for name in ("target_fps", "fps", "input_fps"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")


@dataclass(frozen=True)
class Span:
    """A segment of a sequence: source frames `start`..`stop` (inclusive), its output the
    frames at times from frame `start` up to frame `stop` (exclusive), or to the end of the
    output when `stop` is None. Consecutive spans share their boundary frame, so each pair
    is interpolated by exactly one of them; output frames keep their numbers in the whole."""

    start: int = 0
    stop: int | None = None

    def __post_init__(self) -> None:
        if self.start < 0 or (self.stop is not None and self.stop <= self.start):
            raise ValueError(f"a span needs 0 <= start < stop, got {self.start}..{self.stop}")

    @property
    def is_whole(self) -> bool:
        return self.start == 0 and self.stop is None


WHOLE = Span()


def noise_seed(seed: int, output_index: int) -> int:
    """The seed of the noise for the output frames that start at `output_index`: fixed by
    the run's seed and the frame's number, so a split run draws what a whole run draws."""
    digest = hashlib.blake2b(f"pervfi-noise:{seed}:{output_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % 2**63


@dataclass
class _Key:
    """A source frame that starts an interval: its index, pixels, tensor and thumbnail."""

    index: int
    frame: np.ndarray
    tensor: Tensor
    thumb: Thumbnail | None


@dataclass
class _Planned:
    """An interval's output frames: those ready now, then those the model is still to make
    (a pair and its times), all shown beside the interval's first source frame."""

    held: np.ndarray
    ready: list[np.ndarray | PendingFrame]
    times: list[Fraction]  # of the ready frames, then of the pair's
    pair: tuple[Tensor, Tensor, list[float]] | None = None
    rngs: list[torch.Generator | None] = field(default_factory=list)  # v00's noise, one per frame of `pair`


@dataclass
class _Sinks:
    """Where output frames go: the video, and optionally the montage and the PNG folder."""

    video: VideoWriter | GifWriter | None = None
    montage: VideoWriter | GifWriter | None = None
    frames: FrameFolderWriter | None = None

    def abort(self) -> None:
        for sink in (self.video, self.montage, self.frames):
            if sink is not None:
                sink.abort()


@dataclass
class Report:
    """What happened to one sequence: where its outputs are, and what was found on the way."""

    video: Path
    frames_written: int
    scene_cuts: int = 0
    duplicates: int = 0
    montage: Path | None = None
    frames: Path | None = None  # the folder of PNG frames
    replaced: tuple[Path, ...] = ()  # outputs of an earlier run that this one overwrote
    variable_rate: bool = False  # the source is a variable-frame-rate video (its own times were kept)


def timeline_for(sequence: Sequence, settings: Settings) -> Timeline:
    """The output frames of `sequence` (a video's frame times are read here unless known)."""
    if sequence.is_video:
        source = sequence.with_times().times
    else:
        source = FrameTimes.constant(settings.input_fps or NOMINAL_RATE, sequence.frame_count)
    if settings.target_fps is not None:
        return Timeline.for_rate(source, settings.target_fps)
    return Timeline.for_scale(source, settings.scale)


def output_frame_count(sequence: Sequence, settings: Settings) -> int:
    """How many frames the output of `sequence` has."""
    return timeline_for(sequence, settings).count()


def span_outputs(sequence: Sequence, settings: Settings, span: Span) -> range:
    """The numbers of the output frames that `span` writes."""
    timeline = timeline_for(sequence, settings)
    stop = timeline.first_output(span.stop) if span.stop is not None else timeline.count()
    return range(timeline.first_output(span.start), stop)


def keeps_frame_times(sequence: Sequence, settings: Settings) -> bool:
    """Whether output frames keep their own times (×N of a variable-rate video, unless -fps
    sets a rate): the output is variable-rate too."""
    timeline = timeline_for(sequence, settings)
    return timeline.variable and video_rate(sequence, settings) == timeline.rate


def video_rate(sequence: Sequence, settings: Settings) -> Fraction:
    """The output video's frame rate."""
    if settings.target_fps is not None:
        return settings.target_fps
    if settings.fps is not None:
        return settings.fps
    if sequence.fps is not None:
        return sequence.fps * settings.scale
    if settings.input_fps is not None:
        return settings.input_fps * settings.scale
    return Fraction(10)


def classify_frames(frames: Iterable[np.ndarray], settings: Settings,
                    start: int = 0) -> Iterator[tuple[int, np.ndarray, Thumbnail | None, bool]]:
    """(index, frame, thumbnail, is_key) for each frame: key frames start intervals; with
    `dedup`, a frame that duplicates the last key frame is not one. Thumbnails are made only
    when scene cuts or duplicates are looked for."""
    track = settings.scene_cut != "off" or settings.dedup
    last_key: Thumbnail | None = None
    for index, frame in enumerate(frames, start=start):
        thumb = thumbnail(frame) if track else None
        duplicate = index > start and settings.dedup and is_duplicate(last_key, thumb, settings.duplicate_threshold)
        if not duplicate:
            last_key = thumb
        yield index, frame, thumb, not duplicate


def pair_is_cut(settings: Settings, a: Thumbnail | None, b: Thumbnail | None) -> bool:
    """Whether the key frames `a`, `b` lie across a scene cut that the settings act on."""
    return settings.scene_cut != "off" and is_scene_cut(a, b, settings.cut_threshold)


class SequenceRun:
    """Interpolates one sequence into ``<save>/<name>/``; nothing looks finished until it is.

    With a `span`, only that segment: its video (without audio) and PNG frames (numbered
    as in the whole output) go to ``<save>/<name>/`` for the caller to join. `on_frame`,
    when given, is called after each output frame instead of showing a progress bar.
    """

    def __init__(self, interpolator: FrameInterpolator, sequence: Sequence, save: Path, method: str,
                 settings: Settings, span: Span = WHOLE, on_frame: Callable[[], None] | None = None) -> None:
        self.interpolator = interpolator
        self.sequence = sequence.with_times()
        self.settings = settings
        self.span = span
        self.on_frame = on_frame
        self.timeline = timeline_for(self.sequence, settings)
        self.timed = keeps_frame_times(self.sequence, settings)
        self.origin = self.timeline.source_time(span.start)  # the time of this span's first output frame
        self.end = self.origin  # when the output stops showing, known once the source is read
        paths = OutputPaths.of(save, sequence.name, method, settings.encoding.ext)
        self.folder, self.video_path, self.montage_path, self.frames_path = (paths.folder, paths.video,
                                                                             paths.montage, paths.frames)
        self.report = Report(video=self.video_path, frames_written=0,
                             montage=self.montage_path if settings.montage else None,
                             frames=self.frames_path if settings.png else None,
                             variable_rate=self.timeline.source.variable)

    def run(self) -> Report:
        created = not self.folder.exists()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot create output folder {self.folder}: {err.strerror}") from None
        outputs = (self.report.video, self.report.montage, self.report.frames)
        self.report.replaced = tuple(path for path in outputs if path is not None and path.exists())
        rate = video_rate(self.sequence, self.settings)
        sinks = _Sinks()
        try:
            self._open(sinks, rate)
            self._stream(sinks)
            self._finish(sinks)
        except BaseException:
            sinks.abort()
            if created and not any(self.folder.iterdir()):
                self.folder.rmdir()  # no empty folder left looking like a result
            raise
        return self.report

    def _open(self, sinks: _Sinks, rate: Fraction) -> None:
        width, height, encoding = self.sequence.width, self.sequence.height, self.settings.encoding
        time_base = self._time_base()
        sinks.video = open_video_writer(self.video_path, width, height, rate, encoding, time_base)
        if self.settings.montage:
            sinks.montage = open_video_writer(self.montage_path, 2 * width, height, rate, encoding, time_base)
        if self.settings.png:
            first = span_outputs(self.sequence, self.settings, self.span).start
            sinks.frames = FrameFolderWriter(self.frames_path, first=first)

    def _time_base(self) -> Fraction | None:
        """The unit of the output's timestamps when frames keep their own times (None: a
        constant rate): the source's, divided by the scale, holds every output time exactly."""
        return self.timeline.source.time_base / self.timeline.scale if self.timed else None

    def _stream(self, sinks: _Sinks) -> None:
        total = len(span_outputs(self.sequence, self.settings, self.span))
        quiet = self.settings.quiet or self.on_frame is not None or not self.span.is_whole
        progress = tqdm(total=total, unit="frame", desc=self.sequence.name, disable=quiet,
                        dynamic_ncols=True, leave=False)
        writer = WriteBehind(lambda item: self._write(sinks, *item), WRITE_BEHIND)
        reader = ReadAhead(self.sequence.frames(self.span.start, self.span.stop), READ_AHEAD)
        try:
            for held, frame, time in self._outputs(reader):
                writer.put((held, frame, time - self.origin))
                progress.update()
                if self.on_frame is not None:
                    self.on_frame()
        except BaseException:
            writer.close(check=False)  # the error already on its way (or Ctrl-C) is the one to report
            raise
        else:
            writer.close()
        finally:
            reader.close()
            progress.close()

    def _write(self, sinks: _Sinks, held: np.ndarray, frame: np.ndarray | PendingFrame, time: Fraction) -> None:
        if isinstance(frame, PendingFrame):  # wait here, in the writer's thread, for the download
            frame = frame.array()
        sinks.video.write(frame, time)
        if sinks.montage is not None:
            sinks.montage.write(np.concatenate([held, frame], axis=1), time)
        if sinks.frames is not None:
            sinks.frames.write(frame)
        self.report.frames_written += 1

    def _outputs(self, frames: ReadAhead) -> Iterator[tuple[np.ndarray, np.ndarray | PendingFrame, Fraction]]:
        """(held input frame, output frame, its time) in output order. Intervals wait until
        `batch` of them need the model, which then makes their frames in one call."""
        previous: _Key | None = None
        last_index = -1
        planned: list[_Planned] = []
        for index, frame, thumb, is_key in classify_frames(frames, self.settings, self.span.start):
            last_index = index
            if not is_key:
                self.report.duplicates += 1
                continue
            key = _Key(index, frame, to_tensor(frame, self.interpolator.device), thumb)
            if previous is not None:
                planned.append(self._plan(previous, key))
                if sum(item.pair is not None for item in planned) >= self.interpolator.batch:
                    yield from self._flush(planned)
            previous = key
        yield from self._flush(planned)
        if last_index < 1:
            raise InputError(f"{self.sequence.path} holds {last_index + 1} frame; interpolation needs at least two")
        if self.span.stop is not None:
            if last_index != self.span.stop:
                raise InputError(f"{self.sequence.path} ends at frame {last_index}, before frame {self.span.stop}")
            self.end = self.timeline.source_time(self.span.stop)
            return  # the next span starts with this frame
        tail = self.timeline.tail(previous.index, last_index)
        for _, time in tail:
            yield previous.frame, previous.frame, time
        self.end = self.timeline.end(last_index)

    def _plan(self, start: _Key, stop: _Key) -> _Planned:
        """The output frames from source frame `start` up to `stop` (exclusive)."""
        t0, t1 = self.timeline.source_time(start.index), self.timeline.source_time(stop.index)
        frames = self.timeline.outputs(start.index, stop.index)
        between = [(number, time) for number, time in frames if time != t0]
        fractions = [float((time - t0) / (t1 - t0)) for _, time in between]
        cut = pair_is_cut(self.settings, start.thumb, stop.thumb)
        if cut:
            self.report.scene_cuts += 1
        on_start = len(frames) > len(between)
        planned = _Planned(start.frame, [start.frame] if on_start else [], [t0] if on_start else [])
        if not fractions:
            return planned
        planned.times += [time for _, time in between]
        if cut and self.settings.scene_cut == "repeat":
            planned.ready += [start.frame] * len(fractions)
        elif cut:  # blend: a cross-fade
            planned.ready += [PendingFrame(torch.lerp(start.tensor, stop.tensor, t)) for t in fractions]
        else:
            planned.pair = (start.tensor, stop.tensor, fractions)
            planned.rngs = [self._rng(number) for number, _ in between]
        return planned

    def _flush(self, planned: list[_Planned]) -> Iterator[tuple[np.ndarray, np.ndarray | PendingFrame, Fraction]]:
        """The frames of the planned intervals, in order, the model's made in one call."""
        pairs = [item.pair for item in planned if item.pair is not None]
        rngs = [rng for item in planned if item.pair is not None for rng in item.rngs]
        seeded = self.settings.seed is not None
        made = iter(self.interpolator.interpolate_pairs(pairs, rng=rngs if seeded else None) if pairs else [])
        for item in planned:
            frames = item.ready + ([PendingFrame(pred) for pred in next(made)] if item.pair is not None else [])
            for frame, time in zip(frames, item.times, strict=True):
                yield item.held, frame, time
        planned.clear()

    def _rng(self, output_index: int) -> torch.Generator | None:
        """The noise source of output frame `output_index`, on the model's device (None
        without a seed: fresh noise)."""
        if self.settings.seed is None:
            return None
        generator = torch.Generator(device=self.interpolator.device)
        return generator.manual_seed(noise_seed(self.settings.seed, output_index))

    def _finish(self, sinks: _Sinks) -> None:
        keep_audio = self.span.is_whole and keeps_audio(self.sequence, self.settings)
        for writer in (sinks.video, sinks.montage):
            if writer is None:
                continue
            encoded = writer.finish(self.end - self.origin)
            if keep_audio:
                mux_audio(encoded, self.sequence.path, writer.final)
                encoded.unlink(missing_ok=True)
            else:
                os.replace(encoded, writer.final)
        if sinks.frames is not None:
            sinks.frames.finish()



def keeps_audio(sequence: Sequence, settings: Settings) -> bool:
    """Whether the source's audio goes into the output (only when the duration is kept)."""
    if not settings.encoding.holds_audio or not sequence.is_video or not has_audio(sequence.path):
        return False
    rate, timeline = video_rate(sequence, settings), timeline_for(sequence, settings)
    if settings.target_fps is None and rate != timeline.rate:
        log.warning("%s: audio left out: -fps %s changes the duration (the source plays at %s × %d = %s)",
                    sequence.name, rate, sequence.fps, settings.scale, timeline.rate)
        return False
    return True
