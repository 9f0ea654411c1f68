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

from pervfi.ops import Region, backward_warp, forward_splat

from .base import check_inputs
from .feature_pyramid import METRIC_CLIP

# Frame sides are multiples of 8 (check_inputs), so these factors divide them evenly.
DOWNSCALES = (1, 2, 4, 8)
# By default the motion is splatted at 1/4 of the frame size, less reduced where that
# would leave the shorter side under this many pixels (small frames, small objects).
AUTO_DOWNSCALE, MIN_SPLAT_SIDE = 4, 96
# Each frame keeps this much say even where the other one alone covers a pixel, so that
# a pixel whose only covering frame samples outside itself still gets a value.
SHARE_FLOOR = 1e-3


def warp_inside(image: Tensor, flow: Tensor, mode: str = "bilinear") -> tuple[Tensor, Tensor]:
    """`image` backward-warped along `flow` (zero outside the frame), and the weight its
    samples drew from inside the frame (a warped plane of ones, B×1×H×W: 1 inside, 0 far
    outside; bicubic may overshoot 1 near the border, which keeps dividing by it exact,
    while its undershoot is cut at 0), in one sampling pass."""
    with_ones = F.pad(image, (0, 0, 0, 0, 0, 1), value=1.0)  # one more channel, all ones
    warped, inside = backward_warp(with_ones, flow, mode).split([image.shape[1], 1], 1)
    return warped, inside.clamp_min(0)


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


def auto_downscale(height: int, width: int) -> int:
    """AUTO_DOWNSCALE, halved while the shorter side would drop under MIN_SPLAT_SIDE."""
    factor = AUTO_DOWNSCALE
    while factor > 1 and min(height, width) // factor < MIN_SPLAT_SIDE:
        factor //= 2
    return factor


class SplatGenerator(nn.Module):
    """Asymmetric softmax splatting without weights (see the module docstring).

    `alpha` turns the brightness-constancy error (images in [0, 1]) into the softmax
    metric. The motion is splatted at 1/`downscale` of the frame size (1, 2, 4 or 8, so
    the sides, multiples of 8, divide evenly; None: 4, or less where the shorter side
    would drop under MIN_SPLAT_SIDE): classical flows are smooth, and splatting at a
    quarter scored as well as at full size on real frames, for a sixteenth of the work,
    while small frames with small objects need the detail. The frames are warped at full
    resolution with `sampling` (``bicubic`` or ``bilinear``). Defaults measured on Sintel
    and DAVIS triplets (see the README).
    """

    def __init__(self, alpha: float = 25.0, downscale: int | None = None, sampling: str = "bicubic") -> None:
        super().__init__()
        if downscale is not None and downscale not in DOWNSCALES:
            raise ValueError(f"splat downscale must be one of {DOWNSCALES}, got {downscale}")
        if sampling not in ("bicubic", "bilinear"):
            raise ValueError(f"unknown sampling {sampling!r}; choose bicubic or bilinear")
        self.alpha = alpha
        self.downscale = downscale
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
                    rng: torch.Generator | None = None,
                    region: Region | None = None) -> Tensor | tuple[Tensor, list[Tensor]]:
        """The frame at `time`, B×3×H×W in [0, 1] space (not clamped).

        Images RGB in [0, 1], flows in pixels (x then y), H and W multiples of 8. `zs`,
        `rng` and `region` belong to the generators' common call and are unused:
        the result is deterministic and needs nothing beyond the inputs. With
        `return_soft_masks`, also [the B×1×H×W blending weight of frame 0].
        """
        check_inputs(img0, img1, flow01, flow10, time)
        img0, img1, flow01, flow10 = (x.float() for x in (img0, img1, flow01, flow10))
        factor = self.downscale or auto_downscale(*img0.shape[-2:])
        if factor > 1:
            small0, small1, small01, small10 = (F.avg_pool2d(x, factor) for x in (img0, img1, flow01, flow10))
            motion, share0 = self.motion_at(small0, small1, small01 / factor, small10 / factor, time)
            both = F.interpolate(torch.cat([motion * factor, share0], 1), scale_factor=factor, mode="bilinear",
                                 align_corners=False)
            motion, share0 = both[:, :2], both[:, 2:]
        else:
            motion, share0 = self.motion_at(img0, img1, flow01, flow10, time)
        # Both frames warped in one pass: frame 0 back by t·motion, frame 1 on by (1 − t)·motion.
        warped, inside = warp_inside(torch.cat([img0, img1]), torch.cat([-time * motion, (1 - time) * motion]),
                                     self.sampling)
        batch = img0.shape[0]
        # The nearer frame leads where both cover a pixel; a frame sampling outside itself drops out.
        # The warped values are zero-padded, i.e. scaled by their inside share: dividing by the
        # weighted inside shares renormalises them.
        weight0 = (1 - time) * (share0 + SHARE_FLOOR) * inside[:batch]
        weight1 = time * (1 - share0 + SHARE_FLOOR) * inside[batch:]
        norm = (weight0 * inside[:batch] + weight1 * inside[batch:]).clamp_min(1e-6)
        pred = (weight0 * warped[:batch] + weight1 * warped[batch:]) / norm
        if return_soft_masks:
            return pred, [weight0 * inside[:batch] / norm]
        return pred


def build_splat(**options) -> SplatGenerator:
    """The weight-free splatting generator; see `SplatGenerator` for the options."""
    return SplatGenerator(**options)
