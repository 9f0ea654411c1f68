"""Interpolating on several devices and machines with the output of one (issue 17).

Sequences are cut into segments (`plan`), each written under a job folder (`jobs`) by
worker processes on the devices of ``--devices`` (`pool`), by torchrun's ranks or by the
tasks of a job array (``--shard I/N``); the last step joins the segments without
re-encoding and muxes the audio (`merge`). Finished segments survive a crash, so the same
command resumes. v00's noise is drawn per output frame, so the split never changes a pixel.
"""
from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pervfi.core.errors import PerVFIError
from pervfi.core.files import remove
from pervfi.media.sources import Sequence
from pervfi.models.checkpoints import require_checkpoints
from pervfi.models.method_names import parse_method

from ..determinism import deterministic
from ..interpolator import Interpolator
from ..sequence import Report, Settings
from .devices import Share, parse_devices, parse_shard, rank_device, torchrun_share
from .jobs import Segment, exclusive, job_folder, job_key, plan_segments, run_segment, write_atomically
from .merge import join_sequence
from .plan import DEFAULT_SEGMENT_FRAMES
from .pool import DeviceStats, failure_cause, run_pool

__all__ = ["run_parallel", "DEFAULT_SEGMENT_FRAMES"]

log = logging.getLogger(__name__)
_WAIT_SECONDS = 0.5


def run_parallel(sequences: list[Sequence], save: Path, method: str, settings: Settings, model: dict[str, Any],
                 devices: str | None = None, shard: str | None = None, merge: bool = False,
                 segment_frames: int = DEFAULT_SEGMENT_FRAMES, device: str = "auto",
                 threads: int | None = None) -> list[tuple[Sequence, Report]]:
    """Interpolate `sequences` in segments and join them: on the worker processes of
    `devices` (``cuda:0,cuda:1``, ``all``, ``cpu,cpu``), as one torchrun rank, as the job-array
    task `shard` (``I/N``, no join), or only join (`merge`). `model` holds the keyword
    arguments of `Interpolator.from_method`; `method` is the name used in file names; `threads`
    the CPU threads of each worker of `devices` (default: the free cores shared among them).
    Returns the joined sequences' reports (none for a shard or a rank other than 0)."""
    if settings.encoding.ext == "gif":
        raise PerVFIError("--ext gif cannot be split: a GIF's segments cannot be joined without re-encoding; "
                          "run it on one device")
    share = parse_shard(shard) if shard is not None else None if devices is not None else torchrun_share()
    if devices is not None and (shard is not None or merge or torchrun_share() is not None):
        raise PerVFIError("--devices runs all segments on this machine; leave out --shard, --merge and torchrun")
    pool = parse_devices(devices) if devices is not None else None
    if pool is not None and len({target.type for target in pool}) > 1:
        raise PerVFIError(f"--devices {devices}: one kind of device per job (segments made on different kinds "
                          "differ where they meet); run the kinds as separate jobs")
    asked = pool[0].type if pool is not None else device.strip().lower()
    if not merge:
        spec = parse_method(model["method"])
        with exclusive(Path(model["checkpoint_dir"]) / ".download.lock"):  # one process downloads, others wait
            require_checkpoints([(spec.flow, "flow"), (spec.generator, "generator")], model["checkpoint_dir"])
    by_sequence = [(sequence, _segments(sequence, save, settings, model, segment_frames, merge, asked))
                   for sequence in sequences]
    if merge:
        return _join(by_sequence, save, method, settings)
    try:
        return _run(by_sequence, save, method, settings, model, pool, share, shard, device, threads)
    except BaseException:
        if shard is None:  # a job array's other tasks may still be writing into the job folders
            _after_failure(by_sequence)
        raise


def _run(by_sequence: list[tuple[Sequence, list[Segment]]], save: Path, method: str, settings: Settings,
         model: dict[str, Any], pool: list | None, share: Share | None, shard: str | None, device: str,
         threads: int | None) -> list[tuple[Sequence, Report]]:
    segments = [segment for _, found in by_sequence for segment in found]
    if pool is not None:
        _run_on_devices(pool, segments, model, method, settings, threads)
        return _join(by_sequence, save, method, settings)
    if share is None:
        share = Share(0, 1)
    first = share.index == 0
    with _progress(segments, settings, quiet=not first) as progress:
        with deterministic():  # the same bits as one device's run, however the work is split
            _run_share(share, segments, model, method, settings, progress, rank_device(device))
        if shard is not None:
            log.info("shard %s: its segments are done; join them with --merge when every shard has finished", shard)
            return []
        if not first:
            return []
        _wait_for_all(segments, progress)
    return _join(by_sequence, save, method, settings)


def _after_failure(by_sequence: list[tuple[Sequence, list[Segment]]]) -> None:
    """After a failure or a stop: a job folder without a finished segment holds nothing to resume
    (its plan, failure markers), so it goes, with the sequence's output folder when that is left
    empty; one with finished segments stays, and the log says that the same command resumes.
    (Under torchrun every rank does this as it stops, so the last one leaves no empty folder.)"""
    for sequence, segments in by_sequence:
        if not segments:
            continue
        job = segments[0].job
        done = sum(segment.done for segment in segments)
        if done:
            log.info("%s: %d of %d segment(s) finished and kept in %s; the same command resumes", sequence.name, done,
                     len(segments), job)
            continue
        remove(job)
        with contextlib.suppress(OSError):  # not empty: an earlier run's outputs
            job.parent.rmdir()


def _segments(sequence: Sequence, save: Path, settings: Settings, model: dict[str, Any], segment_frames: int,
              merge: bool, device: str) -> list[Segment]:
    """The sequence's segments; with `merge`, only those a shard has planned (same settings)."""
    job = job_folder(save, sequence, job_key(sequence, settings, model, segment_frames, device))
    if merge and not (job / "plan.json").is_file():
        raise PerVFIError(f"nothing to merge for {sequence.name}: no segments in {job} (run the shards first, "
                          "with the same input, method, settings, --device and --precision)")
    return plan_segments(sequence, settings, job, segment_frames)


def _progress(segments: list[Segment], settings: Settings, quiet: bool = False) -> tqdm:
    """One bar for the whole job, starting from the frames of segments already done."""
    done = sum(len(segment.outputs) for segment in segments if segment.done)
    return tqdm(total=sum(len(segment.outputs) for segment in segments), initial=done, unit="frame",
                desc="all devices", disable=settings.quiet or quiet, dynamic_ncols=True, leave=False)


def _announce(segments: list[Segment], todo: list[Segment], where: str) -> None:
    if len(todo) < len(segments):
        log.info("%d of %d segment(s) already done; %d to go on %s", len(segments) - len(todo), len(segments),
                 len(todo), where)


def _run_on_devices(devices: list, segments: list[Segment], model: dict[str, Any], method: str,
                    settings: Settings, threads: int | None) -> None:
    todo = [segment for segment in segments if not segment.done]
    _announce(segments, todo, ", ".join(map(str, devices)))
    with _progress(segments, settings) as progress:
        stats = run_pool(devices, todo, model, method, settings, progress, threads) if todo else []
    _log_rates(stats)


def _run_share(share: Share, segments: list[Segment], model: dict[str, Any], method: str, settings: Settings,
               progress: tqdm, target: Any) -> None:
    """This process's segments, one after another on its device; a failure leaves a marker
    (``.failed-seg-N``) that rank 0 reports."""
    mine = [segment for number, segment in enumerate(segments) if share.picks(number)]
    for segment in mine:
        _failure_marker(segment).unlink(missing_ok=True)
    todo = [segment for segment in mine if not segment.done]
    _announce(mine, todo, str(target))
    if not todo:
        return
    interpolator = Interpolator.from_method(**model, device=target, download=False)
    stats = DeviceStats(f"{target} (share {share.index}/{share.count})" if share.count > 1 else str(target))
    for segment in todo:
        started = time.perf_counter()
        try:
            report = run_segment(interpolator, segment, method, settings, on_frame=progress.update)
        except Exception as error:  # noqa: BLE001 - one line naming the segment, for this rank and rank 0
            message = f"{segment.describe()} on {target}: {failure_cause(error)}"
            write_atomically(_failure_marker(segment), message)
            raise PerVFIError(message) from None
        stats.frames += report.frames_written
        stats.seconds += time.perf_counter() - started
    _log_rates([stats])


def _wait_for_all(segments: list[Segment], progress: tqdm) -> None:
    """Wait (rank 0) until every rank's segments are done; PerVFIError when one failed."""
    waiting = [segment for segment in segments if not segment.done]
    while waiting:
        for segment in waiting:
            marker = _failure_marker(segment)
            if marker.is_file():
                raise PerVFIError(marker.read_text().strip())
        now_done = [segment for segment in waiting if segment.done]
        for segment in now_done:
            progress.update(len(segment.outputs))
        waiting = [segment for segment in waiting if segment not in now_done]
        if waiting:
            time.sleep(_WAIT_SECONDS)


def _failure_marker(segment: Segment) -> Path:
    return segment.job / f".failed-seg-{segment.number:05d}"


def _join(by_sequence: list[tuple[Sequence, list[Segment]]], save: Path, method: str,
          settings: Settings) -> list[tuple[Sequence, Report]]:
    missing = [segment for _, found in by_sequence for segment in found if not segment.done]
    if missing:
        raise PerVFIError(f"{len(missing)} segment(s) are not done yet (first: {missing[0].describe()}); "
                          "run the remaining shards (the same command with --shard) before --merge")
    return [(sequence, join_sequence(sequence, found, save, method, settings)) for sequence, found in by_sequence]


def _log_rates(stats: list[DeviceStats]) -> None:
    for entry in stats:
        log.info("%s", entry.summary())
