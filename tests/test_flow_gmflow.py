"""GMFlow's own contracts: shifted-window mask and window position embedding from their
definitions, batch independence, tiny frames, autocast, configuration checks.
(Conformance, layout and the bidirectional path are in test_flow_learned.py.)"""
import math

import pytest
import torch

from pervfi.models.flow.gmflow import build_gmflow
from pervfi.models.flow.gmflow_transformer import add_window_position, shift_bias, split_windows, window_regions
from tests.conformance import assert_conforms
from tests.seeded_weights import seeded

pytestmark = pytest.mark.usefixtures("without_autograd")
FLOW_TOLERANCE = 5e-3


@pytest.fixture(scope="module")
def model():
    return seeded(build_gmflow(), 0.5)


def _pair(batch, height, width, seed=0):
    # Multiples of 1/256: exact in float16 too.
    g = torch.Generator().manual_seed(seed)
    img0 = torch.randint(0, 256, (batch, 3, height, width), generator=g) / 256
    return img0, torch.roll(img0, shifts=(1, 2), dims=(2, 3)) * 0.75 + 0.125


@pytest.mark.parametrize("height, width, splits", [(6, 10, 2), (4, 4, 2), (2, 2, 2), (9, 6, 3), (8, 12, 4)])
def test_shifted_window_mask_blocks_only_pixels_the_roll_brought_together(height, width, splits):
    # Roll the pixel coordinates as the attention rolls the features, cut into windows;
    # two pixels are true neighbours iff their offset is the same before and after the roll.
    window_h, window_w = height // splits, width // splits
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    coords = torch.stack([ys, xs], dim=-1)[None]  # 1×H×W×2
    rolled = torch.roll(coords, shifts=(-(window_h // 2), -(window_w // 2)), dims=(1, 2))
    original = split_windows(rolled, splits).reshape(splits * splits, -1, 2)
    placed = split_windows(coords, splits).reshape(splits * splits, -1, 2)
    offset_before = original[:, :, None] - original[:, None, :]
    offset_after = placed[:, :, None] - placed[:, None, :]
    neighbours = (offset_before == offset_after).all(-1)

    regions = window_regions(height, width, splits, torch.device("cpu"))
    mask = shift_bias(regions, regions)
    assert mask.shape == (splits * splits, window_h * window_w, window_h * window_w)
    assert torch.equal(mask == 0, neighbours)
    assert torch.all((mask == 0) | (mask == -100.0))


def test_window_position_embedding_is_detr_sine_per_window():
    channels, height, width, splits = 8, 4, 6, 2
    out = add_window_position(torch.zeros(1, channels, height, width), splits)
    half = channels // 2
    for y in range(height):
        for x in range(width):
            # Normalised 1-based position inside the window, times 2π (DETR, normalize=True).
            pos_y = (y % (height // splits) + 1) / (height // splits) * 2 * math.pi
            pos_x = (x % (width // splits) + 1) / (width // splits) * 2 * math.pi
            expected = []
            for pos in (pos_y, pos_x):
                for k in range(half):
                    angle = pos / 10000 ** (2 * (k // 2) / half)
                    expected.append(math.sin(angle) if k % 2 == 0 else math.cos(angle))
            assert out[0, :, y, x].tolist() == pytest.approx(expected, abs=1e-5)


def test_each_image_of_a_batch_is_estimated_independently(model):
    # 48×80 → a 6×10 map: odd 3×5 windows, shift 1×2.
    img0, img1 = _pair(batch=2, height=48, width=80)
    batched = model.estimate(img0, img1)
    for i in range(2):
        assert_conforms(batched[i:i + 1], model.estimate(img0[i:i + 1], img1[i:i + 1]), max_abs=FLOW_TOLERANCE)


@pytest.mark.parametrize("size", [(1, 1), (5, 9), (16, 40)])
def test_frames_down_to_one_pixel_give_finite_flow(model, size):
    img0, img1 = _pair(batch=1, height=size[0], width=size[1])
    flow01, flow10 = model.estimate_bidirectional(img0, img1)
    for flow in (flow01, flow10):
        assert flow.shape == (1, 2, *size)
        assert torch.isfinite(flow).all()


def test_empty_frames_are_rejected(model):
    img = torch.rand(1, 3, 0, 24)
    with pytest.raises(ValueError, match="at least 1×1 pixels, got 0×24"):
        model.estimate(img, img)


def test_flow_stays_float32_and_unchanged_under_autocast(model):
    img0, img1 = _pair(batch=1, height=32, width=48)
    plain = model.estimate(img0, img1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = model.estimate(img0, img1)
    half = model.estimate(img0.half(), img1.half())
    assert autocast.dtype == half.dtype == torch.float32
    assert torch.equal(autocast, plain)
    assert torch.equal(half, plain)


@pytest.mark.parametrize("options, option", [
    ({"num_scales": 2, "attn_splits": [2, 8]}, "num_scales"),
    ({"num_head": 2}, "num_head"),
    ({"attention_type": "full"}, "attention_type"),
    ({"upsample_factor": 4}, "upsample_factor"),
    ({"corr_radius": [4]}, "corr_radius"),
    ({"prop_radius": [1]}, "prop_radius"),
    ({"attn_splits": [0]}, "attn_splits"),
    ({"attn_splits": [2, 8]}, "attn_splits"),
])
def test_configurations_beyond_pervfis_are_rejected(options, option):
    with pytest.raises(ValueError, match=f"GMFlow {option}"):
        build_gmflow(**options)


def test_one_window_per_side_attends_globally_without_shifting():
    # With a single window the reference uses plain full attention in every layer: the
    # odd layers' cyclic shift and mask must not apply.
    model = seeded(build_gmflow(attn_splits=[1]), 0.5)
    g = torch.Generator().manual_seed(0)
    feature0, feature1 = torch.randn(2, 1, 128, 5, 7, generator=g)
    out = model.transformer(feature0, feature1, 1)
    for layer in model.transformer.layers:
        layer.shifted = False
    expected = model.transformer(feature0, feature1, 1)
    for got, want in zip(out, expected):
        assert_conforms(got, want, max_abs=1e-5)
