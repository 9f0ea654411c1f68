"""Tiled generation and reduced-resolution flow (the large-frame modes of Interpolator)."""
import pytest
import torch

from pervfi.models.flow import build_flow_estimator
from pervfi.models.generators import build_generator
from pervfi.ops import backward_warp
from pervfi.runtime.interpolator import Interpolator
from pervfi.runtime.tiling import (
    ALIGN,
    HALO_MARGIN,
    blend_weights,
    default_overlap,
    plan_tiles,
    tiled_interpolate,
    window_halos,
    with_halo,
)
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
    tiled, = tiled_interpolate(model, img0, img1, flow, -flow, [0.5], tile, overlap, zs=[zs])
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
    tiled, = tiled_interpolate(model, img0, img1, flow, -flow, [0.5], 128, 32, zs=[zs])
    difference = (tiled - whole).abs()
    assert difference.mean().item() <= 1e-5 and difference.max().item() <= 1e-3


def test_v00_tiles_draw_the_whole_frames_noise():
    model = seeded(build_generator("v00"), 0.5)
    img0, img1, flow = _moving_texture(128, 256)
    draws = [tiled_interpolate(model, img0, img1, flow, -flow, [0.5], 128, 32, rng=torch.Generator().manual_seed(3))[0]
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


def _fast_stripe(height, width, columns, shift):
    """A textured frame whose stripe of `columns` moves `shift` px right; the rest is still."""
    img0, _, _ = _moving_texture(height, width, shift=(0.0, 0.0))
    flow01, flow10 = torch.zeros(1, 2, height, width), torch.zeros(1, 2, height, width)
    flow01[:, 0, :, columns[0]:columns[1]] = shift
    flow10[:, 0, :, columns[0] + shift:columns[1] + shift] = -shift
    img1 = img0.clone()
    img1[..., columns[0] + shift:columns[1] + shift] = img0[..., columns[0]:columns[1]]
    return img0, img1, flow01, flow10


def test_tiles_equal_the_whole_frame_when_motion_comes_from_outside_a_window():
    # At t = 0.5 the stripe lands in the second window ([56, 152)), which holds neither
    # where it starts nor where it ends: a halo from the motion inside each window alone
    # misses it (mean difference 3.2e-3 when the halo was so computed).
    height, width = 64, 384
    model = seeded(build_generator("vb"), 0.65)
    img0, img1, flow01, flow10 = _fast_stripe(height, width, (8, 24), 192)
    assert any(region.left == 56 for region in plan_tiles(height, width, 96, 32))
    whole = model.interpolate(img0, img1, flow01, flow10, 0.5)
    tiled, = tiled_interpolate(model, img0, img1, flow01, flow10, [0.5], 96, 32)
    difference = (tiled - whole).abs()
    assert difference.mean().item() <= 1e-5 and difference.max().item() <= 1e-3


def test_each_window_reaches_every_pixel_whose_motion_can_reach_it():
    # Independent truth: every pixel whose motion (either way, any time) ends within the
    # networks' reach of a tile lies inside that tile's window.
    height, width, tile = 256, 512, 128
    g = torch.Generator().manual_seed(5)
    flow01 = torch.randn(1, 2, height, width, generator=g)
    flow10 = torch.randn(1, 2, height, width, generator=g)
    for _ in range(6):  # a few fast pixels, anywhere, any direction
        y, x = (torch.randint(0, size, (1,), generator=g).item() for size in (height, width))
        flow01[0, :, y, x] = (torch.rand(2, generator=g) - 0.5) * 400
    regions = plan_tiles(height, width, tile, 32)
    halos = window_halos(flow01, flow10, regions)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    for region, halo in zip(regions, halos):
        window = with_halo(region, halo)
        for flow in (flow01, flow10):
            end_x, end_y = xs + flow[0, 0], ys + flow[0, 1]
            reaches = ((end_x >= region.left - HALO_MARGIN) & (end_x < region.left + region.width + HALO_MARGIN)
                       & (end_y >= region.top - HALO_MARGIN) & (end_y < region.top + region.height + HALO_MARGIN))
            inside = ((xs >= window.left) & (xs < window.left + window.width)
                      & (ys >= window.top) & (ys < window.top + window.height))
            assert not (reaches & ~inside).any()


def test_one_fast_object_enlarges_only_the_windows_it_reaches():
    height, width, tile = 1080, 1920, 256
    flow01 = torch.full((1, 2, height, width), 2.0)
    flow01[..., 64:192, 64:192] = 200.0  # one fast object in a corner
    regions = plan_tiles(height, width, tile, default_overlap(tile))
    halos = window_halos(flow01, -flow01, regions)
    assert max(halos) >= 200 + HALO_MARGIN
    far = [halo for region, halo in zip(regions, halos) if region.top > 600 and region.left > 800]
    assert far and set(far) == {HALO_MARGIN + ALIGN}  # 2 px of motion + the margin, rounded up
    area = sum(with_halo(region, halo).height * with_halo(region, halo).width for region, halo in zip(regions, halos))
    global_area = sum(with_halo(region, max(halos)).height * with_halo(region, max(halos)).width for region in regions)
    assert area < 0.6 * global_area


def test_each_window_is_encoded_once_for_every_time(monkeypatch):
    # Before: once for the attention pass and once for the frame, per window and per time
    # (with the frames' encoding redone per time: 9 encodes for these 3 windows, not 3).
    model = seeded(build_generator("vb"), 0.65)
    img0, img1, flow = _moving_texture(64, 192)
    calls = []
    encode = model.encode_pair
    monkeypatch.setattr(model, "encode_pair", lambda *inputs: calls.append(1) or encode(*inputs))
    frames = tiled_interpolate(model, img0, img1, flow, -flow, [0.25, 0.75], 96, 32)
    assert len(frames) == 2 and len(calls) == len(plan_tiles(64, 192, 96, 32)) > 1
