"""The weight-free `splat` generator on self-made scenes with known motion: a translated
texture and an object moving over a moving background, scored against the true frame."""
import math

import pytest
import torch
import torch.nn.functional as F

from pervfi.models.flow import build_flow_estimator
from pervfi.models.generators import build_generator
from pervfi.models.generators.splat import auto_downscale, fill_holes
from pervfi.ops import backward_warp
from pervfi.runtime.interpolator import Interpolator

pytestmark = pytest.mark.usefixtures("without_autograd")

HEIGHT, WIDTH, MARGIN = 96, 128, 16
BACKGROUND = (3.0, -2.0)  # motion 0→1 in pixels, x then y
OBJECT = (-6.0, 3.0)
BOX = (28, 36, 48, 56)  # top, left, height, width of the object in frame 0 (before motion)


def _texture(seed: int, cells: int) -> torch.Tensor:
    """A smooth random RGB texture larger than the frames (so shifted frames have real borders)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 3, (HEIGHT + 2 * MARGIN) // cells, (WIDTH + 2 * MARGIN) // cells, generator=g)
    return F.interpolate(noise, size=(HEIGHT + 2 * MARGIN, WIDTH + 2 * MARGIN), mode="bicubic",
                         align_corners=False).clamp(0, 1)


def _shifted(canvas: torch.Tensor, shift: tuple[float, float], time: float) -> torch.Tensor:
    """The frame window of `canvas` with its content moved by time·shift."""
    flow = torch.zeros(1, 2, *canvas.shape[-2:])
    flow[:, 0], flow[:, 1] = -shift[0] * time, -shift[1] * time
    return backward_warp(canvas, flow)[..., MARGIN:MARGIN + HEIGHT, MARGIN:MARGIN + WIDTH]


def _constant_flow(shift: tuple[float, float], batch: int = 1) -> torch.Tensor:
    return torch.tensor(shift).view(1, 2, 1, 1).expand(batch, 2, HEIGHT, WIDTH).clone()


def translated(time: float = 0.5) -> tuple[torch.Tensor, ...]:
    """(img0, img1, true frame at `time`, exact flow01, exact flow10) of a translated texture."""
    canvas = _texture(0, 4)
    frames = [_shifted(canvas, BACKGROUND, s) for s in (0.0, 1.0, time)]
    return (*frames, _constant_flow(BACKGROUND), _constant_flow((-BACKGROUND[0], -BACKGROUND[1])))


def _object_mask(time: float) -> torch.Tensor:
    top, left, height, width = BOX
    ys = torch.arange(HEIGHT, dtype=torch.float32).view(-1, 1) - OBJECT[1] * time
    xs = torch.arange(WIDTH, dtype=torch.float32).view(1, -1) - OBJECT[0] * time
    inside = (ys >= top) & (ys < top + height) & (xs >= left) & (xs < left + width)
    return inside.float().view(1, 1, HEIGHT, WIDTH)


def moving_object(time: float = 0.5) -> tuple[torch.Tensor, ...]:
    """A textured box moving over a differently moving textured background: frames at 0, 1
    and `time`, and the exact flows (the box's motion where the box is, else the background's)."""
    background, foreground = _texture(1, 8), _texture(2, 4)

    def frame(s: float) -> torch.Tensor:
        mask = _object_mask(s)
        return mask * _shifted(foreground, OBJECT, s) + (1 - mask) * _shifted(background, BACKGROUND, s)

    flow01 = torch.lerp(_constant_flow(BACKGROUND), _constant_flow(OBJECT), _object_mask(0.0))
    back_bg, back_obj = (-BACKGROUND[0], -BACKGROUND[1]), (-OBJECT[0], -OBJECT[1])
    flow10 = torch.lerp(_constant_flow(back_bg), _constant_flow(back_obj), _object_mask(1.0))
    return frame(0.0), frame(1.0), frame(time), flow01, flow10


def psnr(pred: torch.Tensor, truth: torch.Tensor) -> float:
    return -10 * math.log10(F.mse_loss(pred.clamp(0, 1), truth).item())


@pytest.fixture(scope="module")
def splat():
    return build_generator("splat")


def test_has_no_parameters_and_is_deterministic(splat):
    img0, img1, _, flow01, flow10 = moving_object()
    assert sum(p.numel() for p in splat.parameters()) == 0 and not list(splat.buffers())
    first = splat.interpolate(img0, img1, flow01, flow10, 0.5)
    assert torch.equal(first, splat.interpolate(img0, img1, flow01, flow10, 0.5))


# Whole frames, border and the holes the box leaves included. Measured: 35–39 dB
# (translation) and 29–31 dB (object) with exact flows, about 1 dB less on the object
# with DIS; averaging the two frames scores 21–26 dB and 19–23 dB.
@pytest.mark.parametrize("scene, exact_db, dis_db", [(translated, 34.0, 34.0), (moving_object, 28.5, 27.5)])
@pytest.mark.parametrize("time", [0.5, 0.25, 0.8])
def test_matches_the_true_frame(splat, scene, exact_db, dis_db, time):
    img0, img1, truth, flow01, flow10 = scene(time)
    average = psnr(torch.lerp(img0, img1, time), truth)
    exact = psnr(splat.interpolate(img0, img1, flow01, flow10, time), truth)
    estimated = build_flow_estimator("dis").estimate_bidirectional(img0, img1)
    with_dis = psnr(splat.interpolate(img0, img1, *estimated, time), truth)
    assert average < 27 and exact > exact_db and with_dis > dis_db, (average, exact, with_dis)


@pytest.mark.parametrize("downscale, translated_db, object_db", [(2, 37.0, 28.5), (4, 37.0, 26.5)])
def test_motion_splatted_at_reduced_size(downscale, translated_db, object_db):
    """Large frames splat the motion at 1/2 or 1/4 of their size (measured 38 and 29 / 27 dB)."""
    splat = build_generator("splat", downscale=downscale)
    for scene, minimum in ((translated, translated_db), (moving_object, object_db)):
        img0, img1, truth, flow01, flow10 = scene()
        assert psnr(splat.interpolate(img0, img1, flow01, flow10, 0.5), truth) > minimum


def test_default_splat_size_keeps_the_shorter_side_at_96_pixels_or_more():
    assert [auto_downscale(*size) for size in ((720, 1280), (384, 1024), (256, 448), (96, 128))] == [4, 4, 2, 1]


def test_occluded_pixels_come_from_the_frame_that_sees_them(splat):
    """Behind the box's trailing edge the background is visible only in frame 1, in front
    of its leading edge only in frame 0: frame 0's weight must be low, resp. high, there."""
    img0, img1, truth, flow01, flow10 = moving_object()
    pred, (mask0,) = splat.interpolate(img0, img1, flow01, flow10, 0.5, return_soft_masks=True)
    assert mask0.shape == (1, 1, HEIGHT, WIDTH) and 0 <= mask0.min() and mask0.max() <= 1
    revealed = (_object_mask(0.0) > 0) & (_object_mask(0.5) == 0) & (_object_mask(1.0) == 0)
    covered = (_object_mask(1.0) > 0) & (_object_mask(0.5) == 0) & (_object_mask(0.0) == 0)
    # Exclude a 2-pixel rim around the box where the resampling blurs.
    rim = F.max_pool2d(_object_mask(0.5), 5, 1, 2) > 0
    assert mask0[revealed & ~rim].mean() < 0.1 and mask0[covered & ~rim].mean() > 0.9
    error = (pred - truth).abs().mean(1, keepdim=True)
    assert error[revealed & ~rim].mean() < 0.02 and error[covered & ~rim].mean() < 0.02


def test_batches_are_independent(splat):
    scenes = [translated(), moving_object()]
    stacked = [torch.cat(parts) for parts in zip(*scenes)]
    batched = splat.interpolate(stacked[0], stacked[1], stacked[3], stacked[4], 0.5)
    for index, (img0, img1, _, flow01, flow10) in enumerate(scenes):
        alone = splat.interpolate(img0, img1, flow01, flow10, 0.5)
        assert torch.allclose(batched[index:index + 1], alone, atol=1e-5)


def test_rejects_inputs_outside_the_contract(splat):
    img0, img1, _, flow01, flow10 = translated()
    with pytest.raises(ValueError, match="time strictly between 0 and 1"):
        splat.interpolate(img0, img1, flow01, flow10, 1.0)
    with pytest.raises(ValueError, match="flow10"):
        splat.interpolate(img0, img1, flow01, flow10[..., :-8], 0.5)
    with pytest.raises(ValueError, match="downscale"):
        build_generator("splat", downscale=3)


def test_fill_holes_keeps_known_values_and_fills_from_the_surroundings():
    values = torch.zeros(1, 2, 32, 40)
    values[:, 0, :, :20], values[:, 0, :, 20:] = 1.0, 3.0
    values[:, 1] = 2.0
    weight = torch.ones(1, 1, 32, 40)
    weight[..., 8:24, 16:24] = 0  # a hole across the step
    filled = fill_holes(values * weight, weight)
    known = weight.bool().expand_as(values)
    assert torch.allclose(filled[known], values[known], atol=1e-5)
    hole = filled[:, :, 8:24, 16:24]
    assert torch.allclose(hole[:, 1], torch.full_like(hole[:, 1], 2.0), atol=1e-5)  # constant stays constant
    assert 1.0 <= hole[:, 0].min() and hole[:, 0].max() <= 3.0  # between its neighbours
    assert hole[:, 0, :, 0].mean() < hole[:, 0, :, -1].mean()  # and nearer the nearer side


@pytest.mark.parametrize("tile", [None, 64])
def test_through_the_interpolator_whole_and_in_tiles(splat, tile):
    img0, img1, truth, _, _ = moving_object()
    interpolator = Interpolator(build_flow_estimator("dis"), splat, device="cpu", tile=tile)
    pred = interpolator.interpolate(img0, img1, 0.5)
    assert pred.shape == truth.shape
    assert psnr(pred, truth) > 26.0
