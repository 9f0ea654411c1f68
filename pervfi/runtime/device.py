"""Choosing the compute device: ``auto`` takes CUDA, then Apple MPS, then the CPU."""
from __future__ import annotations

import torch

from pervfi.core.errors import PerVFIError

# What ``auto`` picks: the first of these that is available (asked at each call), else the CPU.
AUTO_ORDER = (("cuda", lambda: torch.cuda.is_available()), ("mps", lambda: torch.backends.mps.is_available()))


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` into an available device."""
    if isinstance(spec, torch.device):
        return spec
    spec = spec.strip().lower()
    if spec == "auto":
        for kind, available in AUTO_ORDER:
            if available():
                return torch.device(kind)
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise PerVFIError(f"unknown device {spec!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise PerVFIError(f"device {spec!r} requested but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise PerVFIError(
                f"device {spec!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise PerVFIError("device 'mps' requested but Apple MPS is not available here")
    elif device.type != "cpu":
        raise PerVFIError(f"unsupported device {spec!r}; use auto, cpu, cuda, cuda:N or mps")
    return device
