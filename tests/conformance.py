"""Access to the reference vectors in ../shared/conformance, and their tolerances."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CONFORMANCE = SHARED / "conformance"
DATA = SHARED / "data"


def vector_params(pattern: str) -> list[Any]:
    """pytest parameters, one per vector file matching `pattern`; a skip when absent."""
    paths = sorted(CONFORMANCE.glob(pattern))
    if not paths:
        reason = f"no conformance vectors {pattern} in {CONFORMANCE}"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="absent")]
    return [pytest.param(p, id=p.stem) for p in paths]


def load_vector(path: Path) -> dict[str, Any]:
    return torch.load(path, weights_only=True)


def manifest() -> dict[str, dict[str, list]]:
    import json

    path = CONFORMANCE / "manifest.json"
    if not path.exists():
        pytest.skip(f"no manifest in {CONFORMANCE}")
    return json.loads(path.read_text())


def fill_state(state: dict, salt: str, gain: float) -> dict:
    """The shared `fill_state.py`, imported from the conformance folder (a skip when absent)."""
    if not (CONFORMANCE / "fill_state.py").is_file():
        pytest.skip(f"no fill_state.py in {CONFORMANCE}")
    spec = importlib.util.spec_from_file_location("fill_state", CONFORMANCE / "fill_state.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fill_state(state, salt, gain)


def fill(model: torch.nn.Module, salt: str, gain: float) -> torch.nn.Module:
    """Load the reference weight fill into `model` strictly, and put it in eval mode."""
    model.load_state_dict(fill_state(model.state_dict(), salt, gain), strict=True)
    return model.eval()


def assert_conforms(out: torch.Tensor, ref: torch.Tensor, max_abs: float = 1e-3, what: str = "output") -> None:
    """The README's tolerance: relative error ≤ 1e-4 and a bound on the largest difference."""
    assert out.shape == ref.shape, f"{what}: shape {tuple(out.shape)} != {tuple(ref.shape)}"
    out, ref = out.detach().float().cpu(), ref.float()
    spread = (ref - ref.mean()).norm().item()
    # A constant reference (e.g. a soft mask that is zero everywhere) has no relative
    # scale; then the bound on the largest difference alone decides.
    relative = (out - ref).norm().item() / spread if spread > 0 else 0.0
    largest = (out - ref).abs().max().item()
    assert relative <= 1e-4 and largest <= max_abs, (
        f"{what}: relative error {relative:.3g} (limit 1e-4), max |diff| {largest:.3g} (limit {max_abs})"
    )


def reference_noise(latents: list[torch.Tensor], height: int, width: int, seed: int) -> list[torch.Tensor]:
    """The reference's best-noise draw (`encode_decode`, `get_z`): heat = sqrt(var) of all the
    latents of the true frame; then N(0, heat²) noise of the three latent shapes, in order."""
    heat = torch.sqrt(torch.var(torch.cat([z.flatten() for z in latents])))
    g = torch.Generator().manual_seed(seed)
    batch = latents[0].shape[0]
    shapes = [(6, height // 2, width // 2), (12, height // 4, width // 4), (48, height // 8, width // 8)]
    return [torch.randn(batch, *shape, generator=g) * heat for shape in shapes]
