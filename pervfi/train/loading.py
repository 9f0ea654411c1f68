"""Batches for the training loop: samples loaded and augmented by key, in the run's order.

The torch DataLoader gets each step's share of keys (see `order`) as one batch, so its
worker processes only parallelise loading; what a sample is depends on its key alone. A
file that cannot be read in a worker comes back as its one-line message and is raised in
the training process, instead of as a worker traceback.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from pervfi.core.errors import InputError, PerVFIError

from .augment import Triplet, augment, sample_rng
from .noise import draw_noise, stack_noise
from .order import SampleKey

FIELDS = ("img0", "img1", "flow01", "flow10", "gt")
FRAMES = ("img0", "img1", "gt")


class Source(Protocol):
    methods: Sequence[str]

    def split(self, name: str) -> list[Any]: ...

    def load(self, item: Any, method: int = 0) -> Triplet: ...


class TrainingSamples(torch.utils.data.Dataset):
    """Augmented training samples of `source` with the noise of `recipe`, looked up by `SampleKey`."""

    def __init__(self, source: Source, recipe: str, seed: int, crop: int, jitter: str = "crop") -> None:
        self.source, self.recipe, self.seed, self.crop, self.jitter = source, recipe, seed, crop, jitter
        self.items = source.split("train")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: SampleKey) -> dict[str, Any]:
        rng = sample_rng(self.seed, key.epoch, key.position)
        method = int(rng.integers(len(self.source.methods))) if len(self.source.methods) > 1 else 0
        try:
            sample = as_fields(augment(self.source.load(self.items[key.index], method), rng, self.crop, self.jitter))
        except PerVFIError as err:
            return {"error": str(err)}
        except ValueError as err:  # frames smaller than the crop
            return {"error": f"{self.items[key.index]}: {err}"}
        noise_rng = sample_rng(self.seed, key.epoch, key.position, stream=1)
        return {**sample, "noise": draw_noise(self.recipe, self.crop, self.crop, noise_rng)}


def as_fields(sample: Triplet) -> dict[str, Tensor]:
    """The sample's fields, frames as float32 in [0, 1]."""
    return {name: unit_range(getattr(sample, name)) if name in FRAMES else getattr(sample, name) for name in FIELDS}


def unit_range(pixels: Tensor) -> Tensor:
    """uint8 pixels → float32 in [0, 1]."""
    return pixels.float().div_(255.0)


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the samples' fields; the first error instead when a sample could not be loaded."""
    for sample in samples:
        if "error" in sample:
            return sample
    batch: dict[str, Any] = {name: torch.stack([sample[name] for sample in samples]) for name in FIELDS}
    batch["noise"] = stack_noise([sample["noise"] for sample in samples])
    return batch


def batch_loader(samples: TrainingSamples, keys: Iterable[list[SampleKey]], workers: int,
                 pin: bool = False) -> Iterator[dict[str, Any]]:
    """The batches of `keys` (fields and "noise"), loaded by `workers` processes (0: in this one),
    in page-locked memory when `pin` (for asynchronous copies to a CUDA device);
    InputError for a file that cannot be read."""
    loader = DataLoader(samples, batch_sampler=_Batches(keys), collate_fn=collate, num_workers=workers,
                        persistent_workers=False, prefetch_factor=2 if workers else None, pin_memory=pin)
    for batch in loader:
        if "error" in batch:
            raise InputError(batch["error"])
        yield batch


class _Batches:
    """The batch sampler: the given lists of keys, drawn lazily (a run has millions)."""

    def __init__(self, keys: Iterable[list[SampleKey]]) -> None:
        self.keys = keys

    def __iter__(self) -> Iterator[list[SampleKey]]:
        return iter(self.keys)
