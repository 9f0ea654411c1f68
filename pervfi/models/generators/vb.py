"""PerVFI-vb: the asymmetric-blending conditions decoded by a multi-scale convolutional
decoder (faster than v00's normalizing flow, deterministic)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from pervfi.ops import Region, upsample2x_corners

from .base import PerVFIGenerator
from .encoder import PYRAMID_CHANNELS
from .layers import Basic
from .normalizing_flow import unsqueeze2d


class MultiscaleDecoder(nn.Module):
    """Coarse to fine: each level is refined with the upsampled coarser one, and the
    finest (1/2 resolution, 128 channels) is turned into the frame by depth-to-space."""

    def __init__(self, channels: tuple[int, int, int] = PYRAMID_CHANNELS) -> None:
        super().__init__()
        c0, c1, c2 = channels
        self.conv3 = Basic((c2, 128, c1), pre_activation=False)
        self.conv2 = Basic((c1 * 2, 256, c0), pre_activation=False)
        self.conv1 = Basic((c0 * 2, 96, 128), pre_activation=False)
        self.tail = nn.Conv2d(128 // 4, 3, 3, padding="same")

    def forward(self, conds: list[Tensor], region: Region | None = None) -> Tensor:
        half, quarter, eighth = conds
        x = upsample2x_corners(self.conv3(eighth), region, scale=8)
        x = upsample2x_corners(self.conv2(torch.cat([x, quarter], 1)), region, scale=4)
        x = self.conv1(torch.cat([x, half], 1))
        return self.tail(unsqueeze2d(x))


class PerVFIvb(PerVFIGenerator):
    """PerVFI with the multi-scale decoder; `zs` and `rng` are ignored."""

    def __init__(self, dilate_size: int = 9) -> None:
        super().__init__(dilate_size)
        self.generator = MultiscaleDecoder(PYRAMID_CHANNELS)

    def decode(self, conds: list[Tensor], zs: list[Tensor] | None, rng: torch.Generator | None,
               region: Region | None) -> Tensor:
        return self.generator(conds, region)

    def forward(self, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor, gt: Tensor | None = None,
                time: float = 0.5, mask_noise: list[Tensor] | None = None) -> dict[str, Tensor | list[Tensor]]:
        """The training pass: ``pred`` (before clamping, [0, 1] space) and ``masks``
        (coarse to fine, with the training noise: see `AttentionMerge`). `gt` is not used."""
        conds, masks = self.condition(img0, img1, flow01, flow10, time, mask_noise=mask_noise)
        return {"pred": (self.decode(conds, None, None, None) + 1) / 2, "masks": masks}


def build_vb(dilate_size: int = 9) -> PerVFIvb:
    """The vb generator (architecture only; load weights separately)."""
    return PerVFIvb(dilate_size=dilate_size)
