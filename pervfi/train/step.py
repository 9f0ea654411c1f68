"""One training step's loss, as the authors' training code computes it (`src/train`)."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pervfi.core.errors import UnknownNameError

from .losses import LaplacianLoss, PerceptualLoss, imagenet_perceptual_loss

# Each recipe's loss: the weights of its terms (the configs pvfi-v00.yml and pvfi-vb.yml).
RECIPES: dict[str, dict[str, float]] = {
    "v00": {"nll": 1.0, "lap": 0.1, "per": 0.2},
    "vb": {"l1": 1.0, "lap": 0.2, "per": 0.1},
}
BATCH_KEYS = ("img0", "img1", "flow01", "flow10", "gt")
IMAGE_TERMS = ("lap", "per")  # what a v00 prediction with a NaN leaves out, as the reference does


def recipe_weights(recipe: str) -> dict[str, float]:
    """The weights of `recipe`'s loss terms; `UnknownNameError` naming the recipes otherwise."""
    if recipe not in RECIPES:
        raise UnknownNameError(f"unknown training recipe {recipe!r}; expected one of {', '.join(RECIPES)}")
    return RECIPES[recipe]


class TrainingLoss(nn.Module):
    """The loss of `recipe` ("v00" | "vb"), built once and moved to the device with its losses.

    Called as ``loss(generator, batch, noise=None)``; see `training_loss` for what it takes and
    returns. Nothing in it waits on the host: a v00 prediction with a NaN (which the reference
    trains on its NLL alone) is handled with device-side selections, not with ``.any()``.
    """

    def __init__(self, recipe: str, perceptual: nn.Module | None = None) -> None:
        super().__init__()
        self.recipe, self.weights = recipe, recipe_weights(recipe)
        self.laplacian = LaplacianLoss()
        self.perceptual = imagenet_perceptual_loss() if perceptual is None else perceptual

    def forward(self, generator: nn.Module, batch: dict[str, Any], noise: dict[str, Any] | None = None
                ) -> dict[str, Any]:
        missing = [key for key in BATCH_KEYS if key not in batch]
        if missing:
            raise ValueError(f"the training batch lacks {', '.join(missing)}")
        noise = noise or {}
        draws = {"mask_noise": noise.get("masks")}
        if self.recipe == "v00":
            draws.update(dequant=noise.get("dequant"), zs=noise.get("zs"))
        gt = batch["gt"]
        out = generator(batch["img0"], batch["img1"], batch["flow01"], batch["flow10"], gt,
                        time=batch.get("time", 0.5), **draws)
        pred = out["pred"]
        result: dict[str, Any] = {"pred": pred, "masks": out["masks"]}
        if self.recipe == "v00":
            # With a NaN in pred the image losses see a finite stand-in that passes no gradient, and
            # count zero: the total is the NLL's, as the reference's, and the logged terms are NaN.
            finite = ~torch.isnan(pred).any()
            seen = torch.where(finite, pred, pred.detach().nan_to_num(0.0))
            terms = {"lap": self.laplacian(seen, gt), "per": self.perceptual(seen, gt), "nll": out["nll"].mean()}
            kept = finite.to(terms["nll"].dtype)
            total = sum(weight * terms[name] * (kept if name in IMAGE_TERMS else 1)
                        for name, weight in self.weights.items())
            for name in IMAGE_TERMS:
                terms[name] = torch.where(finite, terms[name], torch.full_like(terms[name], float("nan")))
            result.update(nll=out["nll"], heat=out["heat"])
        else:
            terms = {"lap": self.laplacian(pred, gt), "per": self.perceptual(pred, gt), "l1": (pred - gt).abs().mean()}
            total = sum(weight * terms[name] for name, weight in self.weights.items())
            result["l1"] = terms["l1"]
        result.update(total=total, lap=terms["lap"], per=terms["per"])
        return result


def training_loss(generator: nn.Module, batch: dict[str, Any], recipe: str,
                  noise: dict[str, Any] | None = None,
                  perceptual: PerceptualLoss | None = None) -> dict[str, Any]:
    """The loss of one training step and what it was computed from (`TrainingLoss` built for one call).

    `generator`: ``build_generator(recipe)`` in train mode (or a DDP wrapper of it).
    `batch`: ``img0``, ``img1``, ``gt`` (B×3×H×W in [0, 1]), ``flow01``, ``flow10`` (pixels),
    optionally ``time`` (0.5). `noise`: the random draws to use instead of fresh ones,
    ``masks`` (three, coarse to fine), and for v00 ``dequant`` and ``zs`` (unit normals,
    before the heat scaling); any left out is drawn. `perceptual`: the VGG loss (default:
    on torchvision's ImageNet VGG19, downloaded on first use).

    Returns ``total`` (differentiable: v00 ``mean(nll) + 0.1·lap + 0.2·per``, vb
    ``l1 + 0.2·lap + 0.1·per``), the unweighted terms ``lap``, ``per`` and ``nll`` (B,) +
    ``heat`` (v00) or ``l1`` (vb), ``pred`` (before clamping) and the soft ``masks``. As in
    the reference, a v00 prediction with a NaN leaves lap and per out of the total (they are NaN).
    """
    loss = TrainingLoss(recipe, perceptual)
    return loss.to(batch["gt"].device)(generator, batch, noise=noise)
