"""ActNorm's data-dependent initialisation is the same on every rank (issue 15: the
reference initialises each GPU from its own share of the batch, so replicas diverge).

Two gloo processes on the CPU, each fed half of a batch, must initialise every ActNorm of
a normalizing-flow level as one process fed the whole batch does.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pervfi.models.generators.normalizing_flow import ActNorm, Block

BATCH, CHANNELS, SIZE, COND_CHANNELS, STEPS = 4, 3, 16, 5, 3


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    # Channels of different means and spreads, so each ActNorm's statistics matter.
    x = torch.randn(BATCH, CHANNELS, SIZE, SIZE, generator=g) * torch.tensor([0.5, 2.0, 1.0]).view(1, 3, 1, 1) + 0.3
    cond = torch.randn(BATCH, COND_CHANNELS, SIZE // 2, SIZE // 2, generator=g)
    return x, cond


def _initialised_actnorms(x: torch.Tensor, cond: torch.Tensor) -> dict[str, torch.Tensor]:
    """One training forward of a fresh flow level (same weights everywhere); its ActNorms' state."""
    torch.manual_seed(0)
    block = Block(STEPS, CHANNELS, COND_CHANNELS, split=True).train()
    for module in block.modules():  # non-zero couplings, so later ActNorms see data-dependent input
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.1)
    assert not any(m.initialized for m in block.modules() if isinstance(m, ActNorm))
    block(x, cond)
    return {k: v.clone() for k, v in block.state_dict().items() if k.endswith((".loc", ".logs", ".initialized"))}


def _worker(rank: int, world: int, store: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        x, cond = _inputs()
        share = BATCH // world
        state = _initialised_actnorms(x[rank * share:(rank + 1) * share], cond[rank * share:(rank + 1) * share])
        torch.save(state, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_actnorm_initialisation_is_global_across_two_gloo_processes(tmp_path):
    torch.set_num_threads(1)
    mp.spawn(_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    single = _initialised_actnorms(*_inputs())
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert len(single) == 3 * (STEPS + 1)
    for key, expected in single.items():
        assert torch.equal(ranks[0][key], ranks[1][key]), f"{key}: the ranks disagree"
        assert torch.allclose(ranks[0][key], expected, rtol=1e-5, atol=1e-5), f"{key}: differs from one process"
    assert all(value.item() == 1 for key, value in single.items() if key.endswith(".initialized"))


def test_actnorm_initialises_once_in_training_and_again_after_loading_an_uninitialised_state():
    actnorm = ActNorm(3)
    x = torch.randn(2, 3, 8, 8) * 3 + 1
    actnorm.eval()(x)
    assert not actnorm.initialized  # inference never initialises
    actnorm.train()(x)
    loc = actnorm.loc.detach().clone()
    actnorm(x * 2)
    assert actnorm.initialized and torch.equal(actnorm.loc, loc)  # only the first batch counts
    fresh = {k: torch.zeros_like(v) if k == "initialized" else v for k, v in actnorm.state_dict().items()}
    actnorm.load_state_dict(fresh)
    actnorm(x * 2)
    assert torch.allclose(actnorm.loc, loc * 2)
