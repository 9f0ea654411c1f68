"""Methods the evaluation scores: the baselines (average, repeat, ffmpeg minterpolate)
and FLOW+GENERATOR pipelines, with v00's "best noise" protocol."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pervfi.errors import PerVFIError
from pervfi.evaluate import metrics
from pervfi.evaluate.baselines import AverageBaseline, RepeatBaseline
from pervfi.evaluate.quantization import quantize
from pervfi.evaluate.contenders import ModelMethod, build_method
from pervfi.evaluate.minterpolate import MinterpolateBaseline, output_fraction
from pervfi.flow.base import FlowEstimator
from pervfi.generators import build_generator
from pervfi.interpolator import Interpolator
from pervfi.ops import Padder
from tests.conformance import fill


def _texture(height: int = 64, width: int = 96, seed: int = 0) -> torch.Tensor:
    coarse = torch.rand(1, 3, height // 8 + 1, width // 8 + 1, generator=torch.Generator().manual_seed(seed))
    smooth = F.interpolate(coarse, scale_factor=8, mode="bicubic", align_corners=False).clamp(0, 1)
    return smooth[..., :height, :width]


def _moving(shift: int, height: int = 96, width: int = 160) -> torch.Tensor:
    """The texture panned `shift` pixels right (a crop of a larger frame)."""
    big = _texture(height, width + 32)
    return big[..., 16 - shift:16 - shift + width]


def test_average_blends_at_time_t() -> None:
    img0, img1 = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    frames = AverageBaseline().interpolate(img0, img1, [0.25, 0.5])
    assert [frame.unique().item() for frame in frames] == [0.25, 0.5]


def test_repeat_copies_the_nearer_frame() -> None:
    img0, img1 = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    frames = RepeatBaseline().interpolate(img0, img1, [0.25, 0.5, 0.75])
    assert [frame.unique().item() for frame in frames] == [0.0, 0.0, 1.0]


def _best_shift(frame: torch.Tensor, shifts: range) -> int:
    """The pan (in pixels) whose true frame `frame` matches best, borders aside."""
    inner = lambda image: image[..., 16:-16, 16:-16]  # noqa: E731
    return max(shifts, key=lambda shift: metrics.psnr(inner(frame), inner(_moving(shift))).item())


def test_minterpolate_places_each_frame_at_its_time() -> None:
    times = [0.25, 0.5, 0.75]
    frames = MinterpolateBaseline().interpolate(_moving(0), _moving(16), times)
    found = [_best_shift(frame, range(0, 17)) for frame in frames]
    assert all(abs(shift - 16 * time) <= 1 for shift, time in zip(found, times)), found  # block matching: ±1 px
    for frame, time in zip(frames, times):
        blend = quantize(AverageBaseline().interpolate(_moving(0), _moving(16), [time])[0])
        gt = _moving(round(16 * time))
        assert metrics.psnr(frame, gt).item() > metrics.psnr(blend, gt).item() + 3


def test_minterpolate_handles_odd_sizes_and_thirds() -> None:
    img0, img1 = _moving(0, 37, 45), _moving(3, 37, 45)
    frames = MinterpolateBaseline().interpolate(img0, img1, [1 / 3, 2 / 3])
    assert [tuple(frame.shape) for frame in frames] == [(1, 3, 37, 45)] * 2
    assert not torch.equal(frames[0], frames[1])


def test_minterpolate_refuses_frames_below_its_block_size() -> None:
    with pytest.raises(PerVFIError, match="at least 32×32, got 45×20"):
        MinterpolateBaseline().interpolate(_moving(0, 20, 45), _moving(1, 20, 45), [0.5])


def test_minterpolate_times_must_be_simple_fractions() -> None:
    assert output_fraction(0.375) == pytest.approx(3 / 8)
    with pytest.raises(PerVFIError, match="times k/N"):
        output_fraction(0.123456789)
    with pytest.raises(PerVFIError, match="times k/N"):
        output_fraction(1.0)


class ZeroFlow(FlowEstimator):
    def estimate(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(img0[:, :2])


def _v00() -> torch.nn.Module:
    return fill(build_generator("v00"), "pervfi-conformance-v1", 0.5)


def test_model_method_runs_the_interpolator_at_each_time() -> None:
    method = ModelMethod("zero+vb", Interpolator(ZeroFlow(), build_generator("vb"), device="cpu"))
    img0, img1 = _texture(30, 44, seed=1), _texture(30, 44, seed=2)
    frames = method.interpolate(img0, img1, [0.25, 0.75])
    assert [tuple(frame.shape) for frame in frames] == [(1, 3, 30, 44)] * 2
    assert all(0 <= frame.min() and frame.max() <= 1 for frame in frames)


def test_best_noise_needs_the_v00_generator() -> None:
    with pytest.raises(PerVFIError, match="--noise best applies to the v00 generator"):
        ModelMethod("zero+vb", Interpolator(ZeroFlow(), build_generator("vb"), device="cpu"), noise="best")
    with pytest.raises(PerVFIError, match="not to the average baseline"):
        build_method("average", noise="best")


@torch.no_grad()
def test_best_noise_decodes_the_padded_frames_with_the_reference() -> None:
    generator_model = _v00()
    method = ModelMethod("zero+v00", Interpolator(ZeroFlow(), generator_model, device="cpu"), noise="best")
    img0, img1, gt = (_texture(30, 44, seed=seed) for seed in (1, 2, 3))
    (pred,) = method.interpolate(img0, img1, [0.5], [gt], torch.Generator().manual_seed(4))
    # the same protocol by hand: pad to 32×48 (right/bottom), zero flows, decode, clamp, crop
    padder = Padder(30, 44, multiple=8, mode="corner")
    img0p, img1p, gtp = padder.apply(img0, img1, gt)
    flow = torch.zeros(1, 2, 32, 48)
    expected = generator_model.interpolate_best_noise(img0p, img1p, flow, flow, gtp, 0.5,
                                                      rng=torch.Generator().manual_seed(4))
    assert torch.allclose(pred, padder.crop(expected.clamp(0, 1))[0], atol=1e-6)
    # the noise depends on the reference (its latents' spread), and not on the heat mode
    (other,) = method.interpolate(img0, img1, [0.5], [1 - gt], torch.Generator().manual_seed(4))
    heat = ModelMethod("zero+v00", method.interpolator).interpolate(img0, img1, [0.5], [gt],
                                                                     torch.Generator().manual_seed(4))[0]
    assert not torch.allclose(pred, other) and not torch.allclose(pred, heat)


def test_model_method_noise_follows_the_seed() -> None:
    method = ModelMethod("zero+v00", Interpolator(ZeroFlow(), _v00(), device="cpu"))
    img0, img1 = _texture(32, 32, seed=1), _texture(32, 32, seed=2)
    draw = lambda seed: method.interpolate(img0, img1, [0.5], rng=torch.Generator().manual_seed(seed))[0]  # noqa: E731
    assert torch.equal(draw(5), draw(5))
    assert not torch.equal(draw(5), draw(6))


def test_unknown_method_names_the_choices() -> None:
    with pytest.raises(PerVFIError, match="FLOW\\+GENERATOR"):
        build_method("bilinear")
