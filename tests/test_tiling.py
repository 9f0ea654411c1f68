"""Tiled generation and reduced-resolution flow (the large-frame modes of Interpolator)."""
import pytest
import torch

from pervfi.models.flow import build_flow_estimator
from pervfi.models.generators import build_generator
from pervfi.ops import backward_warp
from pervfi.runtime.interpolator import Interpolator
from pervfi.runtime.tiling import blend_weights, plan_tiles, tiled_interpolate
from tests.seeded_weights import seeded

pytestmark = pytest.mark.usefixtures("without_autograd")


@pytest.mark.parametrize("height, width, tile, overlap", [(192, 384, 192, 48), (256, 448, 128, 32), (64, 64, 128, 32)])
def test_tiles_cover_the_frame_and_weights_are_smooth(height, width, tile, overlap):
    regions = plan_tiles(height, width, tile, overlap)
    total = torch.zeros(height, width)
    for region, weight in zip(regions, blend_weights(regions)):
        assert region.top % 8 == 0 and region.left % 8 == 0
        assert region.top + region.height <= height and region.left + region.width <= width
        total[region.top:region.top + region.height, region.left:region.left + region.width] += weight
    assert torch.all(total > 0.5)  # every pixel covered with real weight
    # raised-cosine ramps of neighbours sum to one: no seam in the blend itself
    assert torch.allclose(total, torch.ones_like(total), atol=1e-5)


def test_bad_tiles_are_rejected():
    with pytest.raises(ValueError, match="multiples of 8"):
        plan_tiles(128, 128, 100, 32)
    with pytest.raises(ValueError, match="overlap < tile"):
        plan_tiles(128, 128, 64, 64)


def _moving_texture(height, width, shift=(4.0, -2.0)):
    g = torch.Generator().manual_seed(0)
    img0 = torch.nn.functional.interpolate(torch.rand(1, 3, height // 8, width // 8, generator=g),
                                           size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)
    flow = torch.zeros(1, 2, height, width)
    flow[:, 0], flow[:, 1] = shift
    return img0, backward_warp(img0, -flow), flow


@pytest.mark.parametrize("name, gain", [("v00", 0.5), ("vb", 0.65)])
def test_tiled_generation_equals_untiled_without_seams(name, gain):
    height, width, tile, overlap = 192, 384, 192, 48
    model = seeded(build_generator(name), gain)
    img0, img1, flow = _moving_texture(height, width)
    zs = model.sample_noise(1, height, width, rng=torch.Generator().manual_seed(1)) if name == "v00" else None
    whole = model.interpolate(img0, img1, flow, -flow, 0.5, zs=zs)
    tiled = tiled_interpolate(model, img0, img1, flow, -flow, 0.5, tile, overlap, zs=zs)
    difference = (tiled - whole).abs()
    assert difference.mean().item() <= 1e-3
    # No seam: along the windows' edges the difference is no larger than elsewhere.
    band = torch.zeros(height, width, dtype=torch.bool)
    for region in plan_tiles(height, width, tile, overlap):
        for edge in (region.left, region.left + region.width):
            if 0 < edge < width:
                band[:, max(0, edge - 4):edge + 4] = True
    per_pixel = difference.amax(1)[0]
    assert per_pixel[band].max() <= per_pixel[~band].max()


@pytest.mark.parametrize("name, gain", [("v00", 0.5), ("vb", 0.65)])
def test_tiles_equal_the_whole_frame_under_large_motion(name, gain):
    # 48 px of motion against 128 px tiles: without a halo sized by the motion and the
    # whole frame's channel attention the tiles differed by 1.4e-2 on average (0.48 at worst).
    height, width = 192, 384
    model = seeded(build_generator(name), gain)
    img0, img1, flow = _moving_texture(height, width, shift=(48.0, -8.0))
    zs = model.sample_noise(1, height, width, rng=torch.Generator().manual_seed(1)) if name == "v00" else None
    whole = model.interpolate(img0, img1, flow, -flow, 0.5, zs=zs)
    tiled = tiled_interpolate(model, img0, img1, flow, -flow, 0.5, 128, 32, zs=zs)
    difference = (tiled - whole).abs()
    assert difference.mean().item() <= 1e-5 and difference.max().item() <= 1e-3


def test_v00_tiles_draw_the_whole_frames_noise():
    model = seeded(build_generator("v00"), 0.5)
    img0, img1, flow = _moving_texture(128, 256)
    draws = [tiled_interpolate(model, img0, img1, flow, -flow, 0.5, 128, 32, rng=torch.Generator().manual_seed(3))
             for _ in range(2)]
    assert torch.equal(*draws)


def test_reduced_resolution_flow_is_scaled_back():
    img0, img1, _ = _moving_texture(160, 224, shift=(6.0, -4.0))
    generator = build_generator("v00")
    interpolator = Interpolator(build_flow_estimator("dis"), generator, device="cpu", flow_scale=0.5)
    _, _, _, flow01, flow10 = interpolator.padded_flows(img0, img1)
    assert flow01.shape == (1, 2, 160, 224)
    interior = (..., slice(32, -32), slice(32, -32))
    assert (flow01[interior][:, 0] - 6.0).abs().median() < 0.5
    assert (flow01[interior][:, 1] + 4.0).abs().median() < 0.5
    assert (flow10[interior][:, 0] + 6.0).abs().median() < 0.5


def test_interpolator_options_are_checked():
    with pytest.raises(ValueError, match="flow_scale"):
        Interpolator(build_flow_estimator("dis"), build_generator("vb"), device="cpu", flow_scale=0.0)


def test_interpolator_tiles_when_asked():
    img0, img1, _ = _moving_texture(120, 250)
    flow = build_flow_estimator("dis")
    model = seeded(build_generator("vb"), 0.65)
    whole = Interpolator(flow, model, device="cpu").interpolate(img0, img1)
    tiled = Interpolator(flow, model, device="cpu", tile=128).interpolate(img0, img1)
    assert tiled.shape == whole.shape == (1, 3, 120, 250)
    assert (tiled - whole).abs().mean() < 5e-3
