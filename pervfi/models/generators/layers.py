"""Convolution blocks of the Softmax-Splatting network that PerVFI builds on.

Parameter names (`netMain`, `netShortcut`) follow Niklaus & Liu's softsplat code, which
the official checkpoints were saved from.
"""
from __future__ import annotations

from torch import Tensor, nn


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=bias)


def prelu(channels: int) -> nn.PReLU:
    return nn.PReLU(num_parameters=channels, init=0.25)


class Basic(nn.Module):
    """Two 3×3 convolutions with PReLU, plus a (1×1 projected) skip connection.

    `pre_activation=True` is the reference's "relu-conv-relu-conv" (a PReLU before each
    convolution); otherwise "conv-relu-conv" (a PReLU between them).
    """

    def __init__(self, channels: tuple[int, int, int], pre_activation: bool) -> None:
        super().__init__()
        c_in, c_mid, c_out = channels
        if pre_activation:
            self.netMain = nn.Sequential(prelu(c_in), conv3x3(c_in, c_mid), prelu(c_mid), conv3x3(c_mid, c_out))
        else:
            self.netMain = nn.Sequential(conv3x3(c_in, c_mid), prelu(c_mid), conv3x3(c_mid, c_out))
        self.netShortcut = None if c_in == c_out else nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        skip = x if self.netShortcut is None else self.netShortcut(x)
        return self.netMain(x) + skip


class Downsample(nn.Module):
    """Halve the resolution: PReLU, strided 3×3 convolution, PReLU, 3×3 convolution."""

    def __init__(self, channels: tuple[int, int, int]) -> None:
        super().__init__()
        c_in, c_mid, c_out = channels
        self.netMain = nn.Sequential(prelu(c_in), conv3x3(c_in, c_mid, stride=2), prelu(c_mid), conv3x3(c_mid, c_out))

    def forward(self, x: Tensor) -> Tensor:
        return self.netMain(x)


class Upsample(nn.Module):
    """Double the resolution bilinearly, then PReLU, 3×3 convolution, PReLU, 3×3 convolution."""

    def __init__(self, channels: tuple[int, int, int]) -> None:
        super().__init__()
        c_in, c_mid, c_out = channels
        self.netMain = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            prelu(c_in), conv3x3(c_in, c_mid), prelu(c_mid), conv3x3(c_mid, c_out),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.netMain(x)
