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
