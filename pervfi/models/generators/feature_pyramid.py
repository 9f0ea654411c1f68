"""The first half of asymmetric blending: both frames' feature pyramids, the first one
softmax-splatted to time t (with the holes the splat leaves), and the flow from t to the
second frame.

Only the splats depend on t: the pyramids and the splatting metrics are computed once per
frame pair (`FeaturePyramid.encode`) and reused for every output time (`at_time`).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from pervfi.ops import forward_splat, resize, resize_flow

from .encoder import FeatureEncoder, SoftMetric

# Softmax splatting exponentiates the metric; the reference clips it to ±20 first.
METRIC_CLIP = 20.0
# A pixel is a hole when (splatted ones) / (splatted ones + 1e-7) <= 0.5, as the
# reference's `binary_hole` decides from an "avg" splat of ones.
HOLE_THRESHOLD = 0.5


def _hole_mask(coverage: Tensor) -> Tensor:
    """1 where (almost) nothing was splatted, else 0."""
    normalised = coverage / (coverage + 1e-7)
    return (normalised <= HOLE_THRESHOLD).to(coverage.dtype)


class PairFeatures(NamedTuple):
    """What a frame pair gives the generator before a time is chosen: both pyramids (fine
    to coarse), the splatting metrics of both directions and both flows; batch B."""

    features0: list[Tensor]
    features1: list[Tensor]
    metric0: Tensor
    metric1: Tensor
    flow01: Tensor
    flow10: Tensor

    def select(self, rows: Tensor) -> "PairFeatures":
        """The pairs at batch indices `rows` (repeats allowed: one row per output time)."""
        def pick(x: Tensor) -> Tensor:
            return x.index_select(0, rows)

        return PairFeatures([pick(x) for x in self.features0], [pick(x) for x in self.features1],
                            pick(self.metric0), pick(self.metric1), pick(self.flow01), pick(self.flow10))


class FeaturePyramid(nn.Module):
    """Encodes both frames, splats the first frame's pyramid to time t, and estimates
    the flow from t to the second frame."""

    def __init__(self) -> None:
        super().__init__()
        self.netEncode = FeatureEncoder()
        self.netSoftmetric = SoftMetric()

    def encode(self, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor) -> PairFeatures:
        """The time-independent part: both pyramids and both splatting metrics."""
        batch = img0.shape[0]
        # Both frames, and the metrics of both directions, go through the networks as one batch.
        both = self.netEncode(torch.cat([img0, img1]))
        features0 = [level[:batch] for level in both]
        features1 = [level[batch:] for level in both]
        swapped = [torch.cat([level[batch:], level[:batch]]) for level in both]
        metrics = self.netSoftmetric(both, swapped, torch.cat([flow01, flow10]))
        return PairFeatures(features0, features1, metrics[:batch], metrics[batch:], flow01, flow10)

    def at_time(self, pair: PairFeatures,
                time: float | Tensor) -> tuple[list[tuple[Tensor, Tensor]], list[Tensor], Tensor]:
        """Per level (first frame splatted to `time`, second frame as is), the hole masks of
        the splat per level, and the flow t→1 at full resolution. `time` is a number or a
        B×1×1×1 tensor (one time per batch row)."""
        metric0t = pair.metric0 * (2 * time)
        metric1t = pair.metric1 * (2 * (1 - time))
        flow1t = (1 - time) * pair.flow10
        flow_t1 = -forward_splat(flow1t, flow1t, metric1t.neg().clamp(-METRIC_CLIP, METRIC_CLIP), "soft").output
        warped0, holes = self._splat_pyramid(pair.features0, metric0t, time * pair.flow01)
        return list(zip(warped0, pair.features1)), holes, flow_t1

    @staticmethod
    def _splat_pyramid(features: list[Tensor], metric: Tensor, flow: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Softmax-splat each level; metric and flow are resized level by level, as the reference does."""
        warped, holes = [], []
        for level, feature in enumerate(features):
            if level > 0:
                size = feature.shape[-2:]
                metric = resize(metric, size)
                flow = resize_flow(flow, size)
            result = forward_splat(feature, flow, metric.neg().clamp(-METRIC_CLIP, METRIC_CLIP), "soft", coverage=True)
            warped.append(result.output)
            holes.append(_hole_mask(result.coverage))
        return warped, holes
