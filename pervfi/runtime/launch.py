"""This process's place in a multi-process launch (torchrun, or any launcher that sets
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Launch:
    rank: int
    world: int
    local_rank: int


def launched() -> Launch | None:
    """The launch this process belongs to, None when it runs alone (no or a 1-process launch)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or "RANK" not in os.environ:
        return None
    return Launch(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def command_started(fallback: float) -> float:
    """When the command the user typed began, as a `time.time()`: under a launcher (torchrun)
    the launcher's start (its ranks' parent process), else this process's; `fallback` where the
    system does not say (no /proc)."""
    pid = os.getppid() if launched() else os.getpid()
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return fallback
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
