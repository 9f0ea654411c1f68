"""The job folder: where segments are written, found again, and joined.

``<save>/<name>/.parallel-<key>/`` holds the plan (``plan.json``) and one folder per
finished segment (``seg-00003``); a segment being written lives under a hidden partial
name and is renamed when complete, so a rerun of the same command skips what is done.
The key is a digest of everything that changes the output (method and model options,
settings, segment length, and the source's identity), so a changed command starts afresh.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pervfi.core.errors import OutputError
from pervfi.core.files import write_text_whole
from pervfi.media.sources import Sequence

from ..sequence import Report, SequenceRun, Settings, Span, span_outputs
from .plan import SequenceScan, scan, segments

PLAN_FORMAT = "pervfi-parallel-plan-v1"


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


def job_key(sequence: Sequence, settings: Settings, model: dict[str, Any], segment_frames: int) -> str:
    """A digest of everything that decides the segments' content."""
    files = sequence.frame_files or (sequence.path,)
    fields = {
        "model": model,
        "settings": {k: v for k, v in dataclasses.asdict(settings).items() if k != "quiet"},
        "segment_frames": segment_frames,
        "source": [str(sequence.path.resolve()), sequence.frame_count,
                   [(path.name, path.stat().st_size, path.stat().st_mtime_ns) for path in files]],
    }
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def job_folder(save: Path, sequence: Sequence, key: str) -> Path:
    return save / sequence.name / f".parallel-{key}"


def plan_segments(sequence: Sequence, settings: Settings, job: Path, segment_frames: int) -> list[Segment]:
    """The sequence's segments, from the job's plan file, or planned now and saved (every
    process that plans writes the same file, atomically)."""
    plan_file = job / "plan.json"
    if plan_file.is_file():
        plan = json.loads(plan_file.read_text())
        spans = [Span(start, stop) for start, stop in plan["spans"]]
        frame_count = plan["frame_count"]
    else:
        found: SequenceScan = scan(sequence, settings)
        spans, frame_count = segments(found, segment_frames), found.frame_count
        write_atomically(plan_file, json.dumps({"format": PLAN_FORMAT, "frame_count": frame_count,
                                                "spans": [[s.start, s.stop] for s in spans]}))
    return [Segment(sequence, number, span, span_outputs(sequence, settings, span, frame_count), job)
            for number, span in enumerate(spans)]


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
                  "duplicates": report.duplicates}
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


def drop_partial(segment: Segment) -> None:
    shutil.rmtree(segment.partial, ignore_errors=True)
