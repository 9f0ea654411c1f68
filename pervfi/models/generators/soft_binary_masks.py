"""Soft-binary masks: per pyramid level, how much of the blend comes from the second
frame's aligned features instead of the first frame's splatted ones."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from pervfi.ops import float32_island, held_float32

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

    def forward(self, hole: Tensor, feature0: Tensor, feature1: Tensor, attention: Tensor | None = None) -> Tensor:
        """The mask; `attention` (B×width, from `attention`) replaces the channel attention
        of these features, e.g. the whole frame's for a tile."""
        mask_features = self.conv1(hole)
        if attention is None:
            attention = self.attention(self.attention_sums(feature0, feature1), hole.shape[-2:])
        return torch.tanh(torch.abs(self.conv2(mask_features * attention[:, :, None, None])))

    def attention_sums(self, feature0: Tensor, feature1: Tensor, window: FrameWindow | None = None) -> Tensor:
        """What the channel attention needs of the features: per input channel and kernel
        tap, the sum of the input that tap sees (B×C_in×taps), over the pixels of
        `window` that it owns (default: the whole frame). Owned parts of a partition of
        the frame add up to the whole frame's sums."""
        return tap_sums(torch.cat([feature0, feature1], 1), self.att.kernel_size, window)

    def attention(self, sums: Tensor, size: tuple[int, int]) -> Tensor:
        """The channel attention (B×width) from a frame's `attention_sums` and its size."""
        return self.fc(conv_mean_from_sums(self.att, sums, size[0] * size[1]))


class FrameWindow(NamedTuple):
    """A window of a feature map of a larger frame (level coordinates): where it starts,
    the frame's size, and the rows and columns of the frame it owns (start, stop)."""

    top: int
    left: int
    frame_height: int
    frame_width: int
    owned_rows: tuple[int, int]
    owned_cols: tuple[int, int]


def tap_sums(x: Tensor, kernel_size: tuple[int, int], window: FrameWindow | None = None) -> Tensor:
    """For a stride-1 "same" convolution over the whole frame: per channel and tap, the sum
    of the input pixels that tap sees (zero padding sees nothing), B×C×taps; restricted to
    the pixels `window` owns when `x` is a window of the frame."""
    height, width = x.shape[-2:]
    if window is None:
        window = FrameWindow(0, 0, height, width, (0, height), (0, width))
    kernel_h, kernel_w = kernel_size

    def seen(tap: int, pad: int, frame: int, owned: tuple[int, int], start: int) -> slice:
        low = max(0, tap - pad, owned[0]) - start
        high = min(frame + min(0, tap - pad), owned[1]) - start
        return slice(low, max(low, high))

    sums = []
    for i in range(kernel_h):
        rows = seen(i, (kernel_h - 1) // 2, window.frame_height, window.owned_rows, window.top)
        for j in range(kernel_w):
            cols = seen(j, (kernel_w - 1) // 2, window.frame_width, window.owned_cols, window.left)
            sums.append(x[:, :, rows, cols].sum((2, 3), dtype=torch.float32))
    return held_float32("soft-mask sums", torch.stack(sums, dim=-1))


def conv_mean_from_sums(conv: nn.Conv2d, sums: Tensor, pixels: int) -> Tensor:
    """``conv(x).mean((2, 3))`` for a stride-1 "same" convolution from `tap_sums(x)`,
    without convolving: each tap's weights applied to the sum of the input window that tap
    sees; C_in·taps multiply-adds per output channel instead of C_in·taps per pixel.

    Float32 whatever the precision, the sums averaged before the product: a large frame's
    sums pass fp16's range (65504), and so would their products with the weights."""
    with float32_island(sums.device.type):
        means = sums.float() / pixels
        mean = torch.einsum("bct,oct->bo", means, conv.weight.float().flatten(2))
        if conv.bias is not None:
            mean = mean + conv.bias.float()
    return held_float32("soft-mask means", mean)


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
                attentions: list[Tensor] | None = None,
                mask_noise: list[Tensor] | None = None) -> tuple[list[Tensor], list[Tensor]]:
        """Blended features fine to coarse, and the soft masks coarse to fine; `attentions`
        (fine to coarse) replace the levels' own channel attention."""
        blended, masks = [], []
        for i in range(2, -1, -1):
            attention = None if attentions is None else attentions[i]
            mask = self.softbinary[str(i)](holes[i], features0[i], features1[i], attention)
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
