"""Forward (softmax) splatting in plain, vectorised PyTorch.

Each source pixel (x, y) moves to (x + u, y + v) and adds its value, times a bilinear
weight, to the four integer neighbours of that point (Niklaus & Liu, "Softmax Splatting
for Video Frame Interpolation", CVPR 2020). Points that are not finite are dropped and
neighbours outside the frame are skipped, as in the reference CUDA kernel. The sums are
done in float32 and in a fixed order on every device (`add_rows`), so a frame splats to the
same bits on every run, however the work is batched or split.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .precision import float32_island, held_float32

# The reference adds this to the splatted weight before dividing (softsplat.py, "addeps").
NORMALIZE_EPS = 1e-7
MODES = ("sum", "avg", "linear", "soft")


def add_rows(out: Tensor, index: Tensor, rows: Tensor) -> Tensor:
    """``out[index[i]] += rows[i]`` for every i, in place, in the same order on every run.

    CUDA's `index_add_` adds with float atomics, in whatever order the threads arrive;
    CUDA's `index_put_(accumulate=True)` sorts the indices (stably) and adds each target's
    rows in their order, deterministically (ATen's index_put_with_sort). The CPU's
    `index_add_` has no atomics and is several times faster than its `index_put_`.
    Compiled code (inductor) keeps a fixed order only under deterministic algorithms
    (`pervfi.runtime.determinism`).
    """
    if out.is_cuda:
        return out.index_put_((index,), rows, accumulate=True)
    return out.index_add_(0, index, rows)


def _splat_sum(values: Tensor, flow: Tensor) -> Tensor:
    """Sum-splat `values` (B×C×H×W) along `flow` (B×2×H×W, pixels, x then y)."""
    batch, channels, height, width = values.shape
    xs = torch.arange(width, device=flow.device, dtype=flow.dtype).view(1, 1, width)
    ys = torch.arange(height, device=flow.device, dtype=flow.dtype).view(1, height, 1)
    target_x = xs + flow[:, 0]
    target_y = ys + flow[:, 1]
    finite = torch.isfinite(target_x) & torch.isfinite(target_y)
    # Non-finite targets are replaced by 0 so that floor() and the index stay valid;
    # their contributions are zeroed below.
    target_x = torch.where(finite, target_x, torch.zeros_like(target_x))
    target_y = torch.where(finite, target_y, torch.zeros_like(target_y))
    west = torch.floor(target_x)
    north = torch.floor(target_y)
    east, south = west + 1, north + 1

    # Bilinear weights exactly as the reference kernel writes them.
    corners = (
        (west, north, (east - target_x) * (south - target_y)),
        (east, north, (target_x - west) * (south - target_y)),
        (west, south, (east - target_x) * (target_y - north)),
        (east, south, (target_x - west) * (target_y - north)),
    )
    pixels = values.permute(0, 2, 3, 1).reshape(batch * height * width, channels)
    out = values.new_zeros(batch * height * width, channels)
    batch_offset = (torch.arange(batch, device=flow.device) * (height * width)).view(batch, 1, 1)
    for corner_x, corner_y, weight in corners:
        inside = finite & (corner_x >= 0) & (corner_x < width) & (corner_y >= 0) & (corner_y < height)
        index = batch_offset + corner_y.long().clamp(0, height - 1) * width + corner_x.long().clamp(0, width - 1)
        weight = torch.where(inside, weight, torch.zeros_like(weight)).reshape(-1, 1)
        contribution = torch.where(weight != 0, pixels * weight, torch.zeros_like(pixels))
        add_rows(out, index.reshape(-1), contribution)
    return out.view(batch, height, width, channels).permute(0, 3, 1, 2)


class SplatResult(NamedTuple):
    """A splat, the splatted weight it was divided by (before the epsilon), and, when
    asked for, the coverage: the splatted bilinear weight of a plane of ones."""

    output: Tensor
    weight: Tensor
    coverage: Tensor | None = None


def forward_splat(
    values: Tensor, flow: Tensor, metric: Tensor | None = None, mode: str = "sum",
    coverage: bool = False,
) -> SplatResult:
    """Splat `values` along `flow` and return the output with its splatted weight.

    `mode` is one of ``sum`` (no normalisation), ``avg`` (weight 1), ``linear`` (weight
    `metric`) or ``soft`` (weight ``exp(metric)``). With `coverage`, a plane of ones is
    splatted in the same pass: where it is (near) zero, nothing arrived (a hole).
    Computation is float32 whatever the input dtype, and autocast is off inside.
    """
    if mode not in MODES:
        raise ValueError(f"unknown splatting mode {mode!r}; expected one of {MODES}")
    if (metric is None) != (mode in ("sum", "avg")):
        raise ValueError(f"mode {mode!r} {'needs' if metric is None else 'takes no'} metric")
    if values.shape[-2:] != flow.shape[-2:] or flow.shape[1] != 2:
        raise ValueError(
            f"expected flow B×2×{values.shape[-2]}×{values.shape[-1]}, got {tuple(flow.shape)}"
        )
    with float32_island(values.device.type):
        values, flow = values.float(), flow.float()
        if mode in ("sum", "avg"):
            weight = torch.ones_like(values[:, :1])
        elif mode == "linear":
            weight = metric.float()
        else:
            weight = metric.float().exp()
        scaled = values if mode in ("sum", "avg") else values * weight
        planes = [scaled, weight]
        if coverage and mode != "avg":  # in avg mode the weight is the coverage already
            planes.append(torch.ones_like(weight))
        splatted = _splat_sum(torch.cat(planes, 1), flow)
        channels = values.shape[1]
        output, splatted_weight = splatted[:, :channels], splatted[:, channels:channels + 1]
        if mode != "sum":
            output = output / (splatted_weight + NORMALIZE_EPS)
        covered = None
        if coverage:
            covered = splatted_weight if mode == "avg" else splatted[:, channels + 1:]
        return held_float32("softmax splatting", SplatResult(output, splatted_weight, covered))


def softsplat(values: Tensor, flow: Tensor, metric: Tensor | None = None, mode: str = "sum") -> Tensor:
    """Forward-splat `values` along `flow`; the reference `softsplat` function."""
    return forward_splat(values, flow, metric, mode).output
