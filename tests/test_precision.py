"""Fast paths held to the same numbers: bf16 against fp32 (conformance vectors and real
frames), batching against one frame at a time, the per-pair step run once per pair, and
torch.compile against eager."""
import pytest
import torch
import torch.nn.functional as F

from pervfi.core.errors import InputError
from pervfi.media.frame_files import read_frame
from pervfi.media.tensors import to_tensor
from pervfi.models.flow import build_flow_estimator
from pervfi.models.generators import build_generator
from pervfi.models.method_names import parse_method
from pervfi.ops import autocast
from pervfi.runtime.interpolator import Interpolator
from pervfi.runtime.precision import default_precision, resolve_precision
from tests.conformance import DATA, assert_conforms, fill, load_vector, vector_params
from tests.seeded_weights import seeded

pytestmark = pytest.mark.usefixtures("without_autograd")
SALT = "pervfi-conformance-v1"
MIN_BF16_PSNR = 35.0  # dB from fp32 (issue 16)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return (10 * torch.log10(1 / F.mse_loss(a.float(), b.float()))).item()


def _interpolator(method: str, gains: dict, **options) -> Interpolator:
    spec = parse_method(method)
    flow = fill(build_flow_estimator(spec.flow), SALT, gains[spec.flow])
    generator = fill(build_generator(spec.generator), SALT, gains[spec.generator])
    return Interpolator(flow, generator, device="cpu", **options)


@pytest.mark.parametrize("path", [p for p in vector_params("pipeline_raft+*.pt")])
def test_bf16_stays_within_35_db_of_fp32_on_the_pipeline_vectors(path):
    vec = load_vector(path)
    inputs = vec["inputs"]
    frames = {}
    for precision in ("fp32", "bf16"):
        interpolator = _interpolator(vec["method"], vec["gains"], precision=precision)
        frames[precision] = interpolator.interpolate(inputs["img0"], inputs["img1"], inputs["time"], zs=inputs["zs"])
    assert_conforms(frames["fp32"], vec["output"])
    assert psnr(frames["bf16"], frames["fp32"]) >= MIN_BF16_PSNR


@pytest.mark.slow
@pytest.mark.heavy  # minutes where bf16 is emulated (this project's CPU)
@pytest.mark.parametrize("path", vector_params("v00enc_*.pt"))
def test_v00_nll_under_bf16_is_within_1e_2_of_fp32(path):
    vec = load_vector(path)
    inputs = vec["inputs"]
    model = fill(build_generator("v00"), vec["salt"], vec["gain"])
    args = (inputs["img0"], inputs["img1"], inputs["flow01"], inputs["flow10"], inputs["gt"], inputs["time"])
    _, nll32 = model.encode(*args)
    with autocast("cpu", torch.bfloat16):
        _, nll16 = model.encode(*args)
    assert torch.allclose(nll32, vec["nll"], atol=1e-3)
    assert (nll16.float() - nll32).abs().max() <= 1e-2


def test_bf16_stays_within_35_db_of_fp32_on_real_frames():
    folder = DATA / "sintel-market-10"
    if not folder.is_dir():
        pytest.skip(f"no Sintel frames in {folder}")
    frames = [to_tensor(read_frame(folder / f"frame_{i:04d}.png"))
              for i in (16, 18)]
    img0, img1 = (F.interpolate(x, size=(112, 256), mode="area") for x in frames)
    gains = {"raft": 0.5, "v00": 0.5}
    zs = build_generator("v00").sample_noise(1, 112, 256, rng=torch.Generator().manual_seed(0))
    fp32 = _interpolator("raft+pervfi", gains, precision="fp32").interpolate(img0, img1, 0.5, zs=zs)
    bf16 = _interpolator("raft+pervfi", gains, precision="bf16").interpolate(img0, img1, 0.5, zs=zs)
    assert psnr(bf16, fp32) >= MIN_BF16_PSNR


@pytest.mark.parametrize("generator", ["pervfi", "pervfi-vb", "splat"])
def test_batched_pairs_and_times_equal_one_at_a_time(generator):
    gains = {"raft_small": 0.5, "pervfi": 0.5, "pervfi-vb": 0.65}
    method = f"raft_small+{generator}"
    g = torch.Generator().manual_seed(5)
    frames = [torch.rand(1, 3, 36, 52, generator=g) for _ in range(3)]
    pairs = [(frames[0], frames[1], [0.25, 0.5, 0.75]), (frames[1], frames[2], [0.5])]
    spec = parse_method(method)
    flow = build_flow_estimator(spec.flow)
    model = build_generator(spec.generator)
    if generator != "splat":  # any fixed weights: runs without ../shared
        seeded(flow, gains[spec.flow])
        seeded(model, gains[generator])
    one = Interpolator(flow, model.eval(), device="cpu")
    many = Interpolator(flow, model, device="cpu", batch=3)
    single = [one.interpolate_times(a, b, times, rng=torch.Generator().manual_seed(1)) for a, b, times in pairs[:1]]
    single.append(one.interpolate_times(*pairs[1][:2], pairs[1][2], rng=single_rng_after(one, pairs)))
    batched = many.interpolate_pairs(pairs, rng=torch.Generator().manual_seed(1))
    assert [len(x) for x in batched] == [3, 1]
    for expected, got in zip(sum(single, []), sum(batched, [])):
        assert torch.allclose(expected, got, atol=1e-5), (expected - got).abs().max()


def single_rng_after(interpolator: Interpolator, pairs: list) -> torch.Generator:
    """The seeded generator as it stands after the first pair's frames drew their noise."""
    rng = torch.Generator().manual_seed(1)
    if hasattr(interpolator.generator, "sample_noise"):
        for _ in pairs[0][2]:
            interpolator.generator.sample_noise(1, 40, 56, rng=rng)
    return rng


def test_the_frames_of_a_pair_are_encoded_once(monkeypatch):
    interpolator = Interpolator(seeded(build_flow_estimator("raft_small"), 0.5), seeded(build_generator("vb"), 0.65),
                                device="cpu", batch=2)  # any fixed weights: runs without ../shared
    calls = []
    encode = interpolator.generator.featurePyramid.encode
    monkeypatch.setattr(interpolator.generator.featurePyramid, "encode", lambda *a: calls.append(1) or encode(*a))
    img0, img1 = torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 48)
    frames = interpolator.interpolate_times(img0, img1, [0.25, 0.5, 0.75])
    assert len(frames) == 3 and len(calls) == 1


def _fake_cuda(monkeypatch, capabilities: dict[int, tuple[int, int]]) -> list:
    """CUDA devices with these compute capabilities (index -> capability); returns the devices asked about."""
    asked = []

    def capability(device=None):
        asked.append(device)
        return capabilities[torch.device(device).index]
    monkeypatch.setattr(torch.cuda, "get_device_capability", capability)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    return asked


def test_the_default_is_bf16_only_on_gpus_that_have_it_natively_asking_the_interpolators_own(monkeypatch):
    asked = _fake_cuda(monkeypatch, {0: (7, 0), 1: (8, 0), 2: (7, 5), 3: (9, 0)})  # V100, A100, T4, H100
    assert [default_precision(torch.device("cuda", i)) for i in range(4)] == ["fp32", "bf16", "fp32", "bf16"]
    assert [torch.device(device).index for device in asked] == [0, 1, 2, 3]  # never the current device (0)
    assert resolve_precision("auto", torch.device("cuda", 2), training=True) == "fp32"  # training: the same policy
    assert resolve_precision("bf16", torch.device("cuda", 2)) == "bf16"  # one flag away, emulated or not


@pytest.mark.parametrize("features, expected", [
    ({"avx2": True, "avx512_bf16": False, "amx_bf16": False}, "fp32"),  # this project's AMD EPYC: emulated
    ({"avx2": True, "avx512_f": True, "avx512_bf16": False}, "fp32"),  # AVX-512 without BF16: emulated too
    ({"avx512_f": True, "avx512_bf16": True}, "bf16"),                  # Cooper Lake, Zen 4
    ({"amx_tile": True, "amx_bf16": True}, "bf16"),                      # Sapphire Rapids
])
def test_the_default_on_the_cpu_is_bf16_only_with_avx512_bf16_or_amx(monkeypatch, features, expected):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: dict(features))
    interpolator = Interpolator(build_flow_estimator("dis"), build_generator("splat"), device="cpu")
    assert interpolator.precision == expected
    assert resolve_precision("auto", torch.device("cpu"), training=True) == expected
    assert default_precision(torch.device("mps")) == "fp32"


def test_an_emulated_precision_is_named_in_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True})
    flow, generator = build_flow_estimator("dis"), build_generator("splat")
    Interpolator(flow, generator, device="cpu", precision="bf16")
    assert "bf16 is emulated on cpu" in caplog.text
    caplog.clear()
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True})
    Interpolator(flow, generator, device="cpu", precision="bf16")
    Interpolator(flow, generator, device="cpu", precision="fp32")
    assert "emulated" not in caplog.text


def test_low_precision_on_the_cpu_stores_the_models_channels_last():
    flow, generator = seeded(build_flow_estimator("raft_small"), 0.5), seeded(build_generator("vb"), 0.65)
    weight = lambda interpolator: interpolator.generator.deformableAlign.offset_conv1["l0"].weight  # noqa: E731
    assert weight(Interpolator(flow, generator, device="cpu", precision="bf16")).is_contiguous(
        memory_format=torch.channels_last)
    assert weight(Interpolator(flow, generator, device="cpu", precision="fp32")).is_contiguous()
    assert weight(Interpolator(flow, generator, device="cpu", precision="bf16", channels_last=False)).is_contiguous()


def test_unknown_precision_names_are_rejected():
    with pytest.raises(InputError, match="fp32, bf16, fp16"):
        Interpolator(build_flow_estimator("dis"), build_generator("splat"), device="cpu", precision="fp8")


@pytest.mark.slow
@pytest.mark.heavy  # inductor's compilation: minutes on 2 cores (tests/test_compile.py checks the graphs)
@pytest.mark.parametrize("path", vector_params("vb_96x128_t03_b2.pt"))
def test_compiled_generator_equals_eager_at_the_conformance_tolerance(path):
    vec = load_vector(path)
    inputs = vec["inputs"]
    model = fill(build_generator("vb"), vec["salt"], vec["gain"])
    compiled = torch.compile(model.interpolate, dynamic=False)
    out = compiled(inputs["img0"], inputs["img1"], inputs["flow01"], inputs["flow10"], time=inputs["time"])
    assert_conforms(out, vec["output"])
