"""The whole reference path (pad, flows both ways, generator, clamp, crop) through Interpolator."""
import pytest
import torch
import torch.nn.functional as F

from pervfi.models.flow import build_flow_estimator
from pervfi.models.generators import build_generator
from pervfi.models.method_names import parse_method
from pervfi.runtime.interpolator import Interpolator
from tests.conformance import assert_conforms, fill, load_vector, vector_params
from tests.seeded_weights import seeded

pytestmark = pytest.mark.usefixtures("without_autograd")


def _interpolator(method: str, salt: str, gains: dict) -> Interpolator:
    spec = parse_method(method)
    flow = fill(build_flow_estimator(spec.flow), salt, gains[spec.flow])
    generator = fill(build_generator(spec.generator), salt, gains[spec.generator])
    return Interpolator(flow, generator, device="cpu", precision="fp32")  # conformance: fp32 on every machine


@pytest.mark.parametrize("path", vector_params("pipeline_*.pt"))
def test_pipeline_vectors_pass_through_interpolator(path):
    vec = load_vector(path)
    inputs = vec["inputs"]
    interpolator = _interpolator(vec["method"], vec["salt"], vec["gains"])
    out = interpolator.interpolate(inputs["img0"], inputs["img1"], inputs["time"], zs=inputs["zs"])
    assert_conforms(out, vec["output"])


def _seeded_interpolator() -> Interpolator:
    return Interpolator(seeded(build_flow_estimator("raft_small"), 0.5), seeded(build_generator("vb"), 0.65),
                        device="cpu")


def test_any_size_is_padded_and_cropped_back():
    # The reference pads right and bottom with zeros to a multiple of 8 and crops back: the output
    # for 37×53 frames is the top-left corner of the output for the frames padded so by hand.
    interpolator = _seeded_interpolator()
    g = torch.Generator().manual_seed(0)
    img0, img1 = torch.rand(2, 2, 3, 37, 53, generator=g)
    frames = interpolator.interpolate_times(img0, img1, [0.25, 0.5])
    padded = interpolator.interpolate_times(F.pad(img0, (0, 3, 0, 3)), F.pad(img1, (0, 3, 0, 3)), [0.25, 0.5])
    for frame, whole in zip(frames, padded):
        assert frame.shape == (2, 3, 37, 53)
        assert torch.allclose(frame, whole[..., :37, :53], atol=1e-5)
    assert not torch.equal(frames[0], frames[1])


def test_times_outside_the_open_interval_are_rejected():
    interpolator = _seeded_interpolator()
    img = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match="between 0 and 1"):
        interpolator.interpolate(img, img, time=0.0)
