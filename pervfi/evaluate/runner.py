"""One evaluation run: a method on a dataset, every target frame scored, a summary."""
from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from pervfi.core.errors import InputError
from pervfi.media.tensors import to_tensor
from pervfi.metrics.perceptual import ScoredFrame, offline_requested
from pervfi.metrics.quantization import quantize
from pervfi.metrics.suite import METRIC_NAMES, MetricSuite
from pervfi.runtime.device import resolve_device

from .contenders import EvaluatedMethod, build_method
from .datasets import Dataset, Item, load_dataset
from .results import ResultsStore, Row, summarize

log = logging.getLogger(__name__)


def evaluate(method: str | EvaluatedMethod, dataset: str, root: str | Path, *, scale: int = 2, limit: int | None = None,
             out: str | Path | None = None, device: str | torch.device = "auto",
             metrics: str | Sequence[str] = METRIC_NAMES, noise: str = "heat", seed: int = 0,
             checkpoint_dir: str = "checkpoints", download: bool = True, offline: bool | None = None,
             progress: bool = True) -> dict[str, Any]:
    """Score `method` (a name, or an object with the `EvaluatedMethod` interface) on
    `dataset` under `root` and return the summary.

    The summary holds the mean of each metric under its lower-case name (None where a
    metric could not be loaded, with the reason under "unavailable"), the sample count and
    per-group means. With `out`, per-sample scores go to out/samples.csv (a re-run skips
    the samples already there) and the summary to out/summary.json. `limit` keeps the
    first N items (triplets, or frame pairs of the video protocol). `metrics` is a list of
    names or one comma-separated string ("psnr,ssim,ie"). `offline` (default:
    from HF_HUB_OFFLINE / PERVFI_OFFLINE) forbids downloading metric backbones.
    """
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    data = load_dataset(dataset, root, scale)
    items = data.items[:limit] if limit is not None else data.items
    device = resolve_device(device)
    if isinstance(method, str):
        evaluated = build_method(method, checkpoint_dir=checkpoint_dir, device=device, noise=noise, download=download)
    else:
        evaluated = method
    suite = MetricSuite(metrics, device, offline_requested() if offline is None else offline)
    run = {"method": evaluated.name, "dataset": data.name, "scale": scale if data.video else None, "noise": noise,
           "seed": seed, "metrics": suite.names}
    store = ResultsStore(out, run, suite.names)
    for item in tqdm(items, desc=f"{evaluated.name} on {data.name}", unit="pair", disable=not progress):
        if not store.has(target.sample_id for target in item.targets):
            store.add(score_item(item, data, evaluated, suite, device, seed))
    selected = [store.rows[target.sample_id] for item in items for target in item.targets]
    summary = {"method": evaluated.name, "dataset": data.name, "scale": run["scale"], "video": data.video,
               "noise": noise, "seed": seed,
               **summarize(selected, suite.names, by_sequence=data.video),
               "averaging": "per sequence, then across sequences" if data.video else "per sample",
               "unavailable": suite.unavailable}
    store.write_summary(summary)
    return summary


def score_item(item: Item, data: Dataset, method: EvaluatedMethod, suite: MetricSuite,
               device: torch.device, seed: int) -> list[Row]:
    """Interpolate the targets of one item and score each against its ground truth.

    Predictions are rounded to 8 bits, as a saved frame would be.
    """
    frame0, frame1 = (to_tensor(data.read(path), device) for path in (item.frame0, item.frame1))
    truths = [to_tensor(data.read(target.path), device) for target in item.targets]
    for path, image in zip((item.frame1, *(target.path for target in item.targets)), (frame1, *truths)):
        if image.shape != frame0.shape:
            raise InputError(f"{path} is {image.shape[-1]}×{image.shape[-2]}, "
                             f"{item.frame0} is {frame0.shape[-1]}×{frame0.shape[-2]}")
    rng = torch.Generator().manual_seed(item_seed(seed, item))
    times = [target.time for target in item.targets]
    preds = [quantize(pred.to(device)) for pred in method.interpolate(frame0, frame1, times, truths, rng)]
    for target, pred in zip(item.targets, preds):
        if not pred.isfinite().all():
            log.warning("%s: the prediction holds non-finite values; its scores are NaN", target.sample_id)
    rows = []
    for k, target in enumerate(item.targets):
        following = k + 1 < len(preds)
        frame = ScoredFrame(pred=preds[k], gt=truths[k], pred_next=preds[k + 1] if following else frame1,
                            gt_next=truths[k + 1] if following else frame1)
        rows.append({"sample": target.sample_id, "group": item.group, "time": target.time, **suite.score(frame)})
    return rows


def item_seed(seed: int, item: Item) -> int:
    """A seed for one item's noise, fixed by the run's seed and the item (not by the order
    of scoring, so a resumed run draws the same noise)."""
    return (seed * 1_000_003 + zlib.crc32(item.targets[0].sample_id.encode())) % 2**63
