"""One training step's loss, as the authors' training code computes it (`src/train`)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from pervfi.core.errors import InputError, UnknownNameError

from .losses import LaplacianLoss, PerceptualLoss, imagenet_perceptual_loss

# Each recipe's loss: the weights of its terms (the configs pvfi-v00.yml and pvfi-vb.yml).
RECIPES: dict[str, dict[str, float]] = {
    "v00": {"nll": 1.0, "lap": 0.1, "per": 0.2},
    "vb": {"l1": 1.0, "lap": 0.2, "per": 0.1},
}
BATCH_KEYS = ("img0", "img1", "flow01", "flow10", "gt")
IMAGE_TERMS = ("lap", "per", "l1")  # what a v00 prediction with a NaN leaves out, as the reference does


def recipe_weights(recipe: str, changes: Mapping[str, float | None] | None = None) -> dict[str, float]:
    """The weights of `recipe`'s loss terms with the `changes` that are not None (the config's
    ``loss`` section); terms of weight 0 are left out, so ``per: 0`` needs no VGG19. An
    `UnknownNameError` names the recipes; an InputError a weight that cannot apply."""
    if recipe not in RECIPES:
        raise UnknownNameError(f"unknown training recipe {recipe!r}; expected one of {', '.join(RECIPES)}")
    weights = {**RECIPES[recipe], **{name: value for name, value in (changes or {}).items() if value is not None}}
    for name, value in weights.items():
        if value < 0:
            raise InputError(f"loss.{name} must not be negative, got {value:g}")
    if weights.get("nll") and recipe != "v00":
        raise InputError(f"loss.nll applies to v00 (its normalizing flow's likelihood); {recipe} has none")
    return {name: value for name, value in weights.items() if value > 0}


class TrainingLoss(nn.Module):
    """The loss of `recipe` ("v00" | "vb"), built once and moved to the device with its losses.

    Called as ``loss(generator, batch, noise=None)``; see `training_loss` for what it takes and
    returns. Nothing in it waits on the host: a v00 prediction with a NaN (which the reference
    trains on its NLL alone) is handled with device-side selections, not with ``.any()``.
    """

    def __init__(self, recipe: str, perceptual: nn.Module | None = None,
                 weights: Mapping[str, float] | None = None) -> None:
        super().__init__()
        self.recipe = recipe
        self.weights = recipe_weights(recipe) if weights is None else dict(weights)
        self.laplacian = LaplacianLoss()
        # VGG19 only when its term counts (``loss.per: 0`` trains with nothing to download)
        self.perceptual = (imagenet_perceptual_loss() if perceptual is None else perceptual) if "per" in self.weights else None

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
            terms = {**self._image_terms(seen, gt), "nll": out["nll"].mean()}
            kept = finite.to(terms["nll"].dtype)
            total = sum(weight * terms[name] * (kept if name in IMAGE_TERMS else 1)
                        for name, weight in self.weights.items())
            for name in IMAGE_TERMS:
                if name in terms:
                    terms[name] = torch.where(finite, terms[name], torch.full_like(terms[name], float("nan")))
            result.update(nll=out["nll"], heat=out["heat"])
        else:
            terms = self._image_terms(pred, gt)
            total = sum(weight * terms[name] for name, weight in self.weights.items())
        result.update(total=total, **{name: terms[name] for name in IMAGE_TERMS if name in terms})
        return result

    def _image_terms(self, pred: Tensor, gt: Tensor) -> dict[str, Tensor]:
        """The unweighted image losses: lap always (it is logged), l1 for vb or when weighted, per when weighted."""
        terms = {"lap": self.laplacian(pred, gt)}
        if self.recipe == "vb" or "l1" in self.weights:
            terms["l1"] = (pred - gt).abs().mean()
        if self.perceptual is not None:
            terms["per"] = self.perceptual(pred, gt)
        return terms


def training_loss(generator: nn.Module, batch: dict[str, Any], recipe: str,
                  noise: dict[str, Any] | None = None,
                  perceptual: PerceptualLoss | None = None,
                  weights: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The loss of one training step and what it was computed from (`TrainingLoss` built for one call).

    `generator`: ``build_generator(recipe)`` in train mode (or a DDP wrapper of it).
    `batch`: ``img0``, ``img1``, ``gt`` (B×3×H×W in [0, 1]), ``flow01``, ``flow10`` (pixels),
    optionally ``time`` (0.5). `noise`: the random draws to use instead of fresh ones,
    ``masks`` (three, coarse to fine), and for v00 ``dequant`` and ``zs`` (unit normals,
    before the heat scaling); any left out is drawn. `perceptual`: the VGG loss (default:
    on torchvision's ImageNet VGG19, downloaded on first use; never loaded when the term's
    weight is 0). `weights`: the terms' weights (default: the recipe's, `recipe_weights`).

    Returns ``total`` (differentiable: v00 ``mean(nll) + 0.1·lap + 0.2·per``, vb
    ``l1 + 0.2·lap + 0.1·per``), the unweighted terms ``lap``, ``per`` and ``nll`` (B,) +
    ``heat`` (v00) or ``l1`` (vb), ``pred`` (before clamping) and the soft ``masks``. `weights`
    (default: the recipe's) leave out the terms of weight 0 (``per`` 0: no VGG19). As in the
    reference, a v00 prediction with a NaN trains on its NLL alone (the other terms are NaN).
    """
    loss = TrainingLoss(recipe, perceptual, weights)
    return loss.to(batch["gt"].device)(generator, batch, noise=noise)
