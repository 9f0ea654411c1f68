"""Limits for shared hosting: the longest clip, the most output frames, the largest frame, the
queue. Each is a flag of ``python -m pervfi.app`` whose default an environment variable sets
(a hosted Space sets them in its settings)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from pervfi.core.errors import InputError
from pervfi.media.sources import Sequence
from pervfi.runtime.sequence import Settings, output_frame_count


@dataclass(frozen=True)
class Limits:
    """What one job may ask for; a request over a limit is refused before any work."""

    max_seconds: float = 30.0  # the input clip's duration
    max_frames: int = 1000  # output frames of one job (the work it costs)
    max_side: int = 2048  # the larger side of a frame, in pixels
    queue_size: int = 8  # jobs waiting for the device; more are turned away

    def __post_init__(self) -> None:
        for limit in fields(self):
            if getattr(self, limit.name) <= 0:
                raise ValueError(f"{limit.name} must be positive, got {getattr(self, limit.name)}")

    def describe(self) -> str:
        """The limits in words, for the server's log."""
        return (f"clips up to {self.max_seconds:g} s, at most {self.max_frames} output frames a job, frames up to "
                f"{self.max_side} pixels a side, {self.queue_size} job{'s' if self.queue_size > 1 else ''} waiting")

    def check(self, sequence: Sequence, settings: Settings) -> None:
        """InputError saying which limit the job of `sequence` would exceed."""
        side = max(sequence.width, sequence.height)
        if side > self.max_side:
            raise InputError(f"{sequence.width}×{sequence.height} frames are larger than this server takes "
                             f"(at most {self.max_side} pixels a side)")
        rate = sequence.fps or settings.input_fps
        seconds = float(sequence.frame_count / rate) if rate else 0.0
        if seconds > self.max_seconds:
            raise InputError(f"the clip lasts {seconds:.3g} s; this server takes at most "
                             f"{self.max_seconds:g} s")
        frames = output_frame_count(sequence, settings)
        if frames > self.max_frames:
            raise InputError(f"the result would have {frames} frames; this server makes at most "
                             f"{self.max_frames} per job (ask for fewer frames or a shorter clip)")


# The environment variable that sets each limit's default.
ENVIRONMENT = {
    "max_seconds": "PERVFI_APP_MAX_SECONDS",
    "max_frames": "PERVFI_APP_MAX_FRAMES",
    "max_side": "PERVFI_APP_MAX_SIDE",
    "queue_size": "PERVFI_APP_QUEUE_SIZE",
}


def default_limits(environ: Mapping[str, str] = os.environ) -> Limits:
    """The built-in limits, replaced by those the environment sets; ValueError naming a bad variable."""
    values = {}
    for limit in fields(Limits):
        variable, text = ENVIRONMENT[limit.name], environ.get(ENVIRONMENT[limit.name])
        if text is None:
            continue
        kind = int if limit.type in (int, "int") else float
        try:
            values[limit.name] = kind(text)
        except ValueError:
            raise ValueError(f"{variable}={text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if values[limit.name] <= 0:
            raise ValueError(f"{variable} must be positive, got {text}")
    return Limits(**values)
