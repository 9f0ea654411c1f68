"""PerVFI: perception-oriented video frame interpolation via asymmetric blending (CVPR 2024).

The public API, for users of the library. The package's own modules never import it: they
import the layer that defines what they need (see the README's "Layout"). Names are imported
on first use, so ``import pervfi`` stays cheap (no PyTorch until a model is asked for).

Interpolating
    Interpolator                 flow estimator + generator, any frame size:
                                 Interpolator.from_method("raft+pervfi").interpolate(img0, img1, time)
    parse_method("raft+pervfi")  -> Method(flow, generator)
    resolve_device("auto")       CUDA, then MPS, then the CPU
    PRECISIONS                   "fp32" | "bf16" | "fp16": Interpolator(precision=...)
Models and weights
    build_flow_estimator(name)   "raft" | "raft_small" | "gma" | "gmflow" | "dis" | "farneback"
                                 | "package.module:callable" (no weights)
    FlowEstimator                the base class of a custom flow estimator
    build_generator(name)        "v00" | "vb" | "splat" (no weights)
    load_model(name, kind)       a registered model with its official weights
    fetch_checkpoints(names), checkpoint_names()
Frames, videos and whole sequences
    list_frames, read_frame, to_tensor, to_uint8, encode_gif
    discover_sequences(path) -> [Sequence]; SequenceRun(interpolator, sequence, save, method, Settings()).run() -> Report
Errors
    PerVFIError and its kinds: UnknownNameError, CheckpointError, InputError, OutputError
"""
from __future__ import annotations

import importlib
from typing import Any

from .core.errors import CheckpointError, InputError, OutputError, PerVFIError, UnknownNameError

# Public name -> (module, attribute), imported when first asked for (most of them import PyTorch).
_LAZY = {
    "Interpolator": ("runtime.interpolator", "Interpolator"),
    "parse_method": ("models.method_names", "parse_method"),
    "resolve_device": ("runtime.device", "resolve_device"),
    "PRECISIONS": ("ops.precision", "PRECISIONS"),
    "build_flow_estimator": ("models.flow", "build_flow_estimator"),
    "FlowEstimator": ("models.flow", "FlowEstimator"),
    "build_generator": ("models.generators", "build_generator"),
    "load_model": ("models.checkpoints", "load_model"),
    "fetch_checkpoints": ("models.checkpoints", "fetch_checkpoints"),
    "checkpoint_names": ("models.checkpoints", "checkpoint_names"),
    "list_frames": ("media.frame_files", "list_frames"),
    "read_frame": ("media.frame_files", "read_frame"),
    "to_tensor": ("media.tensors", "to_tensor"),
    "to_uint8": ("media.tensors", "to_uint8"),
    "encode_gif": ("media.gif", "encode_gif"),
    "discover_sequences": ("media.sources", "discover"),
    "Sequence": ("media.sources", "Sequence"),
    "Settings": ("runtime.sequence", "Settings"),
    "SequenceRun": ("runtime.sequence", "SequenceRun"),
    "Report": ("runtime.sequence", "Report"),
}

__all__ = ["CheckpointError", "InputError", "OutputError", "PerVFIError", "UnknownNameError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'pervfi' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(f".{module}", __name__), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
