"""Validation during training: the held-out triplets at full size, scored with the evaluation's metrics.

Each process scores its share of the triplets (every world-th one); the sums are added over
the processes, so every process gets the same means. v00 samples its latents at the
generator's heat from a generator seeded per triplet, so two validations of the same weights
agree; like the authors' validation it is also scored with the "best noise" (`best_noise_*`:
noise at the heat of the target's own latents). Frames are padded to the generator's multiple
of 8 and the predictions cropped back.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from pervfi.metrics.perceptual import ScoredFrame
from pervfi.metrics.suite import MetricSuite
from pervfi.models.generators.base import SIZE_MULTIPLE
from pervfi.ops.padding import Padder

from .loading import FRAMES, Source, unit_range

BEST_NOISE = "best_noise_"  # the prefix of the scores of v00's best-noise prediction


@torch.no_grad()
def validate(generator: nn.Module, source: Source, suite: MetricSuite, device: torch.device, seed: int,
             limit: int | None = None, rank: int = 0, world: int = 1) -> dict[str, float]:
    """Mean of each available metric over the validation triplets (at most `limit`); for v00
    also those of the best-noise prediction, prefixed ``best_noise_``."""
    items = source.split("val")[:limit]
    metrics = [name for name in suite.names if name not in suite.unavailable]
    prefixes = ["", BEST_NOISE] if hasattr(generator, "interpolate_best_noise") else [""]
    names = [prefix + name for prefix in prefixes for name in metrics]
    sums = torch.zeros(len(names) + 1, dtype=torch.float64)
    was_training = generator.training
    generator.eval()
    for number in range(rank, len(items), world):
        sample = source.load(items[number], 0)
        img0, img1, gt, flow01, flow10 = (
            (unit_range(getattr(sample, name)) if name in FRAMES else getattr(sample, name))[None].to(device)
            for name in ("img0", "img1", "gt", "flow01", "flow10"))
        padder = Padder(*gt.shape[-2:], multiple=SIZE_MULTIPLE)
        padded = padder.apply(img0, img1, flow01, flow10)
        preds = [generator.interpolate(*padded, rng=torch.Generator(device=device).manual_seed(seed + number))]
        if len(prefixes) > 1:
            rng = torch.Generator(device=device).manual_seed(seed + number)
            preds.append(generator.interpolate_best_noise(*padded, *padder.apply(gt), rng=rng))
        row = []
        for pred in preds:
            pred = padder.crop(pred)[0].clamp(0, 1).float()
            scores = suite.score(ScoredFrame(pred=pred, gt=gt, pred_next=pred, gt_next=gt))
            row += [scores[name] for name in metrics]
        sums += torch.tensor(row + [1.0], dtype=torch.float64)
    generator.train(was_training)
    if world > 1:  # NCCL reduces only tensors on the GPU
        reduced = sums.to(device)
        dist.all_reduce(reduced)
        sums = reduced.cpu()
    count = sums[-1].item()
    return {name: (sums[i] / count).item() for i, name in enumerate(names)} if count else {}
