"""Statistics of a batch that may be split across processes (`torch.distributed`).

With a process group initialised, every rank gets the statistics of the whole global
batch, so data-dependent initialisations agree across replicas; without one, the
statistics of the local batch.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def _sum_over_ranks(tensor: Tensor) -> Tensor:
    """`tensor` summed over every process of the default group (itself when there is none)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor


def channel_mean_std(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and unbiased standard deviation of a B×C×H×W tensor over the batch
    and pixels of all processes (two passes: the global mean first, then the spread), in
    float32 whatever `x`'s precision (half-precision sums overflow)."""
    flat = x.detach().float().transpose(0, 1).reshape(x.shape[1], -1)
    count = _sum_over_ranks(torch.tensor(flat.shape[1], device=x.device, dtype=torch.int64))
    mean = _sum_over_ranks(flat.sum(1)) / count
    squares = _sum_over_ranks(((flat - mean[:, None]) ** 2).sum(1))
    return mean, (squares / (count - 1)).sqrt()


def global_std(x: Tensor) -> Tensor:
    """The unbiased standard deviation of all the elements of `x` on every process (of `x` alone
    without a process group), differentiable: the gradient that reaches each process's elements
    includes what every process's loss owes to them, so N processes with a share of the batch
    compute what one process computes with the whole batch (two passes: mean, then spread)."""
    if not (dist.is_available() and dist.is_initialized()):
        return x.std()
    from torch.distributed.nn.functional import all_reduce  # autograd-aware: its backward sums the gradients

    flat = x.flatten().float()  # half-precision sums overflow
    count = _sum_over_ranks(torch.tensor(flat.numel(), device=x.device, dtype=torch.float32))
    mean = all_reduce(flat.sum()) / count
    return (all_reduce(((flat - mean) ** 2).sum()) / (count - 1)).sqrt().to(x.dtype)
