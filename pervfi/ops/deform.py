"""Modulated deformable convolution (DCNv2) that runs on every backend.

On CUDA, torchvision's `deform_conv2d` kernel is used. Elsewhere the same arithmetic is
done with `grid_sample` (zero padding, supported on every backend, MPS included) and one
matrix product: on the CPU that is about 3× faster than torchvision's kernel, and MPS
has no torchvision kernel before torchvision 0.23.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .precision import held_float32


def deform_conv2d(input: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None,
                  padding: int, mask: Tensor, top: int = 0) -> Tensor:
    """Stride-1, dilation-1 modulated deformable convolution with torchvision's conventions.

    `offset` is B×(2·G·K)×h×W with (dy, dx) pairs per group G and kernel tap K (row-major),
    `mask` is B×(G·K)×h×W; input channels are split into G consecutive groups. The output
    is the h rows from row `top` (a band of the frame: all H rows by default).
    """
    if input.is_cuda and top == 0 and offset.shape[-2] == input.shape[-2]:
        import torchvision  # only here: importing it costs seconds, and the CPU and MPS paths never need it

        return torchvision.ops.deform_conv2d(input, offset, weight, bias, padding=padding, mask=mask)
    return _deform_conv2d_by_sampling(input, offset, weight, bias, padding, mask, top)


def _deform_conv2d_by_sampling(input: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None,
                               padding: int, mask: Tensor, top: int) -> Tensor:
    batch, channels, height, width = input.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    taps = kernel_h * kernel_w
    groups = offset.shape[1] // (2 * taps)
    out_h, out_w = offset.shape[-2:]

    # Sampling positions in pixels: output position - padding + kernel tap + learned offset.
    tap_y, tap_x = torch.meshgrid(
        torch.arange(kernel_h, device=input.device, dtype=torch.float32),
        torch.arange(kernel_w, device=input.device, dtype=torch.float32),
        indexing="ij",
    )
    base_y = torch.arange(top, top + out_h, device=input.device, dtype=torch.float32).view(1, 1, out_h, 1) - padding
    base_x = torch.arange(out_w, device=input.device, dtype=torch.float32).view(1, 1, 1, out_w) - padding
    offset = offset.reshape(batch * groups, taps, 2, out_h, out_w)
    # Positions in float32 whatever the input's precision (bf16 steps by 2 pixels from 256 on).
    pos_y = base_y + tap_y.reshape(1, taps, 1, 1) + offset[:, :, 0].float()
    pos_x = base_x + tap_x.reshape(1, taps, 1, 1) + offset[:, :, 1].float()
    # align_corners=False maps pixel centre p to (2p + 1) / size - 1; zeros outside, as torchvision.
    grid = torch.stack([(2 * pos_x + 1) / width - 1, (2 * pos_y + 1) / height - 1], dim=-1)
    grouped = input.reshape(batch * groups, channels // groups, height, width)
    grid = held_float32("flow coordinates", grid.view(batch * groups, taps * out_h, out_w, 2))
    sampled = F.grid_sample(grouped.float(), grid,
                            mode="bilinear", padding_mode="zeros", align_corners=False)
    sampled = sampled.view(batch * groups, channels // groups, taps, out_h, out_w)
    sampled = sampled * mask.reshape(batch * groups, 1, taps, out_h, out_w)
    columns = sampled.view(batch, channels * taps, out_h * out_w)
    out = torch.matmul(weight.reshape(out_channels, channels * taps), columns)
    out = out.view(batch, out_channels, out_h, out_w)
    return out if bias is None else out + bias.view(1, -1, 1, 1)
