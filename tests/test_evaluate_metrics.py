"""Evaluation metrics: PSNR / SSIM against scikit-image, IE by hand, perceptual metrics
reported (not raised) when their backbone weights cannot be had."""
from __future__ import annotations

import urllib.error
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pervfi.media.frame_files import read_frame
from pervfi.media.tensors import to_tensor
from pervfi.metrics import perceptual
from pervfi.metrics import pixel as metrics
from pervfi.metrics.perceptual import ScoredFrame
from pervfi.metrics.suite import MetricSuite
from tests.conformance import DATA


def _skimage_scores(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """The reference definitions: H×W×3 float64 in [0, 1]."""
    return (
        peak_signal_noise_ratio(gt, pred, data_range=1),
        structural_similarity(gt, pred, channel_axis=-1, data_range=1, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False),
    )


def _ours(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    as_tensor = lambda image: torch.from_numpy(image).permute(2, 0, 1)[None].float()  # noqa: E731
    return metrics.psnr(as_tensor(pred), as_tensor(gt)).item(), metrics.ssim(as_tensor(pred), as_tensor(gt)).item()


@pytest.mark.parametrize("seed,height,width", [(0, 32, 32), (1, 45, 61), (2, 11, 80)])
def test_psnr_and_ssim_agree_with_scikit_image_on_random_images(seed: int, height: int, width: int) -> None:
    rng = np.random.default_rng(seed)
    gt = rng.random((height, width, 3))
    # a correlated prediction, so SSIM is far from 0
    pred = np.clip(gt + rng.normal(0, 0.1, gt.shape), 0, 1)
    # the comparison is on 8-bit levels, as saved frames are
    gt, pred = np.round(gt * 255) / 255, np.round(pred * 255) / 255
    ref_psnr, ref_ssim = _skimage_scores(pred, gt)
    psnr, ssim = _ours(pred, gt)
    assert psnr == pytest.approx(ref_psnr, abs=1e-3)
    assert ssim == pytest.approx(ref_ssim, abs=1e-3)
    assert 0.2 < ssim < 0.99  # the test images are neither identical nor unrelated


@pytest.mark.parametrize("first,second", [
    ("sintel-market-10/frame_0016.png", "sintel-market-10/frame_0017.png"),
    ("davis-breakdance-flare-3/00000.jpg", "davis-breakdance-flare-3/00001.jpg"),
])
def test_psnr_and_ssim_agree_with_scikit_image_on_real_frames(first: str, second: str) -> None:
    if not (DATA / first).is_file():
        pytest.skip(f"real frames absent: {DATA / first}")
    # half size keeps scikit-image quick; the metrics see the same pixels either way
    shrink = lambda frame: cv2.resize(frame, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)  # noqa: E731
    gt, pred = (shrink(read_frame(DATA / name)).astype(np.float64) / 255 for name in (first, second))
    ref_psnr, ref_ssim = _skimage_scores(pred, gt)
    psnr, ssim = _ours(pred, gt)
    assert psnr == pytest.approx(ref_psnr, abs=1e-3)
    assert ssim == pytest.approx(ref_ssim, abs=1e-3)


def test_interpolation_error_is_the_mean_absolute_difference_in_grey_levels() -> None:
    rng = np.random.default_rng(3)
    gt, pred = rng.integers(0, 256, (2, 20, 24, 3), dtype=np.uint8)
    expected = np.abs(gt.astype(np.int64) - pred.astype(np.int64)).mean()
    assert metrics.interpolation_error(to_tensor(pred), to_tensor(gt)).item() == pytest.approx(expected, rel=1e-5)


def test_identical_images_have_a_finite_psnr_and_unit_ssim() -> None:
    image = torch.rand(1, 3, 16, 16)
    assert metrics.psnr(image, image).item() == pytest.approx(100.0)
    assert metrics.ssim(image, image).item() == pytest.approx(1.0, abs=1e-6)
    assert metrics.interpolation_error(image, image).item() == 0.0


def test_metrics_score_each_image_of_a_batch() -> None:
    gt = torch.rand(2, 3, 16, 16)
    pred = gt.clone()
    pred[1] = 1 - pred[1]
    values = metrics.psnr(pred, gt)
    assert values.shape == (2,) and values[0] == pytest.approx(100.0) and values[1] < 20


def test_ssim_rejects_images_smaller_than_its_window() -> None:
    with pytest.raises(ValueError, match="at least 11"):
        metrics.ssim(torch.rand(1, 3, 8, 30), torch.rand(1, 3, 8, 30))


def _frame() -> ScoredFrame:
    images = [torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    return ScoredFrame(*images)


def test_missing_backbone_weights_are_reported_not_raised(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torch hub cache
    suite = MetricSuite(["psnr", "lpips", "dists", "flolpips"], torch.device("cpu"), offline=True)
    assert set(suite.unavailable) == {"lpips", "dists", "flolpips"}
    assert all("weights unavailable" in reason and "offline" in reason for reason in suite.unavailable.values())
    scores = suite.score(_frame())
    assert scores["lpips"] is None and scores["dists"] is None and scores["flolpips"] is None
    assert scores["psnr"] > 0


def test_a_failed_weight_download_is_reported_not_raised(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    attempts = []

    def no_network(url: str, dst: str, progress: bool = True) -> None:
        attempts.append(url)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    suite = MetricSuite(["lpips"], torch.device("cpu"), offline=False)
    assert attempts == [perceptual.ALEXNET_URL]
    assert "could not be downloaded" in suite.unavailable["lpips"]
    assert suite.score(_frame())["lpips"] is None


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "PERVFI_OFFLINE"])
def test_offline_switch_follows_the_environment(monkeypatch, variable: str) -> None:
    monkeypatch.delenv("PERVFI_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert not perceptual.offline_requested()
    monkeypatch.setenv(variable, "0")
    assert not perceptual.offline_requested()
    monkeypatch.setenv(variable, "1")
    assert perceptual.offline_requested()


def test_unknown_metric_names_the_choices() -> None:
    with pytest.raises(KeyError, match="unknown metric 'vmaf'.*psnr"):
        MetricSuite(["psnr", "vmaf"], torch.device("cpu"), offline=True)


def _lpips_with_random_backbone():
    import lpips  # a requirement: its absence is a failure, not a skip

    torch.manual_seed(0)
    # pnet_rand: an untrained AlexNet (nothing to download); the linear layers are the package's
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision on the package's `pretrained=` argument
        return lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()


@torch.no_grad()
def test_flolpips_with_uniform_motion_error_is_plain_lpips() -> None:
    model = _lpips_with_random_backbone()
    pred, gt = torch.rand(2, 1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    for motion_error in (torch.zeros(1, 2, 64, 64), torch.full((1, 2, 64, 64), 3.0)):
        flolpips = perceptual.flolpips_distance(model, pred, gt, motion_error)
        assert flolpips.item() == pytest.approx(model(pred, gt, normalize=True).item(), rel=1e-5)


@torch.no_grad()
def test_flolpips_weighs_the_errors_where_the_motion_is_wrong() -> None:
    model = _lpips_with_random_backbone()
    gt = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(6))
    pred = gt.clone()
    pred[..., :32, :] = torch.rand(1, 3, 32, 64, generator=torch.Generator().manual_seed(7))  # top half wrong
    where_wrong, elsewhere = torch.zeros(1, 2, 64, 64), torch.zeros(1, 2, 64, 64)
    where_wrong[:, 0, :32] = 1.0
    elsewhere[:, 0, 32:] = 1.0
    plain = model(pred, gt, normalize=True).item()
    assert perceptual.flolpips_distance(model, pred, gt, where_wrong).item() > plain
    assert perceptual.flolpips_distance(model, pred, gt, elsewhere).item() < plain


def test_dists_uses_the_published_weights_on_images_in_0_1(monkeypatch) -> None:
    # With a VGG16 whose layers are all zero, every deep stage matches perfectly, and DISTS reduces
    # to its first stage, the image itself in [0, 1]: a value computable by hand from the paper's
    # formula and the package's published α, β (weights.pt).
    import types

    import DISTS_pytorch
    import torchvision
    from torchvision.models import vgg

    features = vgg.make_layers(vgg.cfgs["D"])
    for parameter in features.parameters():
        torch.nn.init.zeros_(parameter)
    monkeypatch.setattr(torchvision.models, "vgg16", lambda **_: types.SimpleNamespace(features=features))
    monkeypatch.setattr(perceptual, "ensure_hub_weights", lambda url, offline: None)
    score = perceptual.load_dists(torch.device("cpu"), offline=True)

    frame = _frame()
    published = torch.load(Path(DISTS_pytorch.__file__).with_name("weights.pt"), weights_only=True)
    alpha, beta = (published[key].flatten()[:3].double() for key in ("alpha", "beta"))
    total = (published["alpha"].sum() + published["beta"].sum()).double()
    x, y = (image[0].double().flatten(1) for image in (frame.pred, frame.gt))
    x_mean, y_mean = x.mean(1), y.mean(1)
    luminance = (2 * x_mean * y_mean + 1e-6) / (x_mean ** 2 + y_mean ** 2 + 1e-6)
    covariance = (x * y).mean(1) - x_mean * y_mean
    structure = (2 * covariance + 1e-6) / (x.var(1, unbiased=False) + y.var(1, unbiased=False) + 1e-6)
    expected = ((alpha * (1 - luminance)).sum() + (beta * (1 - structure)).sum()) / total
    assert score(frame) == pytest.approx(expected.item(), rel=1e-4)
    assert score(ScoredFrame(frame.gt, frame.gt, frame.gt_next, frame.gt_next)) == pytest.approx(0, abs=1e-6)
