"""A weight-free generator: both frames' motion softmax-splatted to time t, holes filled
coarse to fine, both frames backward-warped along it and blended by visibility and time.

PerVFI's asymmetric principle without learning. Each frame's motion is splatted with an
occlusion-aware metric (its brightness-constancy error), so where two pixels land on one
spot the one that is visible in both frames wins. A frame that reaches a pixel of time t
(its splat covers it) may show it; one that does not (the pixel was occluded in it, or it
lies outside that frame) gives way to the other, and where both do the temporally nearer
frame leads. Pixels neither frame reaches take the motion of their surroundings.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops import backward_warp, forward_splat, resize_flow
from ..tiling import Region
from .base import check_inputs
from .blending import METRIC_CLIP


def warp_inside(image: Tensor, flow: Tensor, mode: str = "bilinear") -> tuple[Tensor, Tensor]:
    """`image` backward-warped along `flow`, and how much of each sample lies inside the
    frame (a warped plane of ones, clamped to [0, 1] against bicubic overshoot, B×1×H×W),
    in one sampling pass."""
    ones = torch.ones_like(image[:, :1])
    warped, inside = backward_warp(torch.cat([image, ones], 1), flow, mode).split([image.shape[1], 1], 1)
    return warped, inside.clamp(0, 1)


def brightness_error(img0: Tensor, img1: Tensor, flow01: Tensor) -> Tensor:
    """Mean absolute difference between img0 and img1 warped back along flow01, B×1×H×W;
    zero where the flow leaves the frame (nothing to compare with there)."""
    warped, inside = warp_inside(img1, flow01)
    return (img0 * inside - warped).abs().mean(1, keepdim=True)


def fill_holes(values: Tensor, weight: Tensor) -> Tensor:
    """Fill `values` where `weight` (B×1×H×W in [0, 1]) is low, coarse to fine.

    A pyramid of weighted 2×2 averages is built down to a few pixels; going back up, each
    level keeps its own weighted sum and takes the coarser level's fill, upsampled, for
    the part of the weight that is missing.
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

    `alpha` turns the brightness-constancy error (images in [0, 1]) into the softmax
    metric. The motion is splatted at `scale` of the frame size (classical flows are
    smooth, and often estimated at half resolution anyway); the frames are warped at full
    resolution with `sampling` (``bicubic`` or ``bilinear``). Defaults measured on Sintel
    and DAVIS triplets (see the README).
    """

    def __init__(self, alpha: float = 25.0, scale: float = 0.5, sampling: str = "bicubic") -> None:
        super().__init__()
        if not 0.0 < scale <= 1.0:
            raise ValueError(f"splat scale must lie in (0, 1], got {scale}")
        if sampling not in ("bicubic", "bilinear"):
            raise ValueError(f"unknown sampling {sampling!r}; choose bicubic or bilinear")
        self.alpha = alpha
        self.scale = scale
        self.sampling = sampling

    def motion_at(self, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor,
                  time: float) -> tuple[Tensor, Tensor]:
        """The motion 0→1 of the pixels at `time` (B×2×H×W, holes filled) and the share
        of frame 0 in covering each pixel (B×1×H×W in [0, 1], 0.5 where neither does)."""
        batch = img0.shape[0]
        # The two directions run as one batch: frame 0 moves by t·flow01, frame 1 by (1 − t)·flow10.
        images, flows = torch.cat([img0, img1]), torch.cat([flow01, flow10])
        metric = (-self.alpha * brightness_error(images, images.roll(batch, 0), flows)).clamp(-METRIC_CLIP, METRIC_CLIP)
        motion = torch.cat([flow01, -flow10])
        steps = torch.cat([flow01 * time, flow10 * (1 - time)])
        splat = forward_splat(motion, steps, metric, "soft", coverage=True)
        weight0, weight1 = splat.weight[:batch], splat.weight[batch:]
        joint = (splat.output[:batch] * weight0 + splat.output[batch:] * weight1) / (weight0 + weight1).clamp_min(1e-12)
        cover0, cover1 = splat.coverage[:batch].clamp(0, 1), splat.coverage[batch:].clamp(0, 1)
        either = cover0 + cover1
        joint = fill_holes(joint, either.clamp(0, 1))
        share0 = torch.where(either > 0, cover0 / either.clamp_min(1e-6), torch.full_like(either, 0.5))
        return joint, share0

    def interpolate(self, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor, time: float = 0.5,
                    zs: list[Tensor] | None = None, return_soft_masks: bool = False,
                    generator: torch.Generator | None = None,
                    region: Region | None = None) -> Tensor | tuple[Tensor, list[Tensor]]:
        """The frame at `time`, B×3×H×W in [0, 1] space (not clamped).

        Images RGB in [0, 1], flows in pixels (x then y), H and W multiples of 8. `zs`,
        `generator` and `region` belong to the generators' common call and are unused:
        the result is deterministic and needs nothing beyond the inputs. With
        `return_soft_masks`, also [the B×1×H×W blending weight of frame 0].
        """
        check_inputs(img0, img1, flow01, flow10, time)
        img0, img1, flow01, flow10 = (x.float() for x in (img0, img1, flow01, flow10))
        full = img0.shape[-2:]
        if self.scale < 1.0:
            size = (max(1, round(full[0] * self.scale)), max(1, round(full[1] * self.scale)))
            small0, small1 = (F.interpolate(x, size=size, mode="area") for x in (img0, img1))
            motion, share0 = self.motion_at(small0, small1, resize_flow(flow01, size), resize_flow(flow10, size), time)
            motion = resize_flow(motion, full)
            share0 = F.interpolate(share0, size=full, mode="bilinear", align_corners=False)
        else:
            motion, share0 = self.motion_at(img0, img1, flow01, flow10, time)
        warped0, inside0 = warp_inside(img0, -time * motion, self.sampling)
        warped1, inside1 = warp_inside(img1, (1 - time) * motion, self.sampling)
        # The nearer frame leads where both cover a pixel; samples outside a frame drop out.
        score0 = (1 - time) * share0 * inside0
        score1 = time * (1 - share0) * inside1
        scores = score0 + score1
        mask0 = torch.where(scores > 1e-6, score0 / scores.clamp_min(1e-6), share0)
        # Warped samples partly outside the frame are renormalised by their inside share.
        pred = (mask0 * warped0 + (1 - mask0) * warped1) / (mask0 * inside0 + (1 - mask0) * inside1).clamp_min(1e-6)
        return (pred, [mask0]) if return_soft_masks else pred


def build_splat(**options) -> SplatGenerator:
    """The weight-free splatting generator; see `SplatGenerator` for the options."""
    return SplatGenerator(**options)
