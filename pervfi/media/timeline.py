"""When source and output frames fall: exact rational times, so 24→60, 30000/1001 rates and
variable-frame-rate video never drift.

Source frame k is shown at `FrameTimes.time(k)`: exactly k / rate for a constant-rate source
(frame folders, and videos whose timestamps keep to their rate), the container's own
timestamps for a variable-frame-rate video (phones, screen recorders). With ``-scale s`` the
output puts s − 1 frames between each pair of source frames at their real times and runs
through the last source frame, (N − 1)·s + 1 frames as in the reference; output frame k·s is
source frame k. With a target rate R, output frame m falls at m / R and the output keeps the
source's duration, like ffmpeg's fps filter: output frames after the last source frame repeat it.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence as Ints
from dataclasses import dataclass, field
from fractions import Fraction

# A frame further than this share of a frame interval from k / rate makes the video variable-rate
# (timestamps rounded to the container's time base stay far below it).
VARIABLE_RATE_TOLERANCE = Fraction(1, 4)


@dataclass(frozen=True)
class FrameTimes:
    """When each source frame is shown. `pts` are the video's presentation timestamps in units
    of `time_base` (None for frame folders and videos without timestamps: frames by count);
    `end` is when the last frame stops showing, relative to the first frame."""

    rate: Fraction  # the nominal rate (the container's, or the frame folder's)
    count: int
    pts: tuple[int, ...] | None = None
    time_base: Fraction | None = None
    last_duration: Fraction | None = None  # variable rate only: how long the last frame shows
    variable: bool = field(init=False)

    def __post_init__(self) -> None:
        if self.pts is not None and len(self.pts) != self.count:
            raise ValueError(f"{len(self.pts)} timestamps for {self.count} frames")
        object.__setattr__(self, "variable", self._strays_from_rate())

    @classmethod
    def constant(cls, rate: Fraction, count: int) -> FrameTimes:
        return cls(Fraction(rate), count)

    @classmethod
    def from_pts(cls, rate: Fraction, pts: Ints[int], time_base: Fraction, last_packet: int = 0,
                 container_end: Fraction | None = None) -> FrameTimes:
        """The times of a video from its sorted timestamps. The last frame lasts its packet's
        duration when that is plausible (a quarter of the typical interval or more; ffmpeg writes
        one tick when it does not know), else the typical interval, cut at the container's end."""
        pts = tuple(int(value) for value in pts)
        gaps = [b - a for a, b in zip(pts, pts[1:])]
        typical = statistics.median(gaps) if gaps else 0
        last = last_packet if gaps and last_packet * 4 >= typical else typical
        duration = Fraction(last) * time_base
        if container_end is not None and pts and last != last_packet:
            room = container_end - Fraction(pts[-1] - pts[0]) * time_base
            if 0 < room < duration:
                duration = room
        return cls(Fraction(rate), len(pts), pts, Fraction(time_base), duration or 1 / Fraction(rate))

    def to_json(self) -> dict:
        """The times as JSON values (fractions as "n/d" strings), for a job's plan file."""
        return {"rate": str(self.rate), "count": self.count, "pts": None if self.pts is None else list(self.pts),
                "time_base": _text(self.time_base), "last_duration": _text(self.last_duration)}

    @classmethod
    def from_json(cls, data: dict | None) -> FrameTimes | None:
        """What `to_json` wrote (None stays None)."""
        if data is None:
            return None
        return cls(Fraction(data["rate"]), data["count"], None if data["pts"] is None else tuple(data["pts"]),
                   _fraction(data["time_base"]), _fraction(data["last_duration"]))

    def time(self, index: int) -> Fraction:
        """Seconds from the first frame to frame `index`."""
        if not self.variable:
            return Fraction(index) / self.rate
        return (self.pts[index] - self.pts[0]) * self.time_base

    def end(self, last: int | None = None) -> Fraction:
        """When the frames up to `last` (default: all) stop showing."""
        last = self.count - 1 if last is None else last
        if not self.variable:
            return Fraction(last + 1) / self.rate
        if last + 1 < self.count:
            return self.time(last + 1)
        return self.time(last) + self.last_duration

    def _strays_from_rate(self) -> bool:
        if self.pts is None or self.count < 2:
            return False
        # |(pts_k − pts_0)·time_base·rate − k| > tolerance, in integers (films have 10⁵ frames)
        scale = self.time_base * self.rate
        tolerance = VARIABLE_RATE_TOLERANCE * scale.denominator
        first = self.pts[0]
        return any(abs((value - first) * scale.numerator - index * scale.denominator) > tolerance
                   for index, value in enumerate(self.pts))


def _text(value: Fraction | None) -> str | None:
    return None if value is None else str(value)


def _fraction(text: str | None) -> Fraction | None:
    return None if text is None else Fraction(text)


@dataclass(frozen=True)
class Timeline:
    """The output frames of a source: numbers and times. `scale` (×N) or `output_rate` (a
    target rate keeping the duration)."""

    source: FrameTimes
    scale: int | None = None
    output_rate: Fraction | None = None

    def __post_init__(self) -> None:
        if (self.scale is None) == (self.output_rate is None):
            raise ValueError("a timeline has a scale or an output rate, not both")

    @classmethod
    def for_scale(cls, source: FrameTimes, scale: int) -> Timeline:
        return cls(source, scale=scale)

    @classmethod
    def for_rate(cls, source: FrameTimes, output_rate: Fraction) -> Timeline:
        return cls(source, output_rate=Fraction(output_rate))

    @property
    def rate(self) -> Fraction:
        """The output's (nominal) frame rate."""
        return self.output_rate if self.output_rate is not None else self.source.rate * self.scale

    @property
    def variable(self) -> bool:
        """Whether output frames fall off a constant-rate grid (×N of a variable-rate source)."""
        return self.scale is not None and self.source.variable

    def source_time(self, index: int) -> Fraction:
        return self.source.time(index)

    def outputs(self, start: int, stop: int) -> list[tuple[int, Fraction]]:
        """(number, time) of the output frames from source frame `start` up to `stop` (exclusive)."""
        if self.output_rate is not None:
            return self._grid(self.source_time(start), self.source_time(stop))
        frames = []
        for index in range(start, stop):
            t0, t1 = self.source_time(index), self.source_time(index + 1)
            frames += [(index * self.scale + j, t0 + j * (t1 - t0) / self.scale) for j in range(self.scale)]
        return frames

    def tail(self, start: int, last: int) -> list[tuple[int, Fraction]]:
        """The output frames from source frame `start` to the end of a source whose last frame is `last`."""
        if self.output_rate is not None:
            return self._grid(self.source_time(start), self.source.end(last))
        return self.outputs(start, last) + [(last * self.scale, self.source_time(last))]

    def end(self, last: int) -> Fraction:
        """When the output of a source whose last frame is `last` stops showing: the source's end
        for a target rate; for ×N, the last frame shows for 1/N of its source duration."""
        if self.output_rate is not None:
            return self.source.end(last)
        last_time = self.source_time(last)
        return last_time + (self.source.end(last) - last_time) / self.scale

    def first_output(self, index: int) -> int:
        """The number of the first output frame at or after source frame `index`."""
        if self.output_rate is not None:
            return math.ceil(self.source_time(index) * self.output_rate)
        return index * self.scale

    def count(self, last: int | None = None) -> int:
        """How many frames the output has (of a source whose last frame is `last`, default all)."""
        last = self.source.count - 1 if last is None else last
        if self.output_rate is not None:
            return math.ceil(self.source.end(last) * self.output_rate)
        return last * self.scale + 1

    def _grid(self, start: Fraction, stop: Fraction) -> list[tuple[int, Fraction]]:
        """(m, m / R) for the times m / R in [start, stop)."""
        first, last = math.ceil(start * self.output_rate), math.ceil(stop * self.output_rate)
        return [(number, Fraction(number) / self.output_rate) for number in range(first, last)]
