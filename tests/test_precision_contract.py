"""The float32 contract (pervfi.ops.precision.FLOAT32_CONTRACT) held under fp16 and bf16 autocast:
every model records the contract's tensors as float32, and the parts whose sums grow with the
frame stay finite at 4K statistics under fp16."""
from pathlib import Path

import pytest
import torch

from pervfi.models.flow import build_flow_estimator
from pervfi.models.flow.gma import build_gma
from pervfi.models.flow.raft import CORR_LEVELS, build_raft
from pervfi.models.flow.raft_parts import CorrelationPyramid
from pervfi.models.generators import build_generator
from pervfi.models.generators.soft_binary_masks import SoftBinary
from pervfi.ops import FLOAT32_CONTRACT, autocast
from pervfi.ops.precision import recording_float32
from tests.seeded_weights import seeded

pytestmark = pytest.mark.usefixtures("without_autograd")
LOW = {"fp16": torch.float16, "bf16": torch.bfloat16}
RAFT_ENTRIES = {"correlation volume", "correlation lookup", "flow coordinates"}
PERVFI_ENTRIES = {"softmax splatting", "soft-mask sums", "soft-mask means", "flow coordinates"}
FLOW_STATE = {"normalizing-flow state", "invertible 1×1 convolutions"}


def _low_precision_model(model: torch.nn.Module) -> torch.nn.Module:
    # Channels-last, as the Interpolator stores models for bf16/fp16 on the CPU (contiguous
    # low-precision convolutions are emulated slowly on CPUs without them).
    return seeded(model, 0.5).to(memory_format=torch.channels_last)


def _frames(height: int, width: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    img0 = torch.rand(1, 3, height, width, generator=g)
    flow = torch.randn(1, 2, height, width, generator=g) * 2
    return [img0, img0.roll(2, -1), flow, -flow]


def _flow(model: torch.nn.Module) -> None:
    img0, img1, _, _ = _frames(64, 96)
    model.estimate_bidirectional(img0, img1)


def _generator(time_method: str):
    def run(model: torch.nn.Module) -> None:
        img0, img1, flow01, flow10 = _frames(32, 48)
        if time_method == "encode":
            model.encode(img0, img1, flow01, flow10, gt=(img0 + img1) / 2)
        else:
            model.interpolate(img0, img1, flow01, flow10, 0.5)
    return run


CASES = {
    "raft": (lambda: build_raft(iters=2), _flow, RAFT_ENTRIES),
    "raft_small": (lambda: build_raft(small=True, iters=2), _flow, RAFT_ENTRIES),
    "gma": (lambda: build_gma(iters=2), _flow, RAFT_ENTRIES),
    "gmflow": (lambda: build_flow_estimator("gmflow"), _flow, {"GMFlow"}),
    "v00": (lambda: build_generator("v00"), _generator("interpolate"), PERVFI_ENTRIES | FLOW_STATE),
    "v00 encode": (lambda: build_generator("v00"), _generator("encode"),
                   PERVFI_ENTRIES | FLOW_STATE | {"log-determinants"}),
    "vb": (lambda: build_generator("vb"), _generator("interpolate"), PERVFI_ENTRIES),
    "splat": (lambda: build_generator("splat"), _generator("interpolate"), {"softmax splatting"}),
}


# Emulated fp16/bf16 on a CPU without them is slow: the fast suite runs one flow of each kind and
# the generator path that passes every generator entry, in fp16.
FAST = {("raft_small", "fp16"), ("gmflow", "fp16"), ("v00 encode", "fp16"), ("splat", "fp16"), ("splat", "bf16")}


@pytest.mark.parametrize("case, precision", [
    pytest.param(case, precision, marks=() if (case, precision) in FAST else (pytest.mark.slow, pytest.mark.heavy))
    for case in sorted(CASES) for precision in sorted(LOW)])
def test_the_contract_tensors_stay_float32_under_autocast(case, precision):
    build, run, expected = CASES[case]
    model = build()
    model = _low_precision_model(model) if list(model.parameters()) else model
    with recording_float32() as records, autocast("cpu", LOW[precision]):
        run(model)
    assert set(records) <= set(FLOAT32_CONTRACT)
    missing = expected - set(records)
    assert not missing, f"{case} never passed {sorted(missing)} through held_float32"
    wrong = {name: dtypes for name, dtypes in records.items() if dtypes != {torch.float32}}
    assert not wrong, f"{case} under {precision}: not float32: {wrong}"


def test_the_soft_masks_channel_attention_is_finite_at_4k_under_fp16():
    # Post-activation features of a 2160×3840 level (few channels: the sums are per channel):
    # their whole-frame sums (~4e6) pass fp16's 65504.
    height, width = 2160, 3840
    soft_binary = seeded(SoftBinary(4), 0.5)
    g = torch.Generator().manual_seed(0)
    features = [torch.rand(1, 4, height, width, generator=g).half() for _ in range(2)]
    expected = soft_binary.attention(soft_binary.attention_sums(*(f.float() for f in features)), (height, width))
    with autocast("cpu", torch.float16):
        got = soft_binary.attention(soft_binary.attention_sums(*features), (height, width))
    assert torch.isfinite(got).all()
    assert torch.allclose(got.float(), expected, atol=2e-3)


def test_the_correlation_at_one_eighth_of_4k_is_float32_and_finite_under_fp16():
    # RAFT's 256-channel features on the 270×480 grid of a 4K frame; the volume of a 6×8 patch
    # of source pixels (the whole one would take 67 GB), looked up far across the frame.
    height, width, channels = 270, 480, 256
    g = torch.Generator().manual_seed(1)
    target = torch.randn(1, channels, height, width, generator=g) * 4
    source = target[:, :, 100:106, 400:408] + 0.1 * torch.randn(1, channels, 6, 8, generator=g)
    xs, ys = torch.meshgrid(torch.arange(400.0, 408.0), torch.arange(100.0, 106.0), indexing="xy")
    coords = torch.stack([xs + 0.37, ys - 0.21]).unsqueeze(0)

    def volume_and_lookup() -> tuple[torch.Tensor, torch.Tensor]:
        pyramid = CorrelationPyramid.forward_only(source, target, CORR_LEVELS, radius=4)
        return pyramid.pyramids[0][0], pyramid.lookup(coords)

    expected_volume, expected = volume_and_lookup()
    with autocast("cpu", torch.float16):
        volume, got = volume_and_lookup()
    assert volume.dtype == got.dtype == torch.float32
    assert torch.isfinite(got).all()
    assert torch.allclose(volume, expected_volume, rtol=1e-5, atol=1e-4)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_the_readme_lists_every_entry_of_the_contract():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert [name for name in FLOAT32_CONTRACT if f"| {name} |" not in readme] == []
