"""The metrics of one evaluation run: which were asked for, which could be loaded, and
the scores of one interpolated frame."""
from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from pervfi.core.errors import UnknownNameError

from . import pixel as metrics
from .perceptual import PERCEPTUAL_METRICS, MetricUnavailable, PerceptualMetric, ScoredFrame

log = logging.getLogger(__name__)

PIXEL_METRICS = {
    "psnr": metrics.psnr,
    "ssim": metrics.ssim,
    "ie": metrics.interpolation_error,
}
METRIC_NAMES = (*PIXEL_METRICS, *PERCEPTUAL_METRICS)
# Display names and whether higher is better, for tables.
METRIC_LABELS = {"psnr": "PSNR↑", "ssim": "SSIM↑", "ie": "IE↓", "lpips": "LPIPS↓", "dists": "DISTS↓",
                 "flolpips": "FloLPIPS↓"}


def metric_names(metrics: str | Sequence[str]) -> list[str]:
    """The metrics asked for, lower-case: a list, or one comma-separated string ("psnr,ssim,ie")."""
    names = metrics.split(",") if isinstance(metrics, str) else metrics
    return [name.strip().lower() for name in names if name.strip()]


class MetricSuite:
    """The requested metrics, loaded once. A perceptual metric whose weights or package
    cannot be had is kept in `unavailable` with the reason, and scores as None."""

    def __init__(self, names: str | Sequence[str], device: torch.device, offline: bool) -> None:
        names = metric_names(names)
        unknown = [name for name in names if name not in METRIC_NAMES]
        if unknown:
            raise UnknownNameError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRIC_NAMES)}")
        self.names = list(dict.fromkeys(names))
        self.unavailable: dict[str, str] = {}
        self._perceptual: dict[str, PerceptualMetric] = {}
        for name in self.names:
            if name in PERCEPTUAL_METRICS:
                try:
                    self._perceptual[name] = PERCEPTUAL_METRICS[name](device, offline)
                except MetricUnavailable as reason:
                    log.warning("%s: n/a (%s)", name, reason)
                    self.unavailable[name] = str(reason)

    def score(self, frame: ScoredFrame) -> dict[str, float | None]:
        """Every requested metric for one frame; None for the unavailable ones."""
        scores: dict[str, float | None] = {}
        for name in self.names:
            if name in PIXEL_METRICS:
                scores[name] = PIXEL_METRICS[name](frame.pred, frame.gt).item()
            elif name in self._perceptual:
                scores[name] = self._perceptual[name](frame)
            else:
                scores[name] = None
        return scores
