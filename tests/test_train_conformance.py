"""The training step (issue 15) against the authors' training code: ../shared/conformance/train/.

Every vector file present is checked (held-out sizes and batch sizes included), at the
tolerances of the conformance README's training section.
"""
from __future__ import annotations

import math
import urllib.error
import zlib
from functools import lru_cache
from pathlib import Path

import pytest
import torch
import torchvision

from pervfi.core.errors import CheckpointError, UnknownNameError
from pervfi.models.generators import build_generator
from pervfi.models.generators.normalizing_flow import ActNorm, ZeroConv2d, squeeze2d
from pervfi.train import LaplacianLoss, PerceptualLoss, losses, scratch_generator, training_loss
from tests.conformance import fill_state, load_vector, vector_params
from tests.seeded_weights import seeded_state

STEP_VECTORS = vector_params("train/train-*.pt") + vector_params("train/actnorm-init-*.pt")


def _vgg_standin(spec: dict) -> torchvision.models.VGG:
    """torchvision's VGG19 with the vectors' deterministic fill in place of ImageNet weights."""
    return _filled_vgg(spec["salt"], spec["gain"])


@lru_cache(maxsize=None)
def _filled_vgg(salt: str, gain: float) -> torchvision.models.VGG:
    vgg = torchvision.models.vgg19(weights=None)
    vgg.features.load_state_dict(fill_state(vgg.features.state_dict(), salt, gain))
    return vgg


def _generator(vec: dict) -> torch.nn.Module:
    generator = build_generator(vec["recipe"])
    state = fill_state(generator.state_dict(), vec["salt"], vec["gain"])
    if not vec["actnorm_initialized"]:
        state = {k: torch.zeros_like(v) if k.endswith(".initialized") else v for k, v in state.items()}
    generator.load_state_dict(state, strict=True)
    return generator.train()


@lru_cache(maxsize=None)
def _step(path: Path) -> tuple[dict, dict, torch.nn.Module]:
    """(vector, our step's outputs, the generator after backward), computed once per file."""
    vec = load_vector(path)
    generator = _generator(vec)
    out = training_loss(generator, vec["batch"], vec["recipe"], noise=vec["noise"],
                        perceptual=PerceptualLoss(_vgg_standin(vec["vgg"])))
    out["total"].backward()
    return vec, out, generator


def _relative(out: float, ref: float) -> float:
    return abs(out - ref) / abs(ref)


def _assert_image(out: torch.Tensor, ref: torch.Tensor, what: str) -> None:
    """Centred relative L2 ≤ 1e-4 and |Δ| ≤ 1e-3 + 1e-4·|ref| per element."""
    out = out.detach()
    assert out.shape == ref.shape, what
    spread = (ref - ref.mean()).norm().item()
    relative = (out - ref).norm().item() / spread if spread > 0 else 0.0
    excess = ((out - ref).abs() - (1e-3 + 1e-4 * ref.abs())).max().item()
    assert relative <= 1e-4 and excess <= 0, f"{what}: relative {relative:.3g}, max excess over the bound {excess:.3g}"


@pytest.mark.parametrize("path", STEP_VECTORS)
def test_losses_prediction_and_masks_match_reference(path):
    vec, out, _ = _step(path)
    ref = vec["outputs"]
    for name in ("total", "lap", "per", "l1", "heat"):
        if name in ref:
            assert _relative(out[name].item(), float(ref[name])) <= 1e-4, name
    if "nll" in ref:
        assert out["nll"].shape == ref["nll"].shape
        assert ((out["nll"].detach() - ref["nll"]).abs() / ref["nll"].abs()).max().item() <= 1e-4
    composed = sum(weight * (out[name].mean() if name == "nll" else out[name]) for name, weight in vec["weights"].items())
    assert _relative(out["total"].item(), composed.item()) <= 1e-5
    _assert_image(out["pred"], ref["pred"], "prediction")
    assert len(out["masks"]) == 3
    for level, (mask, expected) in enumerate(zip(out["masks"], ref["masks"])):
        _assert_image(mask, expected, f"soft mask {level}")


def _gradient_summaries(generator: torch.nn.Module, salt: str) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Names, ‖g‖ and Σ g·d per parameter, d the README's seeded direction (float64)."""
    names, norms, projections = [], [], []
    for name, parameter in generator.named_parameters():
        grad = torch.zeros_like(parameter) if parameter.grad is None else parameter.grad
        seed = zlib.crc32(f"{salt}:{name}".encode())
        direction = torch.randn(parameter.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
        names.append(name)
        norms.append(grad.double().norm().item())
        projections.append((grad.double() * direction).sum().item())
    return names, torch.tensor(norms, dtype=torch.float64), torch.tensor(projections, dtype=torch.float64)


@pytest.mark.parametrize("path", STEP_VECTORS)
def test_gradient_of_every_parameter_matches_reference(path):
    vec, _, generator = _step(path)
    ref = vec["grads"]
    names, norms, projections = _gradient_summaries(generator, ref["direction_salt"])
    assert names == list(ref["names"])
    assert (norms - ref["norm"]).norm() / ref["norm"].norm() <= 1e-3
    assert (projections - ref["proj"]).norm() / ref["proj"].norm() <= 1e-3
    scale = ref["norm"].max().item()
    for i, name in enumerate(names):
        norm, proj = ref["norm"][i].item(), ref["proj"][i].item()
        if norm == 0:  # the reference's graph does not reach it, or only through zeros
            assert norms[i] <= 1e-9 * scale, name
            continue
        assert abs(norms[i] - norm) / norm <= 3e-2, f"{name}: norm {norms[i]:.6g} vs {norm:.6g}"
        assert abs(projections[i] - proj) / max(abs(proj), norm) <= 3e-2, f"{name}: projection"
    parameters = dict(generator.named_parameters())
    for name, expected in ref["full"].items():
        assert (parameters[name].grad - expected).norm() / expected.norm() <= 3e-2, name


@pytest.mark.parametrize("path", vector_params("train/actnorm-init-*.pt"))
def test_actnorm_data_dependent_initialisation_matches_reference(path):
    vec, _, generator = _step(path)
    state = generator.state_dict()
    for key, expected in vec["actnorm"].items():
        if key.endswith(".loc"):
            std_error = (state[key] - expected).abs() * vec["actnorm"][key.removesuffix(".loc") + ".logs"].exp()
            assert std_error.max().item() <= 1e-4, key
        else:
            assert (state[key] - expected).abs().max().item() <= 1e-4, key
    flags = [value for key, value in state.items() if key.endswith(".initialized")]
    assert flags and all(flag.item() == 1 for flag in flags)


@pytest.mark.parametrize("path", vector_params("train/lap_*.pt") + vector_params("train/per_*.pt"))
def test_loss_value_and_gradient_match_reference(path):
    vec = load_vector(path)
    loss = LaplacianLoss(vec["levels"]) if vec["kind"] == "lap" else PerceptualLoss(_vgg_standin(vec["vgg"]))
    pred = vec["inputs"]["pred"].clone().requires_grad_(True)
    value = loss(pred, vec["inputs"]["gt"])
    value.backward()
    assert value.dim() == 0
    assert _relative(value.item(), float(vec["value"])) <= 1e-4
    assert (pred.grad - vec["grad_pred"]).norm() / vec["grad_pred"].norm() <= 3e-2


def test_laplacian_loss_names_a_size_it_cannot_take():
    with pytest.raises(ValueError, match="multiples of 32.*48×64"):
        LaplacianLoss()(torch.rand(1, 3, 48, 64), torch.rand(1, 3, 48, 64))


def test_unknown_recipe_is_named():
    with pytest.raises(UnknownNameError, match="'v01'.*v00, vb"):
        training_loss(torch.nn.Identity(), {}, "v01")


def test_default_perceptual_loss_offline_names_the_weights_and_where_to_put_them(tmp_path, monkeypatch):
    def no_network(url, dst, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    losses.imagenet_perceptual_loss.cache_clear()
    with pytest.raises(CheckpointError) as caught:
        losses.imagenet_perceptual_loss()
    message = str(caught.value)
    assert "vgg19-dcbb9e9d.pth" in message and str(tmp_path / "checkpoints") in message
    assert "\n" not in message


def _inputs(batch: int = 1, size: int = 32, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    img0 = torch.rand(batch, 3, size, size, generator=g)
    flow = torch.full((batch, 2, size, size), 1.0)
    return {"img0": img0, "img1": torch.roll(img0, (1, 1), (2, 3)), "flow01": flow, "flow10": -flow,
            "gt": torch.roll(img0, (1, 0), (2, 3)) * 0.5 + img0 * 0.5}


def test_training_pass_draws_its_own_noise_when_none_is_given():
    """Masks within ±0.005 of the inference masks, dequantisation (log2 255 bits more than
    the clean NLL, give or take the noise), fresh noise on every call."""
    generator = build_generator("v00")
    generator.load_state_dict(seeded_state(generator.state_dict(), gain=0.5))  # any fixed weights: no ../shared
    batch = _inputs()
    with torch.no_grad():
        clean_masks = generator.eval().interpolate(*(batch[k] for k in ("img0", "img1", "flow01", "flow10")),
                                                   return_soft_masks=True)[1]
        _, clean_nll = generator.encode(*(batch[k] for k in ("img0", "img1", "flow01", "flow10", "gt")))
        generator.train()
        first, second = (generator(*(batch[k] for k in ("img0", "img1", "flow01", "flow10", "gt")))
                         for _ in range(2))
    for noisy, clean in zip(first["masks"], clean_masks):
        shift = noisy - clean
        assert shift.abs().max() <= 0.005 + 1e-6 and shift.std() > 0.002
    assert (first["nll"] - clean_nll - math.log2(255)).abs().max() < 0.05
    assert not torch.equal(first["pred"], second["pred"]) and first["heat"] > 0


class _NaNGenerator(torch.nn.Module):
    """A v00 stand-in whose prediction has a NaN."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()))

    def forward(self, img0, img1, flow01, flow10, gt, time, mask_noise, dequant, zs):
        pred = img0 * self.weight
        pred[0, 0, 0, 0] = float("nan")
        return {"pred": pred, "masks": [], "nll": self.weight * torch.tensor([2.0, 4.0]), "heat": self.weight}


def test_a_prediction_with_nan_leaves_the_image_losses_out_as_the_reference_does():
    out = training_loss(_NaNGenerator(), _inputs(batch=2, size=64), "v00", perceptual=torch.nn.L1Loss())
    assert out["total"].item() == 3.0 and torch.isnan(out["lap"])


def test_a_new_v00_has_the_reference_default_initialisation():
    """Zero couplings, priors and deformable offsets; ActNorms initialised by the first
    training batch (so that the flow's input comes out standardised)."""
    generator = build_generator("v00").train()
    zero_convs = [m.conv for m in generator.modules() if isinstance(m, ZeroConv2d)]
    offsets = [generator.deformableAlign.deform_conv[level].conv_offset for level in ("l0", "l1", "l2")]
    assert zero_convs and all(not conv.weight.any() and not conv.bias.any() for conv in zero_convs + offsets)
    actnorms = [m for m in generator.modules() if isinstance(m, ActNorm)]
    assert len(actnorms) == 51 and not any(m.initialized for m in actnorms)
    batch = _inputs(batch=2)
    with torch.no_grad():
        out = generator(*(batch[k] for k in ("img0", "img1", "flow01", "flow10", "gt")))
        first = generator.condFLownet.blocks[0].actnorm
        normalised, _ = first(squeeze2d(batch["gt"] * 2 - 1))
    assert all(m.initialized for m in actnorms) and torch.isfinite(out["pred"]).all()
    flat = normalised.transpose(0, 1).flatten(1)
    assert flat.mean(1).abs().max() < 0.01 and (flat.std(1) - 1).abs().max() < 0.01


@pytest.mark.parametrize("path", vector_params("train/scratch-init*.pt"))
def test_the_scratch_start_is_the_reference_s_pyramid_on_the_default_initialisation(path, tmp_path):
    """The authors start from scratch with softmax splatting's network-lf.pytorch in the pyramid
    (their loader's renaming, decoys skipped or ignored), bit for bit; every other key keeps
    PyTorch's default initialisation (what build_generator gives from the same seed)."""
    vec = load_vector(path)
    network_lf = tmp_path / "network-lf.pytorch"
    torch.save(vec["network_lf"], network_lf)
    for recipe in vec["recipe"]:
        expected = vec["expected"][recipe]
        torch.manual_seed(0)
        default = build_generator(recipe).state_dict()
        torch.manual_seed(0)
        generator = scratch_generator(recipe, network_lf)
        assert generator.training
        state = generator.state_dict()
        assert sorted(key for key in state if key.startswith("featurePyramid.")) == sorted(expected)
        for key, value in state.items():
            reference = expected.get(key, default[key])
            assert value.dtype == reference.dtype and torch.equal(value, reference), key
        assert not any(torch.equal(default[key], expected[key]) for key in expected)  # the file did load