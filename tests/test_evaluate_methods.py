"""Methods the evaluation scores: the baselines (average, repeat, ffmpeg minterpolate)
and FLOW+GENERATOR pipelines, with v00's "best noise" protocol."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pervfi.core.errors import PerVFIError
from pervfi.evaluate.baselines import AverageBaseline, RepeatBaseline
from pervfi.evaluate.contenders import ModelMethod, build_method
from pervfi.evaluate.minterpolate import MinterpolateBaseline, output_fraction
from pervfi.metrics import pixel as metrics
from pervfi.metrics.quantization import quantize
from pervfi.models.flow.base import FlowEstimator
from pervfi.models.generators import build_generator
from pervfi.runtime.interpolator import Interpolator
from tests.conformance import assert_conforms, fill, load_vector, reference_noise, vector_params
from tests.seeded_weights import seeded


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


class GivenFlow(FlowEstimator):
    """The flows of a conformance vector: `flow01` one way, `flow10` the other."""

    def __init__(self, img0: torch.Tensor, flow01: torch.Tensor, flow10: torch.Tensor) -> None:
        super().__init__()
        self.img0, self.flow01, self.flow10 = img0, flow01, flow10

    def estimate(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        return self.flow01 if torch.equal(img0, self.img0) else self.flow10


def _v00() -> torch.nn.Module:
    return seeded(build_generator("v00"), 0.5)


def test_model_method_runs_the_interpolator_at_each_time() -> None:
    interpolator = Interpolator(ZeroFlow(), seeded(build_generator("vb"), 0.65), device="cpu")
    method = ModelMethod("zero+vb", interpolator)
    img0, img1 = _texture(30, 44, seed=1), _texture(30, 44, seed=2)
    frames = method.interpolate(img0, img1, [0.25, 0.75])
    assert [tuple(frame.shape) for frame in frames] == [(1, 3, 30, 44)] * 2
    for frame, time in zip(frames, [0.25, 0.75]):
        assert torch.equal(frame, interpolator.interpolate(img0, img1, time))
    assert not torch.equal(frames[0], frames[1])


def test_best_noise_needs_the_v00_generator() -> None:
    with pytest.raises(PerVFIError, match="--noise best applies to the v00 generator"):
        ModelMethod("zero+vb", Interpolator(ZeroFlow(), build_generator("vb"), device="cpu"), noise="best")
    with pytest.raises(PerVFIError, match="not to the average baseline"):
        build_method("average", noise="best")


@pytest.mark.parametrize("path", vector_params("v00enc_*.pt"))
@torch.no_grad()
def test_best_noise_decodes_with_the_reference_latents_heat(path) -> None:
    vec = load_vector(path)
    inputs = vec["inputs"]
    generator_model = fill(build_generator("v00"), vec["salt"], vec["gain"])
    flows = GivenFlow(inputs["img0"], inputs["flow01"], inputs["flow10"])
    method = ModelMethod("given+v00", Interpolator(flows, generator_model, device="cpu", precision="fp32"), noise="best")
    (pred,) = method.interpolate(inputs["img0"], inputs["img1"], [inputs["time"]], [inputs["gt"]],
                                 torch.Generator().manual_seed(4))
    height, width = inputs["gt"].shape[-2:]
    zs = reference_noise(vec["zs"], height, width, seed=4)
    expected = generator_model.interpolate(inputs["img0"], inputs["img1"], inputs["flow01"], inputs["flow10"],
                                           inputs["time"], zs=zs)
    assert_conforms(pred, expected.clamp(0, 1), what="best-noise prediction")


@torch.no_grad()
def test_best_noise_depends_on_the_reference_and_not_on_the_heat() -> None:
    method = ModelMethod("zero+v00", Interpolator(ZeroFlow(), _v00(), device="cpu"), noise="best")
    img0, img1, gt = (_texture(30, 44, seed=seed) for seed in (1, 2, 3))
    (pred,) = method.interpolate(img0, img1, [0.5], [gt], torch.Generator().manual_seed(4))
    assert pred.shape == (1, 3, 30, 44)
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
