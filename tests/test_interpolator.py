"""The whole reference path (pad, flows both ways, generator, clamp, crop) through Interpolator."""
import pytest
import torch

from pervfi import Interpolator, build_flow_estimator, build_generator
from pervfi.method_names import parse_method
from tests.conformance import assert_conforms, fill, load_vector, vector_params

torch.set_grad_enabled(False)


def _interpolator(method: str, salt: str, gains: dict) -> Interpolator:
    spec = parse_method(method)
    flow = fill(build_flow_estimator(spec.flow), salt, gains[spec.flow])
    generator = fill(build_generator(spec.generator), salt, gains[spec.generator])
    return Interpolator(flow, generator, device="cpu")


@pytest.mark.parametrize("path", vector_params("pipeline_*.pt"))
def test_pipeline_vectors_pass_through_interpolator(path):
    vec = load_vector(path)
    inputs = vec["inputs"]
    interpolator = _interpolator(vec["method"], vec["salt"], vec["gains"])
    out = interpolator.interpolate(inputs["img0"], inputs["img1"], inputs["time"], zs=inputs["zs"])
    assert_conforms(out, vec["output"])


def test_any_size_is_padded_and_cropped_back():
    interpolator = _interpolator("raft_small+pervfi-vb", "pervfi-conformance-v1", {"raft_small": 0.5, "vb": 0.65})
    img0 = torch.rand(2, 3, 37, 53)
    img1 = torch.rand(2, 3, 37, 53)
    frames = interpolator.interpolate_times(img0, img1, [0.25, 0.5])
    assert [f.shape for f in frames] == [(2, 3, 37, 53)] * 2
    assert all(f.min() >= 0 and f.max() <= 1 for f in frames)
    assert not torch.equal(frames[0], frames[1])


def test_times_outside_the_open_interval_are_rejected():
    interpolator = _interpolator("raft_small+pervfi-vb", "pervfi-conformance-v1", {"raft_small": 0.5, "vb": 0.65})
    img = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match="between 0 and 1"):
        interpolator.interpolate(img, img, time=0.0)
