"""Forward splatting against the reference kernel's vectors, and the other shared ops."""
import pytest
import torch

from pervfi.ops import Padder, backward_warp, forward_splat, softsplat
from tests.conformance import assert_conforms, load_vector, vector_params


@pytest.mark.parametrize("path", vector_params("softsplat_modes.pt"))
@pytest.mark.parametrize("mode", ["sum", "avg", "linear", "soft"])
def test_softsplat_matches_reference(path, mode):
    vec = load_vector(path)
    inputs = vec["inputs"]
    metric = None if mode in ("sum", "avg") else inputs["tenMetric"]
    out = softsplat(inputs["tenIn"], inputs["tenFlow"], metric, mode)
    assert_conforms(out, vec["outputs"][mode], what=mode)


def test_integer_shift_moves_pixels_and_leaves_holes():
    image = torch.rand(2, 3, 10, 12)
    flow = torch.zeros(2, 2, 10, 12)
    flow[:, 0] = 3.0  # three pixels to the right
    out, weight, _ = forward_splat(image, flow, mode="avg")
    assert torch.allclose(out[..., 3:], image[..., :-3], atol=1e-6)
    assert torch.all(weight[..., :3] == 0)
    assert torch.all(out[..., :3] == 0)


def test_fractional_shift_splits_mass_bilinearly():
    image = torch.zeros(1, 1, 5, 5)
    image[0, 0, 2, 2] = 1.0
    flow = torch.zeros(1, 2, 5, 5)
    flow[0, 0, 2, 2], flow[0, 1, 2, 2] = 0.25, 0.5
    out = softsplat(image, flow, mode="sum")[0, 0]
    expected = {(2, 2): 0.75 * 0.5, (2, 3): 0.25 * 0.5, (3, 2): 0.75 * 0.5, (3, 3): 0.25 * 0.5}
    for (y, x), value in expected.items():
        assert out[y, x].item() == pytest.approx(value)
    assert out.sum().item() == pytest.approx(1.0)


def test_non_finite_flow_is_dropped_and_batches_stay_apart():
    image = torch.ones(2, 1, 4, 4)
    flow = torch.zeros(2, 2, 4, 4)
    flow[0, 0, 0, 0] = float("nan")
    flow[1, 1, 1, 1] = float("inf")
    out = softsplat(image, flow, mode="sum")
    assert torch.isfinite(out).all()
    assert out[0].sum().item() == pytest.approx(15.0)
    assert out[1].sum().item() == pytest.approx(15.0)


def test_splat_is_float32_under_half_inputs():
    image = torch.rand(1, 2, 6, 6, dtype=torch.bfloat16)
    flow = torch.zeros(1, 2, 6, 6, dtype=torch.bfloat16)
    assert softsplat(image, flow, mode="sum").dtype == torch.float32


def test_bad_mode_and_shapes_are_rejected():
    with pytest.raises(ValueError, match="mode"):
        softsplat(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 4, 4), mode="max")
    with pytest.raises(ValueError, match="metric"):
        softsplat(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 4, 4), mode="soft")
    with pytest.raises(ValueError, match="expected flow"):
        softsplat(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 4, 5))


def test_backward_warp_integer_shift():
    image = torch.rand(1, 3, 8, 9)
    flow = torch.zeros(1, 2, 8, 9)
    flow[:, 1] = 2.0  # sample two rows below
    out = backward_warp(image, flow)
    assert torch.allclose(out[:, :, :-2], image[:, :, 2:], atol=1e-6)
    assert torch.all(out[:, :, -2:] == 0)


@pytest.mark.parametrize("mode", ["corner", "center"])
@pytest.mark.parametrize("size", [(130, 190), (128, 192), (7, 9)])
def test_padder_round_trip(mode, size):
    x = torch.rand(1, 3, *size)
    padder = Padder(*size, multiple=8, mode=mode)
    (padded,) = padder.apply(x)
    assert padded.shape[-2] % 8 == 0 and padded.shape[-1] % 8 == 0
    assert padded.shape[-2:] == padder.padded_size
    assert torch.equal(padder.crop(padded)[0], x)
    if mode == "corner":
        assert torch.equal(padded[..., : size[0], : size[1]], x)


def test_padder_minimum_size():
    padder = Padder(64, 96, multiple=8, mode="center", minimum=128)
    assert padder.padded_size == (128, 128)


def test_coverage_is_the_splatted_ones_plane():
    torch.manual_seed(0)
    values = torch.rand(2, 4, 9, 11)
    flow = torch.randn(2, 2, 9, 11) * 3
    metric = torch.randn(2, 1, 9, 11)
    expected = softsplat(torch.ones(2, 1, 9, 11), flow, mode="sum")
    for mode, m in [("sum", None), ("avg", None), ("soft", metric), ("linear", metric)]:
        result = forward_splat(values, flow, m, mode, coverage=True)
        assert torch.allclose(result.coverage, expected, atol=1e-6), mode
        assert torch.allclose(result.output, softsplat(values, flow, m, mode), atol=1e-6), mode


def test_fallback_deformable_convolution_matches_torchvision():
    import torchvision

    from pervfi.ops.deform import _deform_conv2d_by_sampling

    torch.manual_seed(0)
    for channels, groups in [(35, 7), (64, 8)]:
        x = torch.randn(2, channels, 11, 13)
        offset = torch.randn(2, 2 * groups * 9, 11, 13) * 3
        mask = torch.rand(2, groups * 9, 11, 13)
        weight = torch.randn(channels, channels, 3, 3) * 0.1
        bias = torch.randn(channels)
        ref = torchvision.ops.deform_conv2d(x, offset, weight, bias, padding=1, mask=mask)
        out = _deform_conv2d_by_sampling(x, offset, weight, bias, 1, mask, top=0)
        assert (out - ref).abs().max().item() < 1e-4
