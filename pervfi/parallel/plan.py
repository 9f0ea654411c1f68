"""Cutting sequences into segments: at scene cuts where possible, else at even lengths.

A segment is a `pervfi.Span` of consecutive source frames; neighbours share their boundary
frame, so each pair is interpolated by exactly one segment. Boundaries fall only on frames
that the whole run treats as key frames (not on duplicates skipped by ``--dedup``), so the
segments' outputs are exactly the whole run's.
"""
from __future__ import annotations

from dataclasses import dataclass

from pervfi import Sequence, Settings, Span, classify_frames, pair_is_cut

DEFAULT_SEGMENT_FRAMES = 500


@dataclass(frozen=True)
class SequenceScan:
    """What a pass over a sequence found: its exact length, its key frames, and the key
    frames that start a new scene."""

    frame_count: int
    keys: tuple[int, ...]
    cuts: frozenset[int]


def scan(sequence: Sequence, settings: Settings) -> SequenceScan:
    """Decode the sequence once (thumbnails only when cuts or duplicates matter). A frame
    folder without cut or duplicate detection needs no pass: every frame is a key frame."""
    if not sequence.is_video and settings.scene_cut == "off" and not settings.dedup:
        count = sequence.frame_count
        return SequenceScan(count, tuple(range(count)), frozenset())
    keys: list[int] = []
    cuts: set[int] = set()
    last = None
    count = 0
    for index, _, thumb, is_key in classify_frames(sequence.frames(), settings):
        count = index + 1
        if not is_key:
            continue
        if keys and pair_is_cut(settings, last, thumb):
            cuts.add(index)
        keys.append(index)
        last = thumb
    return SequenceScan(count, tuple(keys), frozenset(cuts))


def segments(found: SequenceScan, length: int) -> list[Span]:
    """Spans of about `length` source frames: a span ends at a scene cut once it holds half
    of that, and at the next key frame once it holds all of it."""
    if length < 1:
        raise ValueError(f"segment length must be at least 1, got {length}")
    bounds = [0]
    for index in found.keys[1:-1]:
        held = index - bounds[-1]
        if held >= length or (index in found.cuts and 2 * held >= length):
            bounds.append(index)
    spans = [Span(start, stop) for start, stop in zip(bounds, bounds[1:])]
    return spans + [Span(bounds[-1])]
