"""Classical optical flow from OpenCV, needing no weights: DIS and Farneback.

Frames are converted to 8-bit grey on the CPU, each direction is computed by OpenCV,
and the flow comes back as a float32 tensor on the input's device.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from .base import FlowEstimator, check_pair

DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def to_grey_uint8(images: Tensor) -> list[np.ndarray]:
    """B×3×H×W RGB in [0, 1] → B arrays H×W uint8 (ITU-R BT.601 luma)."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)
    grey = (images.float() * weights).sum(1).clamp(0, 1).mul(255).round().to(torch.uint8)
    return list(grey.cpu().numpy())


class OpenCVFlow(FlowEstimator):
    """A flow estimator around an OpenCV function (grey uint8 pair → H×W×2 float32)."""

    traceable = False  # OpenCV, not PyTorch: torch.compile cannot trace it

    def _flow(self, grey0: np.ndarray, grey1: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def estimate(self, img0: Tensor, img1: Tensor) -> Tensor:
        check_pair(img0, img1)
        flows = [self._flow(a, b) for a, b in zip(to_grey_uint8(img0), to_grey_uint8(img1))]
        return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).to(img0.device)

    def estimate_bidirectional(self, img0: Tensor, img1: Tensor) -> tuple[Tensor, Tensor]:
        """Both directions, the frames converted once."""
        check_pair(img0, img1)
        grey0, grey1 = to_grey_uint8(img0), to_grey_uint8(img1)
        forward = [self._flow(a, b) for a, b in zip(grey0, grey1)]
        backward = [self._flow(b, a) for a, b in zip(grey0, grey1)]
        return tuple(torch.from_numpy(np.stack(f)).permute(0, 3, 1, 2).to(img0.device) for f in (forward, backward))


class DISFlow(OpenCVFlow):
    """Dense Inverse Search (Kroeger et al., ECCV 2016), OpenCV's implementation.

    `preset` sets the defaults (ultrafast, fast, medium); the other options override them
    (None keeps the preset's): `finest_scale` (0 = full resolution, 1 = half, ...), patch
    size and stride, gradient descent iterations, variational refinement iterations and
    weights. The defaults are tuned for frame interpolation (with the `splat` generator,
    on Sintel and DAVIS triplets): the medium preset at half resolution with 6×6 patches
    every 2 pixels, denser than the preset's 8×8 every 3, gained 0.35–0.65 dB PSNR on
    triplets of smaller motion (none on the largest) for about twice the flow time; full
    resolution, more iterations or other refinement weights gained nothing.
    """

    def __init__(self, preset: str = "medium", finest_scale: int | None = 1, patch_size: int | None = 6,
                 patch_stride: int | None = 2, gradient_descent_iterations: int | None = None,
                 variational_refinement_iterations: int | None = None, refinement_alpha: float | None = None,
                 refinement_delta: float | None = None, refinement_gamma: float | None = None) -> None:
        super().__init__()
        if preset not in DIS_PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}; choose one of {', '.join(DIS_PRESETS)}")
        self.preset = preset
        self.settings = {
            "FinestScale": finest_scale,
            "PatchSize": patch_size,
            "PatchStride": patch_stride,
            "GradientDescentIterations": gradient_descent_iterations,
            "VariationalRefinementIterations": variational_refinement_iterations,
            "VariationalRefinementAlpha": refinement_alpha,
            "VariationalRefinementDelta": refinement_delta,
            "VariationalRefinementGamma": refinement_gamma,
        }

    def _solver(self) -> cv2.DISOpticalFlow:
        # A new solver per call: OpenCV's object keeps buffers and is not thread-safe.
        solver = cv2.DISOpticalFlow_create(DIS_PRESETS[self.preset])
        for name, value in self.settings.items():
            if value is not None:
                getattr(solver, f"set{name}")(value)
        return solver

    def _flow(self, grey0: np.ndarray, grey1: np.ndarray) -> np.ndarray:
        return self._solver().calc(grey0, grey1, None)


class FarnebackFlow(OpenCVFlow):
    """Farnebäck's polynomial-expansion flow (SCIA 2003), OpenCV's implementation."""

    def __init__(self, pyr_scale: float = 0.5, levels: int = 5, winsize: int = 15, iterations: int = 3,
                 poly_n: int = 7, poly_sigma: float = 1.5, gaussian_window: bool = True) -> None:
        super().__init__()
        self.params = dict(pyr_scale=pyr_scale, levels=levels, winsize=winsize, iterations=iterations,
                           poly_n=poly_n, poly_sigma=poly_sigma,
                           flags=cv2.OPTFLOW_FARNEBACK_GAUSSIAN if gaussian_window else 0)

    def _flow(self, grey0: np.ndarray, grey1: np.ndarray) -> np.ndarray:
        return cv2.calcOpticalFlowFarneback(grey0, grey1, None, **self.params)


def build_dis(**options) -> DISFlow:
    """OpenCV DIS flow; see `DISFlow` for the options."""
    return DISFlow(**options)


def build_farneback(**options) -> FarnebackFlow:
    """OpenCV Farneback flow; see `FarnebackFlow` for the options."""
    return FarnebackFlow(**options)
