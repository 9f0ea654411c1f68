"""Cutting sequences into segments: at scene cuts where possible, else at even lengths.

A segment is a `pervfi.Span` of consecutive source frames; neighbours share their boundary
frame, so each pair is interpolated by exactly one segment. Boundaries fall only on frames
that the whole run treats as key frames (not on duplicates skipped by ``--dedup``), so the
segments' outputs are exactly the whole run's.
"""
from __future__ import annotations

from dataclasses import dataclass

from pervfi.media.sources import Sequence
from pervfi.media.timeline import FrameTimes

from ..sequence import Settings, Span, classify_frames, pair_is_cut

DEFAULT_SEGMENT_FRAMES = 500


@dataclass(frozen=True)
class SequenceScan:
    """What a pass over a sequence found: its exact length, its key frames, the key frames
    that start a new scene, and a video's frame times."""

    frame_count: int
    keys: tuple[int, ...]
    cuts: frozenset[int]
    times: FrameTimes | None = None


def scan(sequence: Sequence, settings: Settings) -> SequenceScan:
    """A video's frame times (from its packets), then one decoding pass when cuts or duplicates
    matter (thumbnails only). Without cut or duplicate detection nothing is decoded: every
    frame is a key frame."""
    sequence = sequence.with_times()
    if settings.scene_cut == "off" and not settings.dedup:
        count = sequence.frame_count
        return SequenceScan(count, tuple(range(count)), frozenset(), sequence.times)
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
    return SequenceScan(count, tuple(keys), frozenset(cuts), sequence.times)


def segments(found: SequenceScan, length: int) -> list[Span]:
    """Spans of about `length` source frames: each ends at the scene cut nearest to that
    length if one lies between half and one and a half of it, else at the first key frame
    at that length. The last span takes the rest (at least one pair)."""
    if length < 1:
        raise ValueError(f"segment length must be at least 1, got {length}")
    last = found.keys[-1]
    cuts = sorted(found.cuts)
    bounds = [0]
    while True:
        start = bounds[-1]
        target = start + length
        near = [cut for cut in cuts if start + length / 2 <= cut <= start + 1.5 * length and cut < last]
        if near:
            bounds.append(min(near, key=lambda cut: (abs(cut - target), cut)))
            continue
        even = next((key for key in found.keys if key >= target), last)
        if even >= last:
            break
        bounds.append(even)
    return [Span(start, stop) for start, stop in zip(bounds, bounds[1:])] + [Span(bounds[-1])]
