"""When output frames fall: exact rational times, so 24→60 or 30000/1001 rates never drift.

Source frame k is at k / input_rate seconds; output frame m at m / output_rate. With
`-scale s` the output rate is s × the input rate and the output runs through the last
source frame, (N − 1)·s + 1 frames as in the reference. With a target rate the output
keeps the source's duration, N / input_rate seconds, like ffmpeg's fps filter: output
frames after the last source frame repeat it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Timeline:
    input_rate: Fraction
    output_rate: Fraction
    keep_duration: bool  # True for a target rate, False for an integer scale

    @classmethod
    def for_scale(cls, input_rate: Fraction, scale: int) -> "Timeline":
        return cls(Fraction(input_rate), Fraction(input_rate) * scale, keep_duration=False)

    @classmethod
    def for_rate(cls, input_rate: Fraction, output_rate: Fraction) -> "Timeline":
        return cls(Fraction(input_rate), Fraction(output_rate), keep_duration=True)

    def source_time(self, index: int) -> Fraction:
        return Fraction(index) / self.input_rate

    def times(self, start: Fraction, stop: Fraction) -> list[Fraction]:
        """Output times in [start, stop)."""
        first = math.ceil(start * self.output_rate)
        last = math.ceil(stop * self.output_rate)  # exclusive
        return [Fraction(m) / self.output_rate for m in range(first, last)]

    def end(self, frame_count: int) -> Fraction:
        """Where the output stops (exclusive) for a source of `frame_count` frames."""
        if self.keep_duration:
            return self.source_time(frame_count)
        return self.source_time(frame_count - 1) + Fraction(1, 2) / self.output_rate

    def output_count(self, frame_count: int) -> int:
        """How many frames the output of a source of `frame_count` frames has."""
        return len(self.times(Fraction(0), self.end(frame_count)))
