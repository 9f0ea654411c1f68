"""PerVFI: perception-oriented video frame interpolation via asymmetric blending (CVPR 2024).

The public API. The command-line tools, the evaluation, training, the demo and the
multi-device runner use only these names (and `pervfi.registry`). They are imported on
first use, so ``import pervfi`` is cheap (no PyTorch until a model is asked for).

Models
    Interpolator                 flow estimator + generator, any frame size
    build_generator(name)        "v00" | "vb" | "splat" -> generator module (no weights)
    build_flow_estimator(name)   "raft" | "raft_small" | "gma" | "gmflow" | "dis" | "farneback"
                                 | "package.module:callable" -> flow estimator (no weights)
    load_model(name, kind)       a registered model with its official weights
    parse_method("raft+pervfi")  -> Method(flow, generator); generator_names()
    resolve_device("auto")       CUDA, then MPS, then the CPU
    PRECISIONS                   "fp32" | "bf16" | "fp16": Interpolator(precision=...)
Checkpoints
    require_checkpoints, fetch_checkpoints, checkpoint_names, checkpoint_path,
    DEFAULT_CHECKPOINT_DIR, read_state_dict, load_state (strict, with one-line errors)
Metrics (of the evaluation, for validation while training)
    MetricSuite, ScoredFrame, offline_requested
Frames, videos and the streaming pipeline
    list_frames, natural_key, read_frame, read_image, to_tensor, to_uint8, Padder
    discover_sequences, Sequence, Settings, Encoding, SequenceRun, Span, Report,
    output_frame_count, output_video_rate, encode_gif, OutputPaths, check_frame_folder,
    span_outputs, keeps_audio, mux_audio, classify_frames, pair_is_cut
Many devices and machines
    run_parallel                 segments of the sequences on several devices, ranks or shards
    SCENE_CUT_MODES, CONTAINERS, DEFAULT_CUT_THRESHOLD, DEFAULT_DUPLICATE_THRESHOLD,
    check_cut_threshold, check_duplicate_threshold, ffmpeg_executable
Errors
    PerVFIError and its kinds: UnknownNameError, CheckpointError, InputError, OutputError
"""
from __future__ import annotations

import importlib
from typing import Any

from .errors import CheckpointError, InputError, OutputError, PerVFIError, UnknownNameError

# Public name -> (module, attribute), imported when first asked for.
_LAZY = {
    "Interpolator": ("interpolator", "Interpolator"),
    "build_generator": ("generators", "build_generator"),
    "build_flow_estimator": ("flow", "build_flow_estimator"),
    "FlowEstimator": ("flow", "FlowEstimator"),
    "load_model": ("checkpoints", "load_model"),
    "Method": ("method_names", "Method"),
    "parse_method": ("method_names", "parse_method"),
    "generator_names": ("method_names", "generator_names"),
    "resolve_device": ("device", "resolve_device"),
    "PRECISIONS": ("ops.precision", "PRECISIONS"),
    "require_checkpoints": ("checkpoints", "require_checkpoints"),
    "fetch_checkpoints": ("checkpoints", "fetch_checkpoints"),
    "checkpoint_names": ("checkpoints", "checkpoint_names"),
    "checkpoint_path": ("checkpoints", "checkpoint_path"),
    "DEFAULT_CHECKPOINT_DIR": ("checkpoints", "DEFAULT_CHECKPOINT_DIR"),
    "list_frames": ("io.frame_files", "list_frames"),
    "natural_key": ("io.frame_files", "natural_key"),
    "read_frame": ("io.frame_files", "read_frame"),
    "read_image": ("io.frame_files", "read_image"),
    "to_tensor": ("io.tensors", "to_tensor"),
    "to_uint8": ("io.tensors", "to_uint8"),
    "Padder": ("ops", "Padder"),
    "discover_sequences": ("io.sources", "discover"),
    "Sequence": ("io.sources", "Sequence"),
    "Settings": ("io.pipeline", "Settings"),
    "SequenceRun": ("io.pipeline", "SequenceRun"),
    "Span": ("io.pipeline", "Span"),
    "span_outputs": ("io.pipeline", "span_outputs"),
    "keeps_audio": ("io.pipeline", "keeps_audio"),
    "mux_audio": ("io.audio", "mux_audio"),
    "classify_frames": ("io.pipeline", "classify_frames"),
    "pair_is_cut": ("io.pipeline", "pair_is_cut"),
    "run_parallel": ("parallel", "run_parallel"),
    "Report": ("io.pipeline", "Report"),
    "output_frame_count": ("io.pipeline", "output_frame_count"),
    "output_video_rate": ("io.pipeline", "video_rate"),
    "encode_gif": ("io.gif", "encode_gif"),
    "SCENE_CUT_MODES": ("io.scenes", "SCENE_CUT_MODES"),
    "Encoding": ("io.writers", "Encoding"),
    "OutputPaths": ("io.writers", "OutputPaths"),
    "check_frame_folder": ("io.writers", "check_frame_folder"),
    "CONTAINERS": ("io.ffmpeg", "MUXERS"),
    "ffmpeg_executable": ("io.ffmpeg", "executable"),
    "DEFAULT_CUT_THRESHOLD": ("io.scenes", "DEFAULT_CUT_THRESHOLD"),
    "DEFAULT_DUPLICATE_THRESHOLD": ("io.scenes", "DEFAULT_DUPLICATE_THRESHOLD"),
    "check_cut_threshold": ("io.scenes", "check_cut_threshold"),
    "check_duplicate_threshold": ("io.scenes", "check_duplicate_threshold"),
    "read_state_dict": ("checkpoints", "read_state_dict"),
    "load_state": ("checkpoints", "load_state"),
    "MetricSuite": ("evaluate.scoring", "MetricSuite"),
    "ScoredFrame": ("evaluate.perceptual", "ScoredFrame"),
    "offline_requested": ("evaluate.perceptual", "offline_requested"),
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
