"""Zero padding to a multiple of a size, and cropping back."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


class Padder:
    """Pads H×W to multiples of `multiple` and crops results back.

    `mode="corner"` pads right and bottom (the PerVFI pipeline); `mode="center"` splits the
    padding evenly, the extra pixel going right/bottom (RAFT, GMA and GMFlow inference).
    `minimum` additionally pads small frames up to at least that many pixels per side.
    """

    def __init__(self, height: int, width: int, multiple: int = 8, mode: str = "corner",
                 minimum: int = 0) -> None:
        if mode not in ("corner", "center"):
            raise ValueError(f"unknown padding mode {mode!r}; expected 'corner' or 'center'")
        self.height, self.width = height, width
        pad_h = max(-height % multiple, _round_up(minimum, multiple) - height)
        pad_w = max(-width % multiple, _round_up(minimum, multiple) - width)
        if mode == "corner":
            self.pad = (0, pad_w, 0, pad_h)
        else:
            self.pad = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)

    @property
    def padded_size(self) -> tuple[int, int]:
        left, right, top, bottom = self.pad
        return self.height + top + bottom, self.width + left + right

    def apply(self, *tensors: Tensor) -> list[Tensor]:
        """Zero-pad each tensor (…×H×W)."""
        return [F.pad(t, self.pad) if any(self.pad) else t for t in tensors]

    def crop(self, *tensors: Tensor) -> list[Tensor]:
        """Crop each padded tensor back to the original H×W."""
        left, _, top, _ = self.pad
        return [t[..., top:top + self.height, left:left + self.width] for t in tensors]


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
