"""Pixel metrics of the frame-interpolation benchmarks: PSNR, SSIM and IE.

Standard definitions on RGB images in [0, 1], B×3×H×W, computed in float32 with torch on
the images' device (CPU, CUDA or MPS); each returns one value per image (length B).
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

# Identical images have an infinite PSNR; flooring the MSE keeps means finite (100 dB).
MSE_FLOOR = 1e-10

# SSIM (Wang et al. 2004): an 11×11 Gaussian window of σ 1.5, K1 = 0.01, K2 = 0.03.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2


def psnr(pred: Tensor, gt: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB (peak 1), over all pixels and channels."""
    _check_images(pred, gt)
    mse = (pred.float() - gt.float()).pow(2).mean(dim=(1, 2, 3))
    return -10.0 * torch.log10(mse.clamp_min(MSE_FLOOR))


def interpolation_error(pred: Tensor, gt: Tensor) -> Tensor:
    """IE: the mean absolute difference in 0–255 grey levels."""
    _check_images(pred, gt)
    return (pred.float() - gt.float()).abs().mean(dim=(1, 2, 3)) * 255.0


def ssim(pred: Tensor, gt: Tensor) -> Tensor:
    """Structural similarity, the mean over the valid window positions and the channels.

    Local statistics use the Gaussian window without padding, as scikit-image's
    ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``
    which crops the borders its filter padded.
    """
    _check_images(pred, gt)
    if min(pred.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}×{SSIM_WINDOW}, got {tuple(pred.shape[-2:])}")
    x, y = pred.float(), gt.float()
    mu_x, mu_y, mean_xx, mean_yy, mean_xy = _local_mean(torch.cat([x, y, x * x, y * y, x * y], dim=1)).chunk(5, dim=1)
    var_x = mean_xx - mu_x * mu_x
    var_y = mean_yy - mu_y * mu_y
    cov = mean_xy - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)) / (
        (mu_x * mu_x + mu_y * mu_y + SSIM_C1) * (var_x + var_y + SSIM_C2)
    )
    return ssim_map.mean(dim=(1, 2, 3))


def _local_mean(image: Tensor) -> Tensor:
    """Gaussian-weighted means over every full window (separable, per channel)."""
    taps = _gaussian_taps(image.dtype, image.device)
    channels = image.shape[1]
    rows = F.conv2d(image, taps.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(rows, taps.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


@functools.lru_cache(maxsize=8)
def _gaussian_taps(dtype: torch.dtype, device: torch.device) -> Tensor:
    offsets = torch.arange(SSIM_WINDOW, dtype=torch.float64) - (SSIM_WINDOW - 1) / 2
    taps = torch.exp(-offsets**2 / (2 * SSIM_SIGMA**2))
    return (taps / taps.sum()).to(device=device, dtype=dtype)


def _check_images(pred: Tensor, gt: Tensor) -> None:
    if pred.dim() != 4 or pred.shape[1] != 3 or pred.shape != gt.shape:
        raise ValueError(f"expected two B×3×H×W images of one shape, got {tuple(pred.shape)} and {tuple(gt.shape)}")
