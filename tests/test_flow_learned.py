"""The learned flow estimators (RAFT, RAFT-small, GMA, GMFlow) against the reference vectors,
and their contracts."""
import pytest
import torch

from pervfi.models.flow import alternate_correlation, build_flow_estimator, gma, gmflow_transformer
from tests.conformance import assert_conforms, fill, load_vector, manifest, vector_params
from tests.seeded_weights import seeded

pytestmark = pytest.mark.usefixtures("without_autograd")
NAMES = ["raft", "raft_small", "gma", "gmflow"]
FLOW_TOLERANCE = 5e-3  # pixels, the conformance README's bound for flows


def _vectors():
    # "<name>_<digit>" keeps raft_small's files out of raft's list.
    return [param for name in NAMES for param in vector_params(f"{name}_[0-9]*.pt")]


def _filled(name, gain=0.5):
    return seeded(build_flow_estimator(name), gain)


@pytest.mark.parametrize("path", _vectors())
def test_flow_matches_reference(path):
    vec = load_vector(path)
    model = fill(build_flow_estimator(vec["model"]), vec["salt"], vec["gain"])
    flow = model.estimate(vec["inputs"]["img0"], vec["inputs"]["img1"])
    assert_conforms(flow, vec["output"], max_abs=FLOW_TOLERANCE)


@pytest.mark.parametrize("path", _vectors())
def test_large_frame_path_matches_reference(path, monkeypatch):
    """The path of frames too large for quadratic memory (RAFT's alternate correlation, GMA's
    attention recomputed by fused attention, GMFlow's window attention a query row at a
    time), forced on the reference's frames."""
    monkeypatch.setattr(alternate_correlation, "FULL_VOLUME_BYTES", 0)
    monkeypatch.setattr(gma, "FULL_VOLUME_BYTES", 0)
    monkeypatch.setattr(gmflow_transformer, "ATTENTION_BYTES", 1)
    vec = load_vector(path)
    model = fill(build_flow_estimator(vec["model"]), vec["salt"], vec["gain"])
    flow01, flow10 = model.estimate_bidirectional(vec["inputs"]["img0"], vec["inputs"]["img1"])
    assert_conforms(flow01, vec["output"], max_abs=FLOW_TOLERANCE)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_layout_equals_manifest(name):
    expected = manifest()[name]
    state = build_flow_estimator(name).state_dict()
    assert list(state) == list(expected)
    for key, tensor in state.items():
        assert [list(tensor.shape), str(tensor.dtype).removeprefix("torch.")] == expected[key], key


def _pair(batch=1, height=64, width=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    img0 = torch.rand(batch, 3, height, width, generator=g)
    img1 = torch.roll(img0, shifts=(2, 3), dims=(2, 3)) * 0.9 + 0.05
    return img0, img1


@pytest.mark.parametrize("name", NAMES)
def test_bidirectional_equals_two_calls(name):
    model = _filled(name)
    img0, img1 = _pair(batch=2, height=128, width=136)
    flow01, flow10 = model.estimate_bidirectional(img0, img1)
    assert_conforms(flow01, model.estimate(img0, img1), max_abs=FLOW_TOLERANCE)
    assert_conforms(flow10, model.estimate(img1, img0), max_abs=FLOW_TOLERANCE)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", [(64, 96), (120, 200), (16, 16), (17, 23)])
def test_small_frames_give_finite_flow(name, size):
    model = _filled(name)
    img0, img1 = _pair(height=size[0], width=size[1])
    flow = model.estimate(img0, img1)
    assert flow.shape == (1, 2, *size)
    assert torch.isfinite(flow).all()


def test_frames_below_16_pixels_are_rejected():
    model = build_flow_estimator("raft_small").eval()
    with pytest.raises(ValueError, match="at least 16×16 pixels, got 15×40"):
        model.estimate(*_pair(height=15, width=40))


def test_mismatched_pair_is_rejected():
    model = build_flow_estimator("raft_small").eval()
    img0, _ = _pair()
    with pytest.raises(ValueError, match="same shape"):
        model.estimate(img0, img0[..., :32])
