"""Numeric precision: the names users choose, autocast contexts that work on every backend, and
the float32 contract.

`torch.autocast` raises on device types it does not know (Apple MPS before torch 2.5), also
when asked to be disabled; these helpers return a null context there instead, so model code
can enter them unconditionally.

The contract: under any precision, the tensors of `FLOAT32_CONTRACT` stay float32. Each is
enforced where it is made (a `float32_island` or an explicit cast, never a backend's autocast
op list) and passed through `held_float32`, which lets a test record the dtypes it sees.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TypeVar

import torch
from torch import Tensor

# The precisions a user can choose, and the autocast dtype of each (None: plain float32).
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

# What stays float32 whatever the precision, where, and why (the README's table).
FLOAT32_CONTRACT: dict[str, str] = {
    "correlation volume": "RAFT/GMA all-pairs dot products and their pooled levels "
                          "(raft_parts.correlation_volume): 256-term sums; bf16 keeps 3 digits",
    "correlation lookup": "the correlations sampled around the coordinates each iteration (raft.py)",
    "flow coordinates": "RAFT's coordinates and flow through the iterations and the upsampling; "
                        "deformable convolution's sampling positions (ops/deform.py): bf16 has "
                        "steps of 2 pixels from 256 on",
    "soft-mask sums": "whole-frame sums per channel and tap for the soft masks' channel "
                      "attention (soft_binary_masks.tap_sums): pass fp16's 65504 from ~512×512",
    "soft-mask means": "those sums divided by the pixel count BEFORE the product with the "
                       "convolution weights, the product in float32 (conv_mean_from_sums)",
    "normalizing-flow state": "v00's invertible chain between steps, forwards and backwards, "
                              "its noise and latents (normalizing_flow.py)",
    "log-determinants": "the flow's log-determinants and log-prior, summed over the frame",
    "invertible 1×1 convolutions": "InvConv2d forwards and backwards (its inverse is float32)",
    "softmax splatting": "the accumulation of splatted values and weights, and the "
                         "normalisation (ops/splat.forward_splat)",
    "GMFlow": "the whole estimator: its global matching is a softmax over all pixels",
}

T = TypeVar("T")
# name -> dtypes seen, while a test records (see `recording_float32`); None otherwise.
_records: dict[str, set[torch.dtype]] | None = None


def autocast(device_type: str, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to `dtype` on `device_type` (None: autocast off); a null context where the
    backend has no autocast."""
    try:
        if dtype is None:
            return torch.autocast(device_type=device_type, enabled=False)
        return torch.autocast(device_type=device_type, dtype=dtype)
    except RuntimeError:  # no autocast on this backend (MPS before torch 2.5)
        return contextlib.nullcontext()


def float32_island(device_type: str) -> contextlib.AbstractContextManager:
    """Autocast off: what runs inside stays float32 whatever precision the caller chose."""
    return autocast(device_type, None)


def held_float32(name: str, value: T) -> T:
    """`value` unchanged: a tensor (or tuple/list of tensors) that the contract entry `name`
    says is float32; while a test records, the dtypes are noted under `name`."""
    if _records is not None:
        if name not in FLOAT32_CONTRACT:
            raise KeyError(f"{name!r} is not in FLOAT32_CONTRACT")
        tensors = value if isinstance(value, (tuple, list)) else (value,)
        _records.setdefault(name, set()).update(t.dtype for t in tensors if isinstance(t, Tensor))
    return value


@contextlib.contextmanager
def recording_float32() -> Iterator[dict[str, set[torch.dtype]]]:
    """Record, per contract entry, the dtypes of the tensors `held_float32` sees inside."""
    global _records
    previous, _records = _records, {}
    try:
        yield _records
    finally:
        _records = previous


def precision_dtype(name: str) -> torch.dtype | None:
    """The autocast dtype of a precision name (``fp32`` → None); ValueError naming the choices."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    return PRECISIONS[name]
