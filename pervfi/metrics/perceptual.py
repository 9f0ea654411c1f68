"""Perceptual metrics through their maintained packages: LPIPS (AlexNet, package `lpips`),
DISTS (package `DISTS_pytorch`) and FloLPIPS (LPIPS weighted by motion error).

Their backbones come from torchvision's pretrained weights, downloaded into the torch hub
cache (``$TORCH_HOME/hub/checkpoints``) on first use. When a file is neither cached nor
downloadable (offline, no network), the loader raises `MetricUnavailable` with the reason,
and the evaluation reports the column as unavailable instead of failing.

FloLPIPS (Danier et al. 2022) has no package; it is built here from the `lpips` package's
AlexNet LPIPS: each layer's distance map is averaged with weights proportional to the
magnitude of the difference between the motion of the reference video and that of the
interpolated video at that frame. The reference implementation estimates motion with
PWC-Net, which no maintained package provides; torchvision's RAFT (large, C+T+S+K+H
weights) stands in.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import os
import urllib.error
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pervfi.ops.padding import Padder

log = logging.getLogger(__name__)

ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
RAFT_LARGE_URL = "https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth"


class MetricUnavailable(Exception):
    """A metric cannot be computed here (weights or package missing); the message says why."""


@dataclass(frozen=True)
class ScoredFrame:
    """One interpolated frame and its ground truth, with the frames that follow each in
    their videos (FloLPIPS compares motion towards the next frame). All 1×3×H×W in [0, 1]."""

    pred: Tensor
    gt: Tensor
    pred_next: Tensor
    gt_next: Tensor


PerceptualMetric = Callable[[ScoredFrame], float]


def offline_requested() -> bool:
    """True when the environment asks for no downloads (``HF_HUB_OFFLINE`` or ``PERVFI_OFFLINE``)."""
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
               for name in ("PERVFI_OFFLINE", "HF_HUB_OFFLINE"))


def ensure_hub_weights(url: str, offline: bool) -> Path:
    """The torch-hub cache file for `url`, downloading it unless `offline`.

    Raises `MetricUnavailable` naming the file when it cannot be had.
    """
    target = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if target.is_file():
        return target
    if offline:
        raise MetricUnavailable(f"weights unavailable: {target.name} is not in {target.parent} (offline)")
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s to %s", url, target.parent)
    try:
        torch.hub.download_url_to_file(url, str(target), progress=False)
    except (urllib.error.URLError, OSError) as error:
        raise MetricUnavailable(f"weights unavailable: {target.name} could not be downloaded ({error})") from None
    return target


def load_lpips(device: torch.device, offline: bool) -> PerceptualMetric:
    """LPIPS v0.1 with the AlexNet backbone, on images in [0, 1]."""
    model = _lpips_alex(device, offline)

    @torch.no_grad()
    def score(frame: ScoredFrame) -> float:
        return model(frame.pred, frame.gt, normalize=True).item()

    return score


def load_dists(device: torch.device, offline: bool) -> PerceptualMetric:
    """DISTS with its published VGG16 backbone and α/β weights."""
    ensure_hub_weights(VGG16_URL, offline)
    dists_module = _import("DISTS_pytorch", "dists-pytorch")
    with _quiet_torchvision():
        model = dists_module.DISTS(load_weights=False)
    # The package loads weights.pt from sys.prefix, where some installs do not put it;
    # read the copy that ships beside the module instead.
    weights = torch.load(Path(dists_module.__file__).with_name("weights.pt"), map_location="cpu", weights_only=True)
    model.alpha.data, model.beta.data = weights["alpha"], weights["beta"]
    model = model.to(device).eval()

    @torch.no_grad()
    def score(frame: ScoredFrame) -> float:
        return model(frame.pred, frame.gt).item()

    return score


def load_flolpips(device: torch.device, offline: bool) -> PerceptualMetric:
    """FloLPIPS: LPIPS-AlexNet distances weighted by the motion error at each position."""
    model = _lpips_alex(device, offline)
    flow = _raft_large(device, offline)

    @torch.no_grad()
    def score(frame: ScoredFrame) -> float:
        motion_error = flow(frame.gt, frame.gt_next) - flow(frame.pred, frame.pred_next)
        return flolpips_distance(model, frame.pred, frame.gt, motion_error).item()

    return score


def flolpips_distance(model: nn.Module, pred: Tensor, gt: Tensor, motion_error: Tensor) -> Tensor:
    """FloLPIPS of one image pair, given an `lpips.LPIPS` model and the B×2×H×W motion error.

    With a uniform motion error this is the model's plain LPIPS distance.
    """
    from lpips import normalize_tensor

    feats_pred = model.net(model.scaling_layer(pred * 2 - 1))
    feats_gt = model.net(model.scaling_layer(gt * 2 - 1))
    total = torch.zeros(pred.shape[0], device=pred.device)
    for layer, lin in enumerate(model.lins):
        distance = lin((normalize_tensor(feats_pred[layer]) - normalize_tensor(feats_gt[layer])) ** 2)
        total += (distance * _motion_weights(motion_error, distance.shape[-2:])).sum(dim=(1, 2, 3))
    return total


def _motion_weights(motion_error: Tensor, size: torch.Size) -> Tensor:
    """Per image, the motion error's magnitude at `size` normalised to sum to 1; uniform
    where the two motions agree everywhere (the reference would divide by zero)."""
    resized = F.interpolate(motion_error, size=tuple(size), mode="bilinear", align_corners=False)
    magnitude = resized.norm(dim=1, keepdim=True)
    total = magnitude.sum(dim=(1, 2, 3), keepdim=True)
    uniform = torch.full_like(magnitude, 1.0 / magnitude[0].numel())
    return torch.where(total > 0, magnitude / total.clamp_min(torch.finfo(magnitude.dtype).tiny), uniform)


def _lpips_alex(device: torch.device, offline: bool) -> nn.Module:
    ensure_hub_weights(ALEXNET_URL, offline)
    lpips_module = _import("lpips", "lpips")
    with _quiet_torchvision():
        model = lpips_module.LPIPS(net="alex", version="0.1", verbose=False)
    return model.to(device).eval()


@contextlib.contextmanager
def _quiet_torchvision() -> Iterator[None]:
    """The packages build torchvision backbones with the deprecated `pretrained=True`;
    its warnings say nothing a user can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
        yield





def _raft_large(device: torch.device, offline: bool) -> Callable[[Tensor, Tensor], Tensor]:
    """torchvision's RAFT as a function of two [0, 1] frames → flow in pixels."""
    ensure_hub_weights(RAFT_LARGE_URL, offline)
    from torchvision.models.optical_flow import Raft_Large_Weights, raft_large

    model = raft_large(weights=Raft_Large_Weights.C_T_SKHT_V2, progress=False).to(device).eval()

    def estimate(img0: Tensor, img1: Tensor) -> Tensor:
        # RAFT works on sides that are multiples of 8 and at least 128 pixels
        padder = Padder(*img0.shape[-2:], multiple=8, mode="center", minimum=128)
        img0, img1 = padder.apply(img0 * 2 - 1, img1 * 2 - 1)
        return padder.crop(model(img0, img1)[-1])[0]

    return estimate


def _import(module: str, package: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MetricUnavailable(f"package unavailable: pip install {package}") from None


# Loaders by metric name, in the order the paper reports them.
PERCEPTUAL_METRICS: dict[str, Callable[[torch.device, bool], PerceptualMetric]] = {
    "lpips": load_lpips,
    "dists": load_dists,
    "flolpips": load_flolpips,
}
