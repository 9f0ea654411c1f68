"""Classical estimators (DIS, Farneback) on known motion, and user estimators by module path."""
import sys
import textwrap

import pytest
import torch

from pervfi.core.errors import PerVFIError, UnknownNameError
from pervfi.models.flow import build_flow_estimator
from pervfi.ops import backward_warp

SHIFT = (3.5, -2.25)  # x, y in pixels


def _textured_pair(height=160, width=224, shift=SHIFT):
    """A smooth random texture and the same texture moved by `shift` (sub-pixel)."""
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(1, 3, height // 8, width // 8, generator=g)
    img0 = torch.nn.functional.interpolate(noise, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)
    flow = torch.zeros(1, 2, height, width)
    flow[:, 0], flow[:, 1] = -shift[0], -shift[1]
    return img0, backward_warp(img0, flow)  # img1(p) = img0(p - shift): flow 0→1 is +shift


@pytest.mark.parametrize("name", ["dis", "farneback"])
def test_recovers_a_known_shift_both_ways(name):
    img0, img1 = _textured_pair()
    flow01, flow10 = build_flow_estimator(name).estimate_bidirectional(img0, img1)
    interior = (..., slice(24, -24), slice(24, -24))
    for flow, sign in ((flow01, 1), (flow10, -1)):
        assert flow.shape == (1, 2, 160, 224) and flow.dtype == torch.float32
        error_x = (flow[interior][:, 0] - sign * SHIFT[0]).abs().mean().item()
        error_y = (flow[interior][:, 1] - sign * SHIFT[1]).abs().mean().item()
        assert error_x < 0.5 and error_y < 0.5, (name, error_x, error_y)


def test_dis_estimate_matches_the_bidirectional_forward_flow():
    img0, img1 = _textured_pair(96, 128)
    model = build_flow_estimator("dis")
    assert torch.equal(model.estimate(img0, img1), model.estimate_bidirectional(img0, img1)[0])


def test_dis_options_are_checked():
    with pytest.raises(ValueError, match="unknown DIS preset"):
        build_flow_estimator("dis", preset="slowest")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="raft, raft_small, gma, gmflow, dis, farneback"):
        build_flow_estimator("pwcnet")


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_flows.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        calls = []

        def constant_flow(img0, img1):
            calls.append("function")
            flow = torch.zeros(img0.shape[0], 2, *img0.shape[-2:])
            flow[:, 0] = 1.5
            return flow

        def wrong_shape(img0, img1):
            return torch.zeros(1, 3, 4, 4)

        class Learned(nn.Module):
            def __init__(self, value=2.0):
                super().__init__()
                self.value = nn.Parameter(torch.tensor(value))

            def estimate(self, img0, img1):
                calls.append("module")
                return self.value * torch.ones(img0.shape[0], 2, *img0.shape[-2:], device=img0.device)

        not_callable = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("my_flows", None)


def test_custom_function_is_used(user_module):
    model = build_flow_estimator("my_flows:constant_flow")
    img = torch.rand(2, 3, 8, 12)
    flow = model.estimate(img, img)
    assert flow.shape == (2, 2, 8, 12) and torch.all(flow[:, 0] == 1.5)
    import my_flows

    assert my_flows.calls == ["function"]


def test_custom_module_class_gets_options_and_moves_with_the_model(user_module):
    model = build_flow_estimator("my_flows:Learned", value=4.0)
    assert torch.all(model.estimate(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)) == 4.0)
    assert any(p.numel() == 1 for p in model.parameters())  # the user's module is registered


def test_custom_estimator_through_a_method(user_module):
    from pervfi.models.method_names import parse_method

    assert parse_method("my_flows:constant_flow+pervfi").flow == "my_flows:constant_flow"


@pytest.mark.parametrize("spec, message", [
    ("no_such_module_xyz:flow", "cannot import module 'no_such_module_xyz'"),
    ("my_flows:missing", "has no attribute 'missing'"),
    ("my_flows:not_callable", "neither a flow function"),
    ("my_flows:", "package.module:attribute"),
])
def test_custom_loading_errors_are_one_clear_line(user_module, spec, message):
    with pytest.raises(PerVFIError, match=message) as error:
        build_flow_estimator(spec)
    assert "\n" not in str(error.value)


def test_custom_wrong_output_shape_is_reported(user_module):
    model = build_flow_estimator("my_flows:wrong_shape")
    with pytest.raises(PerVFIError, match=r"returned \(1, 3, 4, 4\); expected a tensor \(1, 2, 8, 8\)"):
        model.estimate(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
