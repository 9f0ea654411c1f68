"""Fixed weights for contract tests that need *some* trained-looking model but no reference
numbers (batch independence, small frames, tiling, CLI runs): each tensor is drawn from a
generator seeded by (salt, key), so the values depend only on the key's name and shape and the
tests run anywhere, without ../shared. Conformance tests use the shared fill instead."""
from __future__ import annotations

import math
import zlib

import torch
from torch import Tensor, nn

# Vectors of normalizing-flow layers (ActNorm location/log-scale, affine-coupling scales) stay
# near zero so that the flow starts close to the identity.
_NEAR_ZERO = ("loc", "logs", "scale", "scale_shift")


def _generator(salt: str, key: str) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(f"{salt}/{key}".encode()))


def _uniform(shape: tuple[int, ...], low: float, high: float, rng: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(shape, generator=rng)


def seeded_tensor(key: str, like: Tensor, salt: str, gain: float) -> Tensor:
    """The value for `key`: fan-in-scaled uniform weights, orthogonal invertible 1×1
    convolutions, small biases, plausible batch-norm statistics; integer buffers are counters
    (zero) or ActNorm's `initialized` flag (one)."""
    name, shape, rng = key.rsplit(".", 1)[-1], tuple(like.shape), _generator(salt, key)
    if not like.is_floating_point():
        return torch.ones_like(like) if name == "initialized" else torch.zeros_like(like)
    if name == "running_var":
        value = _uniform(shape, 0.5, 1.5, rng)
    elif name == "running_mean" or name in _NEAR_ZERO:
        value = _uniform(shape, -0.1, 0.1, rng)
    elif "invconv" in key and len(shape) == 4 and shape[0] == shape[1]:
        value = torch.linalg.qr(torch.randn(shape[:2], generator=rng))[0][:, :, None, None]
    elif len(shape) >= 2:
        bound = gain * math.sqrt(6.0 / math.prod(shape[1:]))
        value = _uniform(shape, -bound, bound, rng) * (0.1 if "conv_offset" in key else 1.0)
    elif name == "weight":  # norm scales and PReLU slopes
        value = _uniform(shape, 0.2, 0.6, rng)
    else:
        value = _uniform(shape, -0.05, 0.05, rng)
    return value.to(like.dtype)


def seeded_state(state: dict[str, Tensor], salt: str = "pervfi-tests", gain: float = 0.7) -> dict[str, Tensor]:
    """`state` with every tensor replaced by its seeded value."""
    return {key: seeded_tensor(key, tensor, salt, gain) for key, tensor in state.items()}


def seeded(model: nn.Module, gain: float = 0.7, salt: str = "pervfi-tests") -> nn.Module:
    """`model` loaded strictly with the seeded weights, in eval mode."""
    model.load_state_dict(seeded_state(model.state_dict(), salt, gain), strict=True)
    return model.eval()
