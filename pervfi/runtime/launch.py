"""This process's place in a multi-process launch (torchrun, or any launcher that sets
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``)."""
from __future__ import annotations

import os
from dataclasses import dataclass


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
