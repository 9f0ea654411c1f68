"""Which devices and which share of the work: ``--devices``, ``--shard I/N`` and torchrun's
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pervfi.core.errors import PerVFIError

from ..device import resolve_device
from ..launch import launched


def parse_devices(text: str) -> list[torch.device]:
    """``cuda:0,cuda:1``, ``all`` (every CUDA device) or ``cpu,cpu`` (one worker each)."""
    if text.strip().lower() == "all":
        count = torch.cuda.device_count()
        if count == 0:
            raise PerVFIError("--devices all: no CUDA device here; name the devices instead, e.g. cpu,cpu")
        return [torch.device("cuda", index) for index in range(count)]
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise PerVFIError(f"--devices {text!r}: name at least one device, e.g. cuda:0,cuda:1 or cpu,cpu")
    devices = [resolve_device(name) for name in names]
    devices = [torch.device("cuda", 0) if d.type == "cuda" and d.index is None else d for d in devices]
    repeated = {str(d) for d in devices if d.type != "cpu" and devices.count(d) > 1}
    if repeated:
        raise PerVFIError(f"--devices {text!r} names {', '.join(sorted(repeated))} twice; "
                          "only the CPU takes several workers")
    return devices


@dataclass(frozen=True)
class Share:
    """This process's share of the segments: every `count`-th one from `index`."""

    index: int
    count: int

    def picks(self, number: int) -> bool:
        return number % self.count == self.index


def parse_shard(text: str) -> Share:
    """``I/N`` with 0 <= I < N."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise PerVFIError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise PerVFIError(f"--shard {text!r}: I must lie in 0..N-1 and N be at least 1")
    return Share(index, count)


def torchrun_share() -> Share | None:
    """The rank's share under torchrun (or any launcher setting RANK and WORLD_SIZE), None
    when this is a single process."""
    launch = launched()
    return None if launch is None else Share(launch.rank, launch.world)


def rank_device(requested: str) -> torch.device:
    """The device of this torchrun rank: its local GPU when ``auto`` finds CUDA, else `requested`."""
    if requested.strip().lower() == "auto" and torch.cuda.is_available():
        launch = launched()
        return torch.device("cuda", (launch.local_rank if launch else 0) % torch.cuda.device_count())
    return resolve_device(requested)
