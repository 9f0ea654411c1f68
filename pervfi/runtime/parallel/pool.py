"""One worker process per device, each with its own model, given the next segment when free.

The parent shows one progress bar for the whole job (frames done by all workers) and
watches the workers: the first failure (an error in a segment, a killed process, out of
memory) stops the others, removes the unfinished segments and is reported in one line.
"""
from __future__ import annotations

import multiprocessing
import signal
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import torch
from tqdm import tqdm

from pervfi.core.cpu_threads import default_threads, use_threads
from pervfi.core.errors import PerVFIError

from ..determinism import deterministic
from ..interpolator import Interpolator
from ..sequence import Settings
from .jobs import Segment, drop_partial, run_segment

_POLL_SECONDS = 0.2
_STOP_SECONDS = 10.0  # how long a worker asked to stop may take to clean up
EXIT_STOPPED = 3


@dataclass
class DeviceStats:
    """What one device did: frames written and seconds spent on segments."""

    device: str
    frames: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        return f"{self.device}: {self.frames} frames in {self.seconds:.1f} s ({rate:.2f} frames/s)"


def failure_cause(error: BaseException) -> str:
    """One line saying why a segment failed."""
    if isinstance(error, torch.OutOfMemoryError):
        return "out of memory"
    text = str(error).strip().splitlines()
    if isinstance(error, PerVFIError):
        return text[0] if text else type(error).__name__
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _worker(device: str, threads: int, model: dict[str, Any], method: str, settings: Settings,
            channel: Connection) -> None:
    """A worker process: build the model on `device`, then interpolate the segments the
    parent sends until it sends None. Tells the parent "ready", each "frame", "done" and
    the first "failed"."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers
    # Asked to stop: unwind, so the segment's encoders are closed and its partial files removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(EXIT_STOPPED))
    # tqdm's default lock is a named semaphore, which a killed worker would leave behind (with a warning)
    tqdm.set_lock(threading.RLock())
    use_threads(threads)
    with deterministic():  # the same bits as one device's run, however the work is split
        _serve(device, model, method, settings, channel)


def _serve(device: str, model: dict[str, Any], method: str, settings: Settings, channel: Connection) -> None:
    """Build the model, then interpolate segments until the parent sends None."""
    try:
        interpolator = Interpolator.from_method(**model, device=device, download=False)
    except Exception as error:  # noqa: BLE001 - reported by the parent
        channel.send(("failed", failure_cause(error)))
        return
    channel.send(("ready", None))
    while (segment := channel.recv()) is not None:
        try:
            report = run_segment(interpolator, segment, method, settings, on_frame=lambda: channel.send(("frame", None)))
        except Exception as error:  # noqa: BLE001 - reported by the parent
            channel.send(("failed", failure_cause(error)))
            return
        channel.send(("done", report.frames_written))


@dataclass
class _Slot:
    """The parent's view of one worker."""

    label: str
    process: Any
    channel: Connection
    stats: DeviceStats
    segment: Segment | None = None
    started: float = 0.0


def run_pool(devices: list[torch.device], segments: list[Segment], model: dict[str, Any], method: str,
             settings: Settings, progress: tqdm, threads: int | None = None) -> list[DeviceStats]:
    """Interpolate `segments` with one worker per device, each given the next segment when
    it is free; PerVFIError naming the segment and the cause when one fails (the others
    are stopped, their partial work removed). Each worker uses `threads` CPU threads (default:
    the free cores shared among the workers)."""
    context = multiprocessing.get_context("spawn")
    threads = threads or default_threads(workers=len(devices))
    slots = []
    for number, device in enumerate(devices):
        label = str(device) if devices.count(device) == 1 else f"{device} (worker {number})"
        parent_end, child_end = context.Pipe()
        process = context.Process(target=_worker, name=f"pervfi-worker-{number}", daemon=True,
                                  args=(str(device), threads, model, method,
                                        settings, child_end))
        slots.append(_Slot(label, process, parent_end, DeviceStats(label)))
    queue = list(reversed(segments))
    remaining = len(segments)
    try:
        for slot in slots:
            slot.process.start()
        while remaining:
            ready = wait([slot.channel for slot in slots if slot.process.exitcode is None or slot.channel.poll()],
                         timeout=_POLL_SECONDS)
            for slot in slots:
                if slot.channel in ready:
                    remaining -= _handle(slot, queue, progress)
            _check_alive(slots)
        for slot in slots:
            slot.channel.send(None)
    except BaseException:
        for slot in slots:
            _stop(slot.process)
        for slot in slots:
            if slot.segment is not None:
                drop_partial(slot.segment)
        raise
    finally:
        for slot in slots:
            slot.process.join()
            slot.channel.close()
    return [slot.stats for slot in slots]


def _stop(process: Any) -> None:
    """Ask a worker to stop (it cleans up after itself), and kill it if it does not."""
    if process.pid is None:
        return
    process.terminate()
    process.join(_STOP_SECONDS)
    if process.is_alive():
        process.kill()
        process.join()


def _handle(slot: _Slot, queue: list[Segment], progress: tqdm) -> int:
    """Act on one message of a worker; the number of segments it completed (0 or 1)."""
    try:
        kind, value = slot.channel.recv()
    except EOFError:  # the process is gone; _check_alive says how
        slot.process.join()
        _check_alive([slot])
        raise PerVFIError(f"the worker on {slot.label} stopped without a word") from None
    done = 0
    if kind == "frame":
        progress.update()
        return 0
    if kind == "failed":
        where = slot.segment.describe() if slot.segment is not None else "loading the model"
        raise PerVFIError(f"{where} on {slot.label}: {value}")
    if kind == "done":
        slot.stats.frames += value
        slot.stats.seconds += time.perf_counter() - slot.started
        done = 1
    slot.segment = queue.pop() if queue else None
    if slot.segment is not None:
        slot.started = time.perf_counter()
        slot.channel.send(slot.segment)
    return done


def _check_alive(slots: list[_Slot]) -> None:
    """PerVFIError when a worker died without reporting (killed, crashed)."""
    for slot in slots:
        code = slot.process.exitcode
        if code not in (None, 0):
            cause = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
            where = slot.segment.describe() if slot.segment is not None else "a worker"
            raise PerVFIError(f"{where} on {slot.label}: the worker process was {cause}")
