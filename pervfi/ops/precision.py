"""Numeric precision: the names users choose, and autocast contexts that work on every backend.

`torch.autocast` raises on device types it does not know (Apple MPS before torch 2.5), also
when asked to be disabled; these helpers return a null context there instead, so model code
can enter them unconditionally.
"""
from __future__ import annotations

import contextlib

import torch

# The precisions a user can choose, and the autocast dtype of each (None: plain float32).
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


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


def precision_dtype(name: str) -> torch.dtype | None:
    """The autocast dtype of a precision name (``fp32`` → None); ValueError naming the choices."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    return PRECISIONS[name]
