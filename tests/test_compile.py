"""`--compile` compiles: the Interpolator's compiled parts (flow estimator, the generator's
per-pair and per-time steps) are traced whole, once per frame size, with no graph break and
no recompilation for a short last batch (issue 23). Traced with a counting backend, so the
test sees exactly what dynamo captures without waiting for inductor's code generation."""
import functools

import pytest
import torch
from torch._dynamo.testing import CompileCounter
from torch._dynamo.utils import counters

from pervfi.models.flow import build_flow_estimator
from pervfi.models.flow.base import FlowEstimator
from pervfi.models.generators import build_generator
from pervfi.runtime.interpolator import Interpolator
from tests.seeded_weights import seeded

PARTS = 3  # flow estimator, encode_pair, interpolate_at


class ShiftFlow(FlowEstimator):
    """A traceable stand-in for a learned flow estimator: RAFT would only make tracing slower."""

    def estimate(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        return (img1 - img0)[:, :2] * 4.0


@pytest.fixture
def compile_counter(monkeypatch):
    """torch.compile with a backend that counts the graphs dynamo hands over, runs them eagerly."""
    torch._dynamo.reset()
    counters.clear()
    counter = CompileCounter()
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend=counter))
    yield counter
    torch._dynamo.reset()


def _pairs(height: int, width: int, count: int) -> list:
    g = torch.Generator().manual_seed(height)
    frames = [torch.rand(1, 3, height, width, generator=g) for _ in range(count + 1)]
    return [(a, b, [0.5]) for a, b in zip(frames, frames[1:])]


@pytest.mark.slow
@pytest.mark.parametrize("generator", ["vb", pytest.param("v00", marks=pytest.mark.heavy)])
def test_compiled_parts_are_whole_graphs_once_per_frame_size(generator, compile_counter):
    interpolator = Interpolator(ShiftFlow(), seeded(build_generator(generator)), device="cpu", compile=True, batch=2)
    eager = Interpolator(ShiftFlow(), seeded(build_generator(generator)), device="cpu", batch=2)
    pairs = _pairs(32, 48, 3)  # batches of 2 and 1: the short last one must not recompile
    rngs = [torch.Generator().manual_seed(k) for k in range(3)]
    frames = interpolator.interpolate_pairs(pairs, rng=rngs)
    interpolator.interpolate_pairs(pairs, rng=rngs)
    assert compile_counter.frame_count == PARTS
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert counters["stats"]["unique_graphs"] == PARTS
    expected = eager.interpolate_pairs(pairs, rng=[torch.Generator().manual_seed(k) for k in range(3)])
    for got, want in zip(frames, expected):
        torch.testing.assert_close(got[0], want[0], atol=1e-3, rtol=0)  # the conformance bound
    interpolator.interpolate_pairs(_pairs(40, 56, 1))  # another frame size: each part once more
    assert compile_counter.frame_count == 2 * PARTS
    assert not counters["graph_break"], dict(counters["graph_break"])


def test_opencv_flows_are_not_compiled(compile_counter):
    interpolator = Interpolator(build_flow_estimator("dis"), build_generator("splat"), device="cpu", compile=True)
    interpolator.interpolate(torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 48))
    assert compile_counter.frame_count == 0
