"""PerVFI generators v00 and vb against the reference vectors, plus their contracts."""
import pytest
import torch

from pervfi.models.generators import build_generator
from pervfi.ops import bands
from tests.conformance import assert_conforms, fill, load_vector, manifest, reference_noise, vector_params
from tests.seeded_weights import seeded

pytestmark = pytest.mark.usefixtures("without_autograd")


def _filled(vec):
    return fill(build_generator(vec["model"]), vec["salt"], vec["gain"])


@pytest.mark.parametrize("banded", [False, True], ids=["whole", "banded"])
@pytest.mark.parametrize("path", vector_params("v00_*.pt") + vector_params("vb_*.pt"))
def test_prediction_and_soft_masks_match_reference(path, banded, monkeypatch):
    if banded:  # the large-frame path: every full-resolution step a band of 8 rows at a time
        monkeypatch.setattr(bands, "BAND_BYTES", 1)
    vec = load_vector(path)
    inputs = vec["inputs"]
    pred, masks = _filled(vec).interpolate(
        inputs["img0"], inputs["img1"], inputs["flow01"], inputs["flow10"], inputs["time"],
        zs=inputs.get("zs"), return_soft_masks=True,
    )
    assert_conforms(pred, vec["output"], what="prediction")
    assert len(masks) == 3
    for level, (mask, ref) in enumerate(zip(masks, vec["soft_masks"])):
        assert_conforms(mask, ref, what=f"soft mask {level}")


@pytest.mark.parametrize("path", vector_params("v00enc_*.pt"))
def test_encode_matches_reference(path):
    vec = load_vector(path)
    inputs = vec["inputs"]
    zs, nll = _filled(vec).encode(
        inputs["img0"], inputs["img1"], inputs["flow01"], inputs["flow10"], inputs["gt"], inputs["time"]
    )
    for level, (z, ref) in enumerate(zip(zs, vec["zs"])):
        assert_conforms(z, ref, what=f"latent {level}")
    assert (nll - vec["nll"]).abs().max().item() <= 1e-3


@pytest.mark.parametrize("name", ["v00", "vb"])
def test_state_dict_layout_equals_manifest(name):
    expected = manifest()[name]
    state = build_generator(name).state_dict()
    assert list(state) == list(expected)
    for key, tensor in state.items():
        shape, dtype = expected[key]
        assert list(tensor.shape) == shape, key
        assert str(tensor.dtype).removeprefix("torch.") == dtype, key


def _random_inputs(batch=1, height=64, width=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    img0 = torch.rand(batch, 3, height, width, generator=g)
    img1 = torch.roll(img0, shifts=(1, 2), dims=(2, 3))
    flow01 = torch.zeros(batch, 2, height, width)
    flow01[:, 0], flow01[:, 1] = 2.0, 1.0
    return img0, img1, flow01, -flow01


def _filled_by_name(name, gain=0.5):
    return seeded(build_generator(name), gain)


def test_v00_round_trip_from_standardised_latents():
    model = _filled_by_name("v00")
    img0, img1, flow01, flow10 = _random_inputs()
    gt = (img0 + img1) / 2
    conds, _ = model.condition(img0, img1, flow01, flow10, 0.5)
    _, _, _, noise = model.condFLownet(gt * 2 - 1, conds)
    decoded = (model.condFLownet.reverse(noise, conds) + 1) / 2
    relative = ((decoded - gt).norm() / gt.norm()).item()
    assert relative <= 1e-4


def test_v00_noise_is_reproducible_with_a_seed_and_varies_without():
    model = _filled_by_name("v00")
    inputs = _random_inputs()
    a = model.interpolate(*inputs, rng=torch.Generator().manual_seed(7))
    b = model.interpolate(*inputs, rng=torch.Generator().manual_seed(7))
    c = model.interpolate(*inputs, rng=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_v00_heat_zero_is_the_prior_mean():
    model = _filled_by_name("v00")
    inputs = _random_inputs()
    zeros = [torch.zeros(1, *s) for s in [(6, 32, 48), (12, 16, 24), (48, 8, 12)]]
    model.heat = 0.0
    assert torch.allclose(model.interpolate(*inputs), model.interpolate(*inputs, zs=zeros))


@pytest.mark.parametrize("path", vector_params("v00enc_*.pt"))
def test_best_noise_draws_with_the_reference_latents_heat(path):
    vec = load_vector(path)
    inputs = vec["inputs"]
    model = _filled(vec)
    frames = [inputs[key] for key in ("img0", "img1", "flow01", "flow10")]
    pred = model.interpolate_best_noise(*frames, inputs["gt"], inputs["time"], rng=torch.Generator().manual_seed(3))
    height, width = inputs["gt"].shape[-2:]
    # The reference latents give the heat; decoding with given noise is checked by the vectors above.
    expected = model.interpolate(*frames, inputs["time"], zs=reference_noise(vec["zs"], height, width, seed=3))
    assert_conforms(pred, expected, what="best-noise prediction")


@pytest.mark.parametrize("name", ["v00", "vb"])
def test_batch_items_are_independent(name):
    model = _filled_by_name(name, gain=0.5)
    a = _random_inputs(seed=1)
    b = _random_inputs(seed=2)
    batched = [torch.cat([x, y]) for x, y in zip(a, b)]
    zs = model.sample_noise(2, 64, 96, rng=torch.Generator().manual_seed(0)) if name == "v00" else None
    both = model.interpolate(*batched, time=0.7, zs=zs)
    first = model.interpolate(*a, time=0.7, zs=[z[:1] for z in zs] if zs else None)
    assert torch.allclose(both[:1], first, atol=1e-5)


@pytest.mark.parametrize("name", ["v00", "vb"])
def test_bad_inputs_are_rejected_with_both_values(name):
    model = build_generator(name).eval()
    img0, img1, flow01, flow10 = _random_inputs()
    with pytest.raises(ValueError, match="divisible by 8, got 60×96"):
        model.interpolate(img0[..., :60, :], img1[..., :60, :], flow01[..., :60, :], flow10[..., :60, :])
    with pytest.raises(ValueError, match="flow10"):
        model.interpolate(img0, img1, flow01, flow10[:, :1])
    with pytest.raises(ValueError, match="time"):
        model.interpolate(img0, img1, flow01, flow10, time=1.0)


def test_v00_rejects_noise_of_the_wrong_shape():
    model = build_generator("v00").eval()
    with pytest.raises(ValueError, match="zs"):
        model.interpolate(*_random_inputs(), zs=[torch.zeros(1, 6, 8, 8)] * 3)


@pytest.mark.parametrize("kernel", [1, 3, 9])
def test_conv_spatial_mean_equals_mean_of_convolution(kernel):
    from pervfi.models.generators.soft_binary_masks import FrameWindow, conv_mean_from_sums, tap_sums

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(7, 5, kernel, padding="same")
    x = torch.randn(2, 7, 13, 17)
    assert torch.allclose(conv_mean_from_sums(conv, tap_sums(x, conv.kernel_size), 13 * 17),
                          conv(x).mean((2, 3)), atol=1e-6)
    # Overlapping windows that own a partition of the frame add up to the whole frame's sums.
    windows = [(0, 0, (0, 6), (0, 17)), (3, 0, (6, 13), (0, 9)), (3, 5, (6, 13), (9, 17))]
    parts = sum(tap_sums(x[..., top:, left:], conv.kernel_size, FrameWindow(top, left, 13, 17, rows, cols))
                for top, left, rows, cols in windows)
    assert torch.allclose(parts, tap_sums(x, conv.kernel_size), atol=1e-5)
