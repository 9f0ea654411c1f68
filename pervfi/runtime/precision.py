"""The precision policy: which autocast precision a model runs in when the user says ``auto``
(or nothing), and which choices a device can take. Inference and training both ask here.

``auto`` is bf16 where the device does bf16 arithmetic natively, fp32 elsewhere: never
emulated bf16, which is slower than fp32 (a T4 or V100; a CPU without AVX-512 BF16 or AMX,
where a bf16 convolution ran 8× slower than fp32, see the README's speed section).
"""
from __future__ import annotations

from pathlib import Path

import torch

from pervfi.core.errors import InputError
from pervfi.ops.precision import PRECISIONS

# Compute capability from which NVIDIA GPUs have bf16 tensor cores (Ampere).
CUDA_NATIVE_BF16 = (8, 0)
# CPU features with bf16 / fp16 arithmetic (x86: AVX-512 BF16 / FP16, AMX).
CPU_NATIVE_BF16 = ("avx512_bf16", "amx_bf16")
CPU_NATIVE_FP16 = ("avx512_fp16", "amx_fp16")


def native_bf16(device: torch.device) -> bool:
    """Whether `device` itself (not the current device) does bf16 arithmetic natively."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= CUDA_NATIVE_BF16
    if device.type == "cpu":
        features = cpu_features()
        return any(feature in features for feature in CPU_NATIVE_BF16)
    return False


def emulated(name: str, device: torch.device) -> bool:
    """Whether precision `name` would be emulated on `device` (slower than fp32 there)."""
    if name == "bf16":
        return not native_bf16(device)
    if name == "fp16" and device.type == "cpu":
        return not any(feature in cpu_features() for feature in CPU_NATIVE_FP16)
    return False


def cpu_features() -> set[str]:
    """The CPU's instruction-set features (torch's cpuinfo; Linux's flags on older torch)."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is not None:
        return {name for name, value in capabilities().items() if value is True}
    flags = Path("/proc/cpuinfo")
    if not flags.is_file():
        return set()
    for line in flags.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def default_precision(device: torch.device) -> str:
    """bf16 where `device` has it natively, else fp32 (inference and training alike)."""
    return "bf16" if native_bf16(device) else "fp32"


def resolve_precision(name: str | None, device: torch.device, training: bool = False) -> str:
    """A precision name for `device`: ``auto``/None picks `default_precision`; an unknown
    name, or fp16 training off CUDA (no loss scaling there), is an InputError."""
    if name in (None, "auto"):
        return default_precision(device)
    if name not in PRECISIONS:
        raise InputError(f"unknown precision {name!r}; choose auto or one of {', '.join(PRECISIONS)}")
    if training and name == "fp16" and device.type != "cuda":
        raise InputError(f"train.precision fp16 needs a CUDA device, not {device.type}; use bf16 or fp32")
    return name
