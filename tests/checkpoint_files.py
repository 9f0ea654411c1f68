"""Checkpoint files for tests: each model's parameter layout (its own state dict, which the
conformance tests check equals the official manifest) with seeded weights, wrapped the way the
official files are (plain, DataParallel's ``module.`` prefix, GMFlow's ``{"model": ...}``).
Written to temporary folders only; never committed. Needs nothing from ../shared."""
from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from pervfi.models import registry
from tests.seeded_weights import seeded_state

# How each official file stores its state dict (the others are plain state dicts).
SAVED_FROM_DATA_PARALLEL = {"raft", "raft_small", "gma"}
WRAPPED_UNDER = {"gmflow": "model"}


@functools.lru_cache(maxsize=None)
def layout(name: str) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Key -> (shape, dtype) of registered model `name`'s state dict."""
    model = registry.get_entry(name).build()
    return {key: (tuple(t.shape), t.dtype) for key, t in model.state_dict().items()}


# The generators' seeded weights at 0.7 drive v00's normalizing flow past float32's range (NaN
# frames, black once written) and saturate vb; at 0.5 both make plausible frames.
GAINS = {"v00": 0.5, "vb": 0.5}


def model_state(name: str, limit: int | None = None) -> dict[str, Tensor]:
    """The state dict of model `name` (its first `limit` keys, if given) with seeded weights."""
    zeros = {key: torch.zeros(shape, dtype=dtype) for key, (shape, dtype) in list(layout(name).items())[:limit]}
    return tie_shared_norms(seeded_state(zeros, salt=f"ckpt-test-{name}", gain=GAINS.get(name, 0.7)))


def tie_shared_norms(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """RAFT's strided residual blocks register one norm module twice (``norm3`` and
    ``downsample.1``), so the official files hold equal values under both keys."""
    tied = dict(state)
    for key in state:
        if ".downsample.1." in key:
            twin = key.replace(".downsample.1.", ".norm3.")
            if twin in state:
                tied[key] = state[twin]
    return tied


def official_layout(name: str, state: dict[str, Tensor]) -> Any:
    """`state` as the official file of `name` holds it."""
    if name in SAVED_FROM_DATA_PARALLEL:
        return with_module_prefix(state)
    if name in WRAPPED_UNDER:
        return {WRAPPED_UNDER[name]: state, "step": 100000, "epoch": 10}
    return state


def with_module_prefix(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {f"module.{key}": tensor for key, tensor in state.items()}


def serialized(content: Any, legacy: bool = False) -> bytes:
    """`content` as `torch.save` writes it (`legacy`: the pre-1.6 non-zip format)."""
    buffer = io.BytesIO()
    torch.save(content, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
