"""A weight-free generator: the motion of both frames softmax-splatted to time t, holes
filled coarse to fine, both frames backward-warped and blended by visibility and time.

PerVFI's asymmetric principle without learning: each frame's motion is splatted with an
occlusion-aware metric (its brightness-constancy error), so where two pixels land on one
spot the one that is visible in both frames wins; a frame that does not reach a pixel
(it was occluded there) gets no say in it, and elsewhere the temporally nearer frame leads.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops import backward_warp, forward_splat
from ..tiling import Region
from .base import check_inputs
from .blending import METRIC_CLIP


def brightness_error(img0: Tensor, img1: Tensor, flow01: Tensor) -> Tensor:
    """Per-pixel mean absolute difference between img0 and img1 warped back along flow01,
    B×1×H×W; zero where the flow leaves the frame (nothing to compare with)."""
    ones = torch.ones_like(img1[:, :1])
    warped, inside = backward_warp(torch.cat([img1, ones], 1), flow01).split([3, 1], 1)
    return (img0 * inside - warped).abs().mean(1, keepdim=True)


def consistency_error(flow01: Tensor, flow10: Tensor) -> Tensor:
    """Forward-backward inconsistency |flow01 + flow10(x + flow01)| in pixels, B×1×H×W."""
    return (flow01 + backward_warp(flow10, flow01)).norm(dim=1, keepdim=True)


def fill_holes(values: Tensor, weight: Tensor) -> Tensor:
    """Fill `values` where `weight` (B×1×H×W in [0, 1]) is low, coarse to fine.

    A pyramid of weighted 2×2 averages is built down to a few pixels; going back up, each
    level keeps its own weighted average where it has weight and takes the coarser level's
    fill, upsampled, in proportion to what is missing.
    """
    numerators, weights = [values * weight], [weight]
    while min(weights[-1].shape[-2:]) > 2:
        numerators.append(F.avg_pool2d(numerators[-1], 2, ceil_mode=True))
        weights.append(F.avg_pool2d(weights[-1], 2, ceil_mode=True))
    filled = numerators[-1] / weights[-1].clamp_min(1e-6)
    for numerator, level_weight in zip(reversed(numerators[:-1]), reversed(weights[:-1])):
        coarse = F.interpolate(filled, size=numerator.shape[-2:], mode="bilinear", align_corners=False)
        filled = numerator + (1 - level_weight) * coarse
    return filled


class SplatGenerator(nn.Module):
    """Asymmetric softmax splatting without weights (see the module docstring).

    `alpha` scales the brightness-constancy error (images in [0, 1]) into the softmax
    metric; `beta` adds the forward-backward inconsistency (pixels) to it.
    """

    def __init__(self, alpha: float = 50.0, beta: float = 0.0, visibility: str = "weight",
                 time_power: float = 1.0, sampling: str = "bilinear", motion: str = "joint", gamma: float = 100.0) -> None:
        super().__init__()
        self.alpha = alpha
        self.beta = beta
        self.visibility = visibility
        self.time_power = time_power
        self.sampling = sampling
        self.motion = motion
        self.gamma = gamma

    def _metric(self, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor) -> Tensor:
        error = self.alpha * brightness_error(img0, img1, flow01)
        if self.beta:
            error = error + self.beta * consistency_error(flow01, flow10)
        return error.neg().clamp(-METRIC_CLIP, METRIC_CLIP)

    def interpolate(self, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor, time: float = 0.5,
                    zs: list[Tensor] | None = None, return_soft_masks: bool = False,
                    generator: torch.Generator | None = None,
                    region: Region | None = None) -> Tensor | tuple[Tensor, list[Tensor]]:
        """The frame at `time`, B×3×H×W in [0, 1] space (not clamped).

        Images RGB in [0, 1], flows in pixels (x then y), H and W multiples of 8. `zs`,
        `generator` and `region` are accepted for the generators' common call and unused:
        the result is deterministic and needs no context outside the inputs. With
        `return_soft_masks`, also [the B×1×H×W weight of frame 0].
        """
        check_inputs(img0, img1, flow01, flow10, time)
        img0, img1, flow01, flow10 = (x.float() for x in (img0, img1, flow01, flow10))
        # Both frames' motion (in units of 0→1) splatted to time t, each with its own metric.
        # The two directions run as one batch.
        motion = torch.cat([flow01, -flow10])
        metric = self._metric(torch.cat([img0, img1]), torch.cat([img1, img0]),
                              torch.cat([flow01, flow10]), torch.cat([flow10, flow01]))
        batch = img0.shape[0]
        steps = torch.cat([flow01 * time, flow10 * (1 - time)])
        splat = forward_splat(motion, steps, metric, "soft", coverage=True)
        weight0, weight1 = splat.weight[:batch], splat.weight[batch:]
        total = weight0 + weight1
        joint = (splat.output[:batch] * weight0 + splat.output[batch:] * weight1) / total.clamp_min(1e-12)
        coverage = (splat.coverage[:batch] + splat.coverage[batch:]).clamp(0, 1)
        joint = fill_holes(joint, coverage)
        if self.motion == "joint":
            motion0 = motion1 = joint
        else:
            cov0, cov1 = splat.coverage[:batch].clamp(0, 1), splat.coverage[batch:].clamp(0, 1)
            motion0 = splat.output[:batch] * cov0 + (1 - cov0) * joint
            motion1 = splat.output[batch:] * cov1 + (1 - cov1) * joint

        # A plane of ones warped along says how much of each sample lies inside the frame.
        ones = torch.ones_like(img0[:, :1])
        warped0, inside0 = backward_warp(torch.cat([img0, ones], 1), -time * motion0, self.sampling).split([3, 1], 1)
        warped1, inside1 = backward_warp(torch.cat([img1, ones], 1), (1 - time) * motion1, self.sampling).split([3, 1], 1)
        if self.visibility == "weight":
            share0 = weight0 / total.clamp_min(1e-12)
        else:
            cov0, cov1 = splat.coverage[:batch].clamp(0, 1), splat.coverage[batch:].clamp(0, 1)
            share0 = cov0 / (cov0 + cov1).clamp_min(1e-6)
        share0 = torch.where(total > 0, share0, torch.full_like(share0, 0.5))
        near0 = (1 - time) ** self.time_power
        near1 = time ** self.time_power
        score0 = near0 * share0 * inside0
        score1 = near1 * (1 - share0) * inside1
        mask0 = torch.where(score0 + score1 > 1e-6, score0 / (score0 + score1).clamp_min(1e-6), share0)
        pred = (mask0 * warped0 + (1 - mask0) * warped1) / (mask0 * inside0 + (1 - mask0) * inside1).clamp_min(1e-6)
        return (pred, [mask0]) if return_soft_masks else pred


def build_splat(**options) -> SplatGenerator:
    """The weight-free splatting generator; see `SplatGenerator` for the options."""
    return SplatGenerator(**options)
