"""The precision policy: which autocast precision a model runs in when the user says ``auto``
(or nothing), and which choices a device can take. Inference and training both ask here."""
from __future__ import annotations

import torch

from pervfi.core.errors import InputError
from pervfi.ops.precision import precision_dtype


def default_precision(device: torch.device) -> str:
    """Inference: fp32 on the CPU and MPS; on CUDA bf16 where the GPU has it (within 35 dB of
    fp32, see benchmarks/gpu_check.py), else fp32."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def resolve_precision(name: str | None, device: torch.device, training: bool = False) -> str:
    """A precision name for `device`: ``auto``/None picks the default (training: the recipe's fp16
    autocast on CUDA); an unknown name is a ValueError, fp16 training off CUDA an InputError."""
    if name in (None, "auto"):
        if training:
            return "fp16" if device.type == "cuda" else "fp32"
        return default_precision(device)
    precision_dtype(name)  # a ValueError naming the choices for an unknown name
    if training and name == "fp16" and device.type != "cuda":
        raise InputError(f"train.precision fp16 needs a CUDA device, not {device.type}; use bf16 or fp32")
    return name
