"""How many CPU threads one process uses: one figure for PyTorch, OpenCV and the ffmpeg
encoders it starts, so that together they do not oversubscribe the cores.

With other work on the cores, PyTorch's threads wait for one another at every operation, and
a run with more threads than free cores is several times slower than with one. So the default
is the cores free when the command starts (their idle share over a tenth of a second, read
from /proc/stat on Linux; all usable cores elsewhere), shared among the processes launched
together on this machine (torchrun's ``LOCAL_WORLD_SIZE``, or the workers of ``--devices``).
``OMP_NUM_THREADS``, when set (torchrun sets 1), is the user's choice and wins.

The number of threads can change results in the last bit (reductions are split differently),
so runs that must match pixel for pixel use the same number (``--threads``).
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

# How long the cores' idle time is watched to judge how many are free.
SAMPLE_SECONDS = 0.1
_CGROUP_QUOTA = Path("/sys/fs/cgroup/cpu.max")
_PROC_STAT = Path("/proc/stat")

_chosen: int | None = None  # the figure `use_threads` set in this process


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = _CGROUP_QUOTA.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def free_cores(sample_seconds: float = SAMPLE_SECONDS) -> int:
    """The usable cores that are idle now (at least 1): the machine's idle share over
    `sample_seconds`, times its cores; the usable cores where that cannot be read."""
    usable = usable_cores()
    first = _cpu_times()
    if first is None:
        return usable
    time.sleep(sample_seconds)
    second = _cpu_times()
    if second is None or second[0] <= first[0]:
        return usable
    total, idle = second[0] - first[0], second[1] - first[1]
    idle_cores = idle / total * (os.cpu_count() or usable)
    return max(1, min(usable, round(idle_cores)))


def default_threads(workers: int = 1) -> int:
    """The threads of one process when the user gives none: ``OMP_NUM_THREADS`` when set,
    else the free cores shared among `workers` processes on this machine and those torchrun
    launched here (``LOCAL_WORLD_SIZE``); at least 1."""
    given = os.environ.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    sharing = max(1, workers) * max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    return max(1, free_cores() // sharing)


def use_threads(count: int | None = None, workers: int = 1) -> int:
    """Set this process's threads (`count`, or `default_threads(workers)`): PyTorch's intra-op
    pool, its inter-op pool (one thread: nothing here submits inter-op work), OpenCV's, and the
    ``-threads`` of the ffmpeg encoders started from now on. Returns the figure."""
    global _chosen
    count = count or default_threads(workers)
    import cv2
    import torch

    torch.set_num_threads(count)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # settable once, before any inter-op work: already done in this process
        pass
    cv2.setNumThreads(count)
    _chosen = count
    return count


def ffmpeg_thread_options() -> list[str]:
    """``-threads N`` for an ffmpeg command, once `use_threads` has set N (else nothing:
    ffmpeg's own choice)."""
    return ["-threads", str(_chosen)] if _chosen is not None else []


def _cpu_times() -> tuple[int, int] | None:
    """(all, idle) jiffies of the machine's CPUs since boot, None off Linux."""
    try:
        fields = [int(value) for value in _PROC_STAT.read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]), idle
