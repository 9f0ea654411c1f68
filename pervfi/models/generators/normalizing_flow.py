"""The conditional normalizing flow that decodes PerVFI-v00's frame (Glow-style).

Three levels (1/2, 1/4, 1/8 of the frame after squeezing); each level has an actnorm, an
invertible 1×1 convolution, K flow steps (actnorm → invertible 1×1 conv → conditional
affine coupling) and a learned Gaussian prior. The first two levels split half of their
channels off as a latent. Sampling runs the flow backwards from noise; encoding runs it
forwards and gives the latents and the log-likelihood. For training, ActNorm initialises
itself from the first batch it sees in training mode (Glow's data-dependent init, over the
global batch when the batch is split across processes), and the 1×1 convolutions' inverse
and log-determinant stay on the autograd graph whenever their weight needs a gradient.

Under autocast (bf16/fp16) only the coupling and prior networks run in low precision: the
flow's state, its log-determinants and the 1×1 convolutions and their inverses stay
float32, so the invertible chain does not accumulate low-precision rounding.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pervfi.ops import channel_mean_std, float32_island, held_float32

LEVELS = 3
IMAGE_CHANNELS = 3


class ActNorm(nn.Module):
    """Per-channel affine normalisation: y = (exp(logs) + 1e-8)·(x + loc).

    A new module is uninitialised (`initialized` = 0, as in the reference); its first
    forward pass in training mode sets loc and logs so that that batch comes out with zero
    mean and unit standard deviation per channel. Trained weights have `initialized` = 1.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))
        # Whether `initialized` is known to be 1: spares a device synchronisation per
        # training step; reset whenever a state dict is loaded.
        self._known_initialized = False

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super()._load_from_state_dict(*args, **kwargs)
        self._known_initialized = False

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Data-dependent initialisation from `x` (the reference's constants: std + 1e-6,
        then 1/std + 1e-6); identical on every rank of a process group."""
        mean, std = channel_mean_std(x)
        self.loc.copy_(-mean.view_as(self.loc))
        self.logs.copy_(torch.log(1 / (std + 1e-6) + 1e-6).view_as(self.logs))
        self.initialized.fill_(1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training and not self._known_initialized:
            if not self.initialized:
                self.initialize(x)
            self._known_initialized = True
        logdet = x.shape[2] * x.shape[3] * self.logs.sum()
        return (torch.exp(self.logs) + 1e-8) * (x + self.loc), logdet

    def reverse(self, y: Tensor) -> Tensor:
        # The reference's inverse omits the 1e-8 of the forward pass; so do we.
        return y * torch.exp(-self.logs) - self.loc


def _inverse_and_logabsdet(weight: Tensor) -> tuple[Tensor, Tensor]:
    """The inverse (as a 1×1 kernel) and log|det| of a C×C×1×1 kernel, differentiable.

    In float32, on CUDA where the weight is there (`inv_ex`: no host synchronisation),
    else on the CPU: tiny matrices, and not every backend has linalg.
    """
    matrix = weight[:, :, 0, 0].float()
    if matrix.device.type != "cuda":
        matrix = matrix.cpu()
    inverse = torch.linalg.inv_ex(matrix).inverse[:, :, None, None].to(weight)
    return inverse, torch.linalg.slogdet(matrix).logabsdet.to(weight.device)


class InvConv2d(nn.Module):
    """Invertible 1×1 convolution (initialised to a random rotation). Its inverse and
    log-determinant are cached per weight version when no gradient is wanted (inference),
    and recomputed on the autograd graph when one is (training) or inside torch.compile
    (the cache's key and mutation would break the graph; tiny matrices)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.linalg.qr(torch.randn(channels, channels))[0][:, :, None, None])
        self._cache: dict[str, object] = {}

    def _derived(self) -> tuple[Tensor, Tensor]:
        if (torch.is_grad_enabled() and self.weight.requires_grad) or torch.compiler.is_compiling():
            return _inverse_and_logabsdet(self.weight)
        key = (self.weight.data_ptr(), self.weight._version, self.weight.device, self.weight.dtype)
        if self._cache.get("key") != key:
            inverse, logabsdet = _inverse_and_logabsdet(self.weight.detach())
            self._cache = {"key": key, "inverse": inverse, "logabsdet": logabsdet}
        return self._cache["inverse"], self._cache["logabsdet"]  # type: ignore[return-value]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        _, logabsdet = self._derived()
        with float32_island(x.device.type):
            return held_float32("invertible 1×1 convolutions", (F.conv2d(x.float(), self.weight.float()),
                                                                 x.shape[2] * x.shape[3] * logabsdet.float()))

    def reverse(self, y: Tensor) -> Tensor:
        inverse, _ = self._derived()
        with float32_island(y.device.type):
            return held_float32("invertible 1×1 convolutions", F.conv2d(y.float(), inverse.float()))


class ZeroConv2d(nn.Module):
    """3×3 convolution whose output is scaled by exp(3·scale); a new module outputs zeros
    (Glow's initialisation: couplings start as the identity, priors as N(0, 1))."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.scale = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x) * torch.exp(self.scale * 3)


class CouplingNet(nn.Module):
    """Predicts shift and log-scale of one half from the other half and the condition."""

    def __init__(self, in_channels: int, cond_channels: int, out_channels: int, width: int = 64) -> None:
        super().__init__()
        self.tail = nn.Sequential(
            nn.Conv2d(in_channels + cond_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 1),
            nn.ReLU(),
            ZeroConv2d(width, out_channels),
        )

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        return self.tail(torch.cat([x, cond], 1))


class ConditionalAffineCoupling(nn.Module):
    """The first half of the channels is scaled and shifted by functions of the second
    half and the condition; log-scale = scale·tanh(raw) + scale_shift."""

    def __init__(self, channels: int, cond_channels: int) -> None:
        super().__init__()
        self.affine = CouplingNet(channels // 2, cond_channels, channels)
        self.scale = nn.Parameter(torch.zeros(1))
        self.scale_shift = nn.Parameter(torch.zeros(1))

    def _shift_and_log_scale(self, passive: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        shift, raw = self.affine(passive, cond).float().chunk(2, 1)
        return shift, self.scale * torch.tanh(raw) + self.scale_shift

    def forward(self, x: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        active, passive = x.chunk(2, 1)
        shift, log_scale = self._shift_and_log_scale(passive, cond)
        return torch.cat([active * torch.exp(log_scale) + shift, passive], 1), log_scale.sum((1, 2, 3))

    def reverse(self, y: Tensor, cond: Tensor) -> Tensor:
        active, passive = y.chunk(2, 1)
        shift, log_scale = self._shift_and_log_scale(passive, cond)
        return torch.cat([(active - shift) * torch.exp(-log_scale), passive], 1)


class FlowStep(nn.Module):
    """actnorm → invertible 1×1 convolution → conditional affine coupling."""

    def __init__(self, channels: int, cond_channels: int) -> None:
        super().__init__()
        self.actnorm = ActNorm(channels)
        self.invconv = InvConv2d(channels)
        self.coupling = ConditionalAffineCoupling(channels, cond_channels)

    def forward(self, x: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        x, logdet0 = self.actnorm(x)
        x, logdet1 = self.invconv(x)
        x, logdet2 = self.coupling(x, cond)
        return x, logdet0 + logdet1 + logdet2

    def reverse(self, y: Tensor, cond: Tensor) -> Tensor:
        return self.actnorm.reverse(self.invconv.reverse(self.coupling.reverse(y, cond)))


def squeeze2d(x: Tensor) -> Tensor:
    """Space to depth by 2: B×C×H×W → B×4C×H/2×W/2 (channel-major, as Glow)."""
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)


def unsqueeze2d(x: Tensor) -> Tensor:
    """Depth to space by 2, the inverse of `squeeze2d`."""
    b, c, h, w = x.shape
    x = x.view(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c // 4, h * 2, w * 2)


def gaussian_log_p(x: Tensor, mean: Tensor, log_sd: Tensor) -> Tensor:
    return -0.5 * math.log(2 * math.pi) - log_sd - 0.5 * (x - mean) ** 2 * torch.exp(-2 * log_sd)


class Block(nn.Module):
    """One level: squeeze, actnorm, 1×1 conv, K flow steps, then split a latent off
    (or, at the last level, keep everything as the latent)."""

    def __init__(self, steps: int, in_channels: int, cond_channels: int, split: bool) -> None:
        super().__init__()
        channels = in_channels * 4
        self.split = split
        self.actnorm = ActNorm(channels)
        self.invconv = InvConv2d(channels)
        self.flows = nn.ModuleList(FlowStep(channels, cond_channels) for _ in range(steps))
        # The prior of a split latent depends on the kept half; at the last level it is
        # a learned constant (the convolution of zeros).
        self.prior = ZeroConv2d(channels // 2, channels) if split else ZeroConv2d(channels, channels * 2)

    def prior_of(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-sd of the latent, given the kept half (ignored at the last level)."""
        return self.prior(kept if self.split else torch.zeros_like(kept)).float().chunk(2, 1)

    def forward(self, x: Tensor, cond: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(kept half for the next level, log-det, log-prior per image, latent, and the
        latent standardised by its prior: the noise `reverse` turns back into it)."""
        x = squeeze2d(x)
        x, logdet = self.actnorm(x)
        x, det = self.invconv(x)
        logdet = logdet + det
        for flow in self.flows:
            x, det = held_float32("normalizing-flow state", flow(x, cond))
            logdet = logdet + det
        if self.split:
            kept, latent = x.chunk(2, 1)
        else:
            kept, latent = x, x
        mean, log_sd = self.prior_of(kept)
        log_p = gaussian_log_p(latent, mean, log_sd).flatten(1).sum(1)
        return kept, logdet, log_p, latent, (latent - mean) * torch.exp(-log_sd)

    def reverse(self, kept: Tensor, cond: Tensor, eps: Tensor) -> Tensor:
        """Sample this level from standard-prior noise `eps` (times heat) and unsqueeze."""
        mean, log_sd = self.prior_of(kept)
        latent = mean + torch.exp(log_sd) * eps
        x = torch.cat([kept, latent], 1) if self.split else latent
        for flow in reversed(self.flows):
            x = held_float32("normalizing-flow state", flow.reverse(x, cond))
        return unsqueeze2d(self.actnorm.reverse(self.invconv.reverse(x)))


class CondFlowNet(nn.Module):
    """Three levels of conditional flow; conditions are given fine to coarse."""

    def __init__(self, cond_channels: tuple[int, int, int], steps: int = 16) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            Block(steps, IMAGE_CHANNELS * 2**level, cond_channels[level], split=level < LEVELS - 1)
            for level in range(LEVELS)
        )

    def forward(self, x: Tensor, conds: list[Tensor]) -> tuple[Tensor, Tensor, list[Tensor], list[Tensor]]:
        """Encode: (log-prior per image, log-det per image, latents fine to coarse, and
        the same latents standardised by the prior, i.e. the noise that decodes to `x`)."""
        log_p = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        logdet = torch.zeros_like(log_p)
        latents, noise = [], []
        for block, cond in zip(self.blocks, conds):
            x, det, lp, latent, eps = block(x, cond)
            logdet = logdet + det
            log_p = log_p + lp
            latents.append(latent)
            noise.append(eps)
        return held_float32("log-determinants", (log_p, logdet)) + (latents, noise)

    def reverse(self, noise: list[Tensor], conds: list[Tensor]) -> Tensor:
        """Decode from noise (fine to coarse, already times heat) to an image in [-1, 1] space."""
        # At the last level the "kept" input only sets the prior's shape.
        x = held_float32("normalizing-flow state", noise)[-1]
        for block, cond, eps in zip(reversed(self.blocks), reversed(conds), reversed(noise)):
            x = block.reverse(x, cond, eps)
        return held_float32("normalizing-flow state", x)


def latent_shapes(height: int, width: int) -> list[tuple[int, int, int]]:
    """C×H×W of the three noise tensors for an H×W frame (H and W multiples of 8)."""
    shapes, channels = [], IMAGE_CHANNELS
    for level in range(1, LEVELS):
        channels *= 2
        shapes.append((channels, height >> level, width >> level))
    shapes.append((channels * 4, height >> LEVELS, width >> LEVELS))
    return shapes
