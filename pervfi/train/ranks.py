"""The processes of a run: one, or several started by ``torchrun`` (DDP over NCCL on CUDA, Gloo on the CPU).

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; each process then trains on its share of
every global batch on ``cuda:LOCAL_RANK`` (or the CPU), and DDP averages the gradients.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from pervfi.runtime.device import resolve_device
from pervfi.runtime.launch import launched


@dataclass(frozen=True)
class Processes:
    """This process's place in the run and its device."""

    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def start(device: str) -> Processes:
    """Join the process group when launched by torchrun; otherwise a run of one process on `device`."""
    launch = launched()
    if launch is None:
        return Processes(0, 1, resolve_device(device))
    rank, world, local_rank = launch.rank, launch.world, launch.local_rank
    chosen = resolve_device(device)
    if chosen.type == "cuda":
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    return Processes(rank, world, chosen)


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def gather(value: Any, processes: Processes) -> list[Any]:
    """`value` of every process, in rank order (on every process)."""
    if processes.world == 1:
        return [value]
    values: list[Any] = [None] * processes.world
    dist.all_gather_object(values, value)
    return values


def mean_over_processes(values: torch.Tensor, processes: Processes) -> torch.Tensor:
    """The mean of `values` over the processes."""
    if processes.world == 1:
        return values
    reduced = values.to(processes.device)
    dist.all_reduce(reduced)
    return reduced.cpu() / processes.world


def rng_state() -> dict[str, Any]:
    """This process's random states (torch, CUDA, NumPy, Python), as tensors and plain values."""
    algorithm, keys, position, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy": [algorithm, torch.from_numpy(keys.astype(np.int64)),
                                                        position, has_gauss, gauss],
             "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    algorithm, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((algorithm, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
