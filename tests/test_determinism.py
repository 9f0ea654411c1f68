"""Identical output on CUDA too (issue 23): no operation on the inference path adds with
atomics on CUDA, the multi-device runner's processes run with deterministic algorithms, and
a frame's splat does not depend on the frames batched with it.

No GPU is needed: the models run on fake CUDA tensors (shapes and devices only, no data),
which takes their CUDA branches (torchvision's deform_conv2d, the splat's CUDA
accumulation), while a dispatch mode records every ATen operation they call."""
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.nn.utils import stateless
from torch.utils._python_dispatch import TorchDispatchMode

from pervfi.models.flow import build_flow_estimator
from pervfi.models.generators import build_generator
from pervfi.ops import forward_splat
from pervfi.runtime import determinism
from pervfi.runtime.parallel import pool

# ATen operations whose CUDA kernels add with atomics, in any order (PyTorch's
# `use_deterministic_algorithms` documentation), as the dispatcher names them.
ATOMIC_ON_CUDA = {"index_add", "index_add_", "scatter_add", "scatter_add_", "scatter_reduce", "scatter_reduce_",
                  "index_reduce", "index_reduce_", "put", "put_", "bincount", "histc", "embedding_bag"}


class Recorder(TorchDispatchMode):
    """Records (operation, accumulate) for every ATen call on a CUDA tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, bool]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if any(isinstance(a, torch.Tensor) and a.is_cuda for a in args):
            accumulate = bool(kwargs.get("accumulate", len(args) > 3 and args[3] is True))
            self.calls.append((func.overloadpacket.__name__, accumulate))
        return func(*args, **kwargs)


def _calls_on_fake_cuda(model: torch.nn.Module, run) -> list[tuple[str, bool]]:
    """The ATen calls of `run(model, img0, img1, flow)` with the model and inputs on fake CUDA."""
    model = model.eval()
    # cuDNN's grid sampler has no fake kernel; the native one is what it dispatches to otherwise.
    with FakeTensorMode() as mode, torch.backends.cudnn.flags(enabled=False):
        state = {name: mode.from_tensor(t).to("cuda") for name, t in (*model.named_parameters(), *model.named_buffers())}
        img0, img1 = torch.rand(1, 3, 64, 96, device="cuda"), torch.rand(1, 3, 64, 96, device="cuda")
        flow = torch.randn(1, 2, 64, 96, device="cuda")
        recorder = Recorder()
        with recorder, torch.inference_mode(), stateless._reparametrize_module(model, state):
            out = run(model, img0, img1, flow)
    assert out.is_cuda
    return recorder.calls


@pytest.mark.filterwarnings("ignore:Accessing the data pointer of FakeTensor")  # InvConv2d's eager cache key
@pytest.mark.parametrize("name", ["vb", "v00", "splat"])
def test_generators_accumulate_without_atomics_on_cuda(name):
    calls = _calls_on_fake_cuda(build_generator(name), lambda m, a, b, f: m.interpolate(a, b, f, -f, time=0.5))
    atomic = sorted({op for op, _ in calls if op in ATOMIC_ON_CUDA})
    assert not atomic, f"{name} adds with atomics on CUDA: {atomic}"
    assert ("index_put_", True) in calls  # the splat's sorted, deterministic accumulation


@pytest.mark.parametrize("name", ["raft_small", "raft", "gma", "gmflow"])
def test_flow_estimators_accumulate_without_atomics_on_cuda(name):
    calls = _calls_on_fake_cuda(build_flow_estimator(name), lambda m, a, b, f: m.estimate_bidirectional(a, b)[0])
    assert not {op for op, _ in calls if op in ATOMIC_ON_CUDA}


def test_a_frames_splat_does_not_depend_on_its_batch_partners_or_their_order():
    g = torch.Generator().manual_seed(0)
    values = torch.rand(4, 5, 24, 32, generator=g)
    flow = torch.randn(4, 2, 24, 32, generator=g) * 6  # many pixels land on the same neighbours
    metric = torch.randn(4, 1, 24, 32, generator=g)
    batch = forward_splat(values, flow, metric, "soft").output
    order = torch.tensor([2, 0, 3, 1])
    permuted = forward_splat(values[order], flow[order], metric[order], "soft").output
    alone = [forward_splat(values[k:k + 1], flow[k:k + 1], metric[k:k + 1], "soft").output for k in range(4)]
    assert torch.equal(permuted, batch[order])
    assert torch.equal(torch.cat(alone), batch)
    assert torch.equal(forward_splat(values, flow, metric, "soft").output, batch)


def test_deterministic_mode_is_switched_on_inside_only_and_keeps_cpu_bits():
    generator = build_generator("vb").eval()
    g = torch.Generator().manual_seed(1)
    img0, img1 = torch.rand(1, 3, 32, 48, generator=g), torch.rand(1, 3, 32, 48, generator=g)
    flow = torch.randn(1, 2, 32, 48, generator=g) * 3
    with torch.inference_mode():
        plain = generator.interpolate(img0, img1, flow, -flow)
        with determinism.deterministic():
            assert torch.are_deterministic_algorithms_enabled()
            inside = generator.interpolate(img0, img1, flow, -flow)
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.equal(inside, plain)


def test_the_runners_workers_interpolate_in_deterministic_mode(monkeypatch):
    seen = []
    monkeypatch.setattr(pool.signal, "signal", lambda *args: None)  # the worker's handlers stay out of pytest
    monkeypatch.setattr(pool, "_serve", lambda *args: seen.append(torch.are_deterministic_algorithms_enabled()))
    pool._worker("cpu", None, {}, "dis+splat", None, None)
    assert seen == [True] and not torch.are_deterministic_algorithms_enabled()
