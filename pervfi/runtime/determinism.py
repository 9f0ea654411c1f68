"""Same bits on every run: what the multi-device runner switches on while its processes
interpolate, so that output split over devices equals one device's (issue 23).

Eager splatting is deterministic without it (`pervfi.ops.splat.add_rows`). This adds the
rest: cuDNN's deterministic convolution engines; inductor's deterministic mode (compiled code
adds without atomics and does not pick kernels by timing them); a fixed cuBLAS workspace.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

# cuBLAS is deterministic only with a fixed workspace (CUDA's reproducibility notes); it is
# read when cuBLAS first starts in the process, so the variable stays set.
CUBLAS_WORKSPACE = ":4096:8"


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Deterministic algorithms wherever PyTorch has them, inside the block; enter it before
    the process's first CUDA operation. An operation without a deterministic kernel warns
    instead of failing (none on the inference path: tests/test_determinism.py)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.utils.deterministic.fill_uninitialized_memory)
    torch.use_deterministic_algorithms(True, warn_only=True)
    # Filling every new tensor with NaN only helps find reads of unwritten memory; it costs time.
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.utils.deterministic.fill_uninitialized_memory = before[2]
