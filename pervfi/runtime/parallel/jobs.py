"""The job folder: where segments are written, found again, and joined.

``<save>/<name>/.parallel-<key>/`` holds the plan (``plan.json``) and one folder per
finished segment (``seg-00003``); a segment being written lives under a hidden partial
name and is renamed when complete, so a rerun of the same command skips what is done.
The key is a digest of everything that changes the output (method and model options,
precision and device as asked, settings, segment length, and the source's content: sizes and
sampled blocks, not paths or file times, so copies on several machines agree), so a changed
command starts afresh. The plan is made once per job: the first process to take the plan's
lock scans the source, the others wait and read it. Each done segment records the precision
and device kind it was made with, and segments made differently are never joined.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pervfi.core.errors import OutputError, PerVFIError
from pervfi.core.files import write_text_whole
from pervfi.media.sources import Sequence
from pervfi.media.timeline import FrameTimes

from ..sequence import Report, SequenceRun, Settings, Span, span_outputs
from .plan import SequenceScan, scan, segments

PLAN_FORMAT = "pervfi-parallel-plan-v2"
# The source's identity: this many blocks of this size, spread evenly over each file (a video,
# or up to SAMPLED_FRAMES frame files of a folder), are digested with every file's size.
SAMPLED_BLOCKS, BLOCK_BYTES, SAMPLED_FRAMES = 16, 1 << 16, 64


@dataclass(frozen=True)
class Segment:
    """One unit of work: a span of one sequence, and where its result goes."""

    sequence: Sequence
    number: int  # 0, 1, ... within the sequence
    span: Span
    outputs: range  # the output frame numbers it writes
    job: Path  # the sequence's job folder

    @property
    def folder(self) -> Path:
        return self.job / f"seg-{self.number:05d}"

    @property
    def partial(self) -> Path:
        return self.job / f".seg-{self.number:05d}.partial"

    @property
    def done(self) -> bool:
        return self.folder.is_dir()

    def describe(self) -> str:
        stop = "end" if self.span.stop is None else self.span.stop
        return f"segment {self.number} of {self.sequence.name} (frames {self.span.start}-{stop})"


def job_key(sequence: Sequence, settings: Settings, model: dict[str, Any], segment_frames: int,
            device: str = "auto") -> str:
    """A digest of everything that decides the segments' content (`model` holds the precision
    asked for; `device` is the device or device kind asked for)."""
    fields = {
        "model": model,
        "device": device,
        "settings": {k: v for k, v in dataclasses.asdict(settings).items() if k != "quiet"},
        "segment_frames": segment_frames,
        "source": [sequence.name, sequence.frame_count, source_digest(sequence)],
    }
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def source_digest(sequence: Sequence) -> str:
    """The content of a source, cheaply: every file's name and size, and sampled blocks."""
    files = sequence.frame_files or (sequence.path,)
    digest = hashlib.blake2b(digest_size=16)
    for path in files:
        digest.update(f"{path.name}:{path.stat().st_size};".encode())
    step = max(1, len(files) // SAMPLED_FRAMES)
    blocks = SAMPLED_BLOCKS if len(files) == 1 else 1
    for path in files[::step]:
        size = path.stat().st_size
        with path.open("rb") as file:
            for number in range(blocks):
                file.seek(size * number // blocks)
                digest.update(file.read(BLOCK_BYTES))
    return digest.hexdigest()


def job_folder(save: Path, sequence: Sequence, key: str) -> Path:
    return save / sequence.name / f".parallel-{key}"


def plan_segments(sequence: Sequence, settings: Settings, job: Path, segment_frames: int) -> list[Segment]:
    """The sequence's segments, from the job's plan file, or planned now and saved. One process
    plans; the others wait for its plan (without file locks, each plans the same file)."""
    plan_file = job / "plan.json"
    with exclusive(job / ".plan.lock"):
        if plan_file.is_file():
            plan = json.loads(plan_file.read_text())
            spans = [Span(start, stop) for start, stop in plan["spans"]]
            frame_count, times = plan["frame_count"], FrameTimes.from_json(plan["times"])
        else:
            found: SequenceScan = scan(sequence, settings)
            spans, frame_count, times = segments(found, segment_frames), found.frame_count, found.times
            write_atomically(plan_file, json.dumps({"format": PLAN_FORMAT, "frame_count": frame_count,
                                                    "spans": [[s.start, s.stop] for s in spans],
                                                    "times": times and times.to_json()}))
    sequence = dataclasses.replace(sequence, frame_count=frame_count, times=times)
    return [Segment(sequence, number, span, span_outputs(sequence, settings, span), job)
            for number, span in enumerate(spans)]


@contextlib.contextmanager
def exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file `lock` (created if need be); others wait for it. The
    lock goes with its process, so a crash leaves none behind. Where file locks are not
    available (Windows, a read-only folder), nothing is locked."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        file = lock.open("a")
    except OSError:  # a read-only folder (shared weights): nothing to write there, nothing to guard
        yield
        return
    with file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def write_atomically(path: Path, text: str) -> None:
    """Write `path` under a unique temporary name and rename it into place."""
    try:
        write_text_whole(path, text)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from None


def run_segment(interpolator: Any, segment: Segment, method: str, settings: Settings,
                on_frame=None) -> Report:
    """Interpolate one segment into its partial folder and rename it done; on any failure
    nothing of it remains."""
    shutil.rmtree(segment.partial, ignore_errors=True)  # what a killed run left
    try:
        segment.partial.mkdir(parents=True)
        report = SequenceRun(interpolator, segment.sequence, segment.partial, method,
                             dataclasses.replace(settings, quiet=True), span=segment.span, on_frame=on_frame).run()
        counts = {"frames_written": report.frames_written, "scene_cuts": report.scene_cuts,
                  "duplicates": report.duplicates, "made_with": made_with(interpolator)}
        (segment.partial / "report.json").write_text(json.dumps(counts))
        shutil.rmtree(segment.folder, ignore_errors=True)
        os.replace(segment.partial, segment.folder)
    except BaseException:
        drop_partial(segment)
        raise
    return report


def segment_counts(segment: Segment) -> dict[str, int]:
    """The frames written, scene cuts and duplicates of a done segment."""
    return json.loads((segment.folder / "report.json").read_text())


def made_with(interpolator: Any) -> str:
    """The precision and device kind of an interpolator, as segments record them ("bf16 on cuda")."""
    return f"{interpolator.precision} on {interpolator.device.type}"


def check_made_alike(segments: list[Segment]) -> None:
    """PerVFIError unless every done segment was made with one precision and device kind (their
    frames would differ from one another where they meet)."""
    kinds: dict[str, Segment] = {}
    for segment in segments:
        kinds.setdefault(segment_counts(segment).get("made_with", "unrecorded"), segment)
    if len(kinds) > 1:
        (first, one), (second, other) = list(kinds.items())[:2]
        raise PerVFIError(f"{one.describe()} was made with {first} but {other.describe()} with {second}; "
                          f"segments made differently are not joined: delete {other.job} and run the shards "
                          "again with one --precision and one kind of device")


def drop_partial(segment: Segment) -> None:
    shutil.rmtree(segment.partial, ignore_errors=True)
