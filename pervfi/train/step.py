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


def training_loss(generator: nn.Module, batch: dict[str, Any], recipe: str,
                  noise: dict[str, Any] | None = None,
                  perceptual: PerceptualLoss | None = None,
                  weights: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The loss of one training step and what it was computed from.

    `generator`: ``pervfi.build_generator(recipe)`` in train mode (or a DDP wrapper of it).
    `batch`: ``img0``, ``img1``, ``gt`` (B×3×H×W in [0, 1]), ``flow01``, ``flow10`` (pixels),
    optionally ``time`` (0.5). `noise`: the random draws to use instead of fresh ones,
    ``masks`` (three, coarse to fine), and for v00 ``dequant`` and ``zs`` (unit normals,
    before the heat scaling); any left out is drawn. `perceptual`: the VGG loss (default:
    on torchvision's ImageNet VGG19, downloaded on first use; never loaded when the term's
    weight is 0). `weights`: the terms' weights (default: the recipe's, `recipe_weights`).

    Returns ``total`` (differentiable: v00 ``mean(nll) + 0.1·lap + 0.2·per``, vb
    ``l1 + 0.2·lap + 0.1·per``), the unweighted terms ``lap``, ``per`` and ``nll`` (B,) +
    ``heat`` (v00) or ``l1`` (vb), ``pred`` (before clamping) and the soft ``masks``; a term
    of weight 0 (``per``, ``l1``) is not computed. As in the reference, a v00 prediction with
    a NaN leaves lap and per out of the total.
    """
    weights = recipe_weights(recipe) if weights is None else dict(weights)
    missing = [key for key in BATCH_KEYS if key not in batch]
    if missing:
        raise ValueError(f"the training batch lacks {', '.join(missing)}")
    noise = noise or {}
    draws = {"mask_noise": noise.get("masks")}
    if recipe == "v00":
        draws.update(dequant=noise.get("dequant"), zs=noise.get("zs"))
    gt = batch["gt"]
    out = generator(batch["img0"], batch["img1"], batch["flow01"], batch["flow10"], gt,
                    time=batch.get("time", 0.5), **draws)
    pred = out["pred"]
    terms: dict[str, Tensor] = {"lap": LaplacianLoss().to(pred.device)(pred, gt)}
    if weights.get("per"):
        perceptual = (imagenet_perceptual_loss() if perceptual is None else perceptual).to(pred.device)
        terms["per"] = perceptual(pred, gt)
    result: dict[str, Any] = {"pred": pred, "masks": out["masks"]}
    if recipe == "v00":
        terms["nll"] = out["nll"].mean()
        result.update(nll=out["nll"], heat=out["heat"])
        if torch.isnan(pred).any():  # the reference then trains on the NLL alone
            weights = {name: weight for name, weight in weights.items() if name == "nll"}
    if recipe == "vb" or weights.get("l1"):
        terms["l1"] = (pred - gt).abs().mean()
        result["l1"] = terms["l1"]
    result.update(total=sum(weight * terms[name] for name, weight in weights.items()),
                  **{name: terms[name] for name in ("lap", "per") if name in terms})
    return result
