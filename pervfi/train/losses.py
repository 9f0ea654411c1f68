"""The reference's image losses: a Laplacian-pyramid L1 and a VGG19 perceptual distance."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pervfi.core.errors import CheckpointError

# LapLoss: a 5×5 binomial kernel, reflect padding, five bands.
BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)
LAPLACIAN_LEVELS = 5
# VGGPerceptualLoss: relu1_1 … relu5_1 (outputs of features[1, 6, 11, 20, 29]) with the
# reference's weights, each distance scaled by 0.1, on ImageNet-normalised images.
VGG_TAPS = (1, 6, 11, 20, 29)
VGG_TAP_WEIGHTS = (1 / 2.6, 1 / 4.8, 1 / 3.7, 1 / 5.6, 10 / 1.5)
VGG_SCALE = 0.1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"


def _check_pair(pred: Tensor, gt: Tensor) -> None:
    if pred.dim() != 4 or pred.shape != gt.shape:
        raise ValueError(f"expected pred and gt of one B×C×H×W shape, got {tuple(pred.shape)} and {tuple(gt.shape)}")


class LaplacianLoss(nn.Module):
    """Mean over `levels` Laplacian bands of the L1 distance between pred's and gt's bands.

    Per level: down = blur(cur)[::2, ::2]; up = 4·blur(zero-interleaved down); band = cur − up;
    cur = down (blur: the binomial kernel, reflect padding). H and W: multiples of
    2**levels, at least 2**(levels + 1) for five levels' reflect padding.
    """

    def __init__(self, levels: int = LAPLACIAN_LEVELS) -> None:
        super().__init__()
        self.levels = levels
        taps = torch.tensor(BINOMIAL)
        self.register_buffer("kernel", (torch.outer(taps, taps) / taps.sum() ** 2)[None, None], persistent=False)

    def _blur(self, x: Tensor, gain: float = 1.0) -> Tensor:
        kernel = (self.kernel * gain).to(x).expand(x.shape[1], 1, -1, -1)
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=x.shape[1])

    def bands(self, x: Tensor) -> list[Tensor]:
        """The Laplacian pyramid of `x` without its last low-pass, fine to coarse."""
        bands = []
        for _ in range(self.levels):
            down = self._blur(x)[:, :, ::2, ::2]
            batch, channels, height, width = down.shape
            zeros = torch.zeros_like(down)
            interleaved = torch.stack([torch.stack([down, zeros], -1), torch.stack([zeros, zeros], -1)], -3)
            up = self._blur(interleaved.reshape(batch, channels, height * 2, width * 2), gain=4.0)
            bands.append(x - up)
            x = down
        return bands

    def forward(self, pred: Tensor, gt: Tensor) -> Tensor:
        _check_pair(pred, gt)
        multiple, smallest = 2**self.levels, 2 ** (self.levels + 1)
        height, width = pred.shape[-2:]
        if height % multiple or width % multiple or min(height, width) < smallest:
            raise ValueError(f"the Laplacian loss needs H and W multiples of {multiple} and at least {smallest}, "
                             f"got {height}×{width}")
        both = self.bands(torch.cat([pred, gt]))
        batch = pred.shape[0]
        return sum(F.l1_loss(band[:batch], band[batch:]) for band in both) / self.levels


class PerceptualLoss(nn.Module):
    """The reference's VGG perceptual loss on images in [0, 1]:
    Σ_k w_k · 0.1 · mean|φ_k(pred) − φ_k(gt)| over relu1_1 … relu5_1 of VGG19, gt's branch
    without gradient. `vgg19` is a torchvision VGG19 (or its ``features``) whose weights the
    caller loaded; it is frozen here.
    """

    def __init__(self, vgg19: nn.Module) -> None:
        super().__init__()
        features = getattr(vgg19, "features", vgg19)
        self.features = features[: VGG_TAPS[-1] + 1].requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def imagenet(cls) -> PerceptualLoss:
        """On torchvision's ImageNet VGG19, downloaded into the torch hub cache on first use."""
        import torchvision

        vgg19 = torchvision.models.vgg19(weights=None)
        state = torch.load(_hub_file(VGG19_URL), map_location="cpu", weights_only=True)
        vgg19.load_state_dict(state)
        return cls(vgg19)

    def _taps(self, x: Tensor) -> list[Tensor]:
        x = (x - self.mean.to(x)) / self.std.to(x)
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in VGG_TAPS:
                taps.append(x)
        return taps

    def forward(self, pred: Tensor, gt: Tensor) -> Tensor:
        _check_pair(pred, gt)
        with torch.no_grad():
            targets = self._taps(gt)
        distances = (weight * (a - b).abs().mean() for weight, a, b in zip(VGG_TAP_WEIGHTS, self._taps(pred), targets))
        return VGG_SCALE * sum(distances)


def _hub_file(url: str) -> Path:
    """The torch-hub cache file of `url`, downloaded when absent; `CheckpointError` naming
    the file and the folder to put it in when it cannot be had."""
    target = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(target), progress=True)  # tqdm on stderr
        except OSError as error:  # URLError is an OSError
            raise CheckpointError(f"VGG19 weights {target.name} are not in {target.parent} and could not be "
                                  f"downloaded ({error}); put the file from {url} there, or train without the "
                                  "perceptual term (loss.per=0)") from None
    return target


@lru_cache(maxsize=1)
def imagenet_perceptual_loss() -> PerceptualLoss:
    """One `PerceptualLoss.imagenet()` per process (loaded once, moved to the device of use)."""
    return PerceptualLoss.imagenet()
