"""Soft-binary masks: per pyramid level, how much of the blend comes from the second
frame's aligned features instead of the first frame's splatted ones."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .encoder import PYRAMID_CHANNELS


class SoftBinary(nn.Module):
    """The soft-binary mask of one level: where the hole mask (dilated by a large
    convolution) says the first frame is missing, lean on the second, gated by channel
    attention over both features."""

    def __init__(self, channels: int, dilate_size: int = 9, width: int = 64, reduction: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(1, width, dilate_size, padding="same", bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding="same", bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 1, bias=False),
        )
        self.att = nn.Conv2d(channels * 2, width, 3, padding="same")
        self.fc = nn.Sequential(
            nn.Linear(width, width // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(width // reduction, width, bias=False),
            nn.Sigmoid(),
        )
        self.conv2 = nn.Conv2d(width, 1, 1, bias=False)

    def forward(self, hole: Tensor, feature0: Tensor, feature1: Tensor) -> Tensor:
        mask_features = self.conv1(hole)
        attention = self.fc(conv_spatial_mean(self.att, torch.cat([feature0, feature1], 1)))[:, :, None, None]
        return torch.tanh(torch.abs(self.conv2(mask_features * attention)))


def conv_spatial_mean(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """``conv(x).mean((2, 3))`` for a stride-1 "same" convolution, without convolving.

    The mean of a convolution is each tap's weights applied to the sum of the input
    window that tap sees (zero padding contributes nothing): C_in·taps multiply-adds per
    output channel instead of C_in·taps per pixel.
    """
    kernel_h, kernel_w = conv.kernel_size
    height, width = x.shape[-2:]
    pad_top, pad_left = (kernel_h - 1) // 2, (kernel_w - 1) // 2
    window_sums = []
    for i in range(kernel_h):
        rows = slice(max(0, i - pad_top), height + min(0, i - pad_top))
        for j in range(kernel_w):
            cols = slice(max(0, j - pad_left), width + min(0, j - pad_left))
            window_sums.append(x[:, :, rows, cols].sum((2, 3)))
    sums = torch.stack(window_sums, dim=-1)  # B×C_in×taps
    mean = torch.einsum("bct,oct->bo", sums, conv.weight.flatten(2)) / (height * width)
    return mean if conv.bias is None else mean + conv.bias


# Training adds U(-MASK_NOISE, MASK_NOISE) to every soft mask (the reference's rand_bias).
MASK_NOISE = 0.005


class AttentionMerge(nn.Module):
    """Blends the two feature pyramids with soft-binary masks, coarse to fine.

    The masks get additive noise: `mask_noise` (three tensors, coarse to fine, the masks'
    shapes) when given, else U(-0.005, 0.005) drawn in training mode and none in inference.
    The noisy mask is the one that blends and the one returned.
    """

    def __init__(self, dilate_size: int = 9) -> None:
        super().__init__()
        self.softbinary = nn.ModuleDict()
        for i in range(2, -1, -1):
            self.softbinary[str(i)] = SoftBinary(PYRAMID_CHANNELS[i], dilate_size)

    def forward(self, features0: list[Tensor], features1: list[Tensor], holes: list[Tensor],
                mask_noise: list[Tensor] | None = None) -> tuple[list[Tensor], list[Tensor]]:
        """Blended features fine to coarse, and the soft masks coarse to fine."""
        blended, masks = [], []
        for i in range(2, -1, -1):
            mask = self.softbinary[str(i)](holes[i], features0[i], features1[i])
            if mask_noise is not None:
                noise = mask_noise[len(masks)]
                if noise.shape != mask.shape:
                    raise ValueError(f"expected mask noise of shape {tuple(mask.shape)}, got {tuple(noise.shape)}")
                mask = mask + noise.to(mask)
            elif self.training:
                mask = mask + (torch.rand_like(mask) * 2 - 1) * MASK_NOISE
            masks.append(mask)
            blended.insert(0, features0[i] * (1 - mask) + features1[i] * mask)
        return blended, masks
