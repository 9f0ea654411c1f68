"""Which samples each step trains on: a shuffled order per epoch, split over the processes.

Epoch e visits the training set in the order ``randperm(n)`` drawn from a generator seeded by
(run seed, e), or, with `shuffle` off, in the list's own order every epoch, as the authors'
loader does (a DataLoader without shuffle, through accelerate); step s of the run takes the
global batch at ``s mod steps_per_epoch`` of
that order (incomplete last batches are dropped), and process r of w takes its r-th equal
share. The order depends on the seed alone, never on the number of processes or on a
resume, and the current epoch's permutation is saved with the training state.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SampleKey:
    """A sample's place in the run: its epoch, its position in that epoch's order, its index in the set."""

    epoch: int
    position: int
    index: int


class DataOrder:
    """The run's sample order for `size` samples in global batches of `batch_size`."""

    def __init__(self, size: int, batch_size: int, seed: int, shuffle: bool = True) -> None:
        if size < batch_size:
            raise ValueError(f"expected at least one batch of {batch_size} samples, got {size} samples")
        self.size, self.batch_size, self.seed, self.shuffle = size, batch_size, seed, shuffle
        self.steps_per_epoch = size // batch_size
        self._epoch, self._permutation = -1, torch.empty(0, dtype=torch.long)

    def permutation(self, epoch: int) -> torch.Tensor:
        """Epoch `epoch`'s order of the sample indices."""
        if epoch != self._epoch and not self.shuffle:
            self._epoch, self._permutation = epoch, torch.arange(self.size)
        elif epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._permutation = epoch, torch.randperm(self.size, generator=generator)
        return self._permutation

    def batch(self, step: int, rank: int = 0, world: int = 1) -> list[SampleKey]:
        """Process `rank`'s share of the global batch of `step` (counted from 0)."""
        epoch, first = divmod(step, self.steps_per_epoch)
        share = self.batch_size // world
        start = first * self.batch_size + rank * share
        order = self.permutation(epoch)
        return [SampleKey(epoch, position, int(order[position])) for position in range(start, start + share)]

    def batches(self, start: int, stop: int, rank: int = 0, world: int = 1) -> Iterator[list[SampleKey]]:
        """The shares of steps start … stop − 1."""
        for step in range(start, stop):
            yield self.batch(step, rank, world)

    def state(self, step: int) -> dict[str, object]:
        """What the checkpoint records: the seed, the epoch and position of `step`, and that epoch's order."""
        epoch, first = divmod(step, self.steps_per_epoch)
        return {"seed": self.seed, "size": self.size, "batch_size": self.batch_size, "epoch": epoch,
                "position": first * self.batch_size, "permutation": self.permutation(epoch).clone()}

    def check(self, state: dict[str, object]) -> None:
        """Raise ValueError when a saved order is not this order (another set, batch or seed)."""
        saved = (state["seed"], state["size"], state["batch_size"])
        if saved != (self.seed, self.size, self.batch_size):
            raise ValueError(f"the saved data order (seed, samples, batch) {saved} differs from this run's "
                             f"{(self.seed, self.size, self.batch_size)}")
        if not torch.equal(state["permutation"], self.permutation(int(state["epoch"]))):  # type: ignore[arg-type]
            raise ValueError("the saved epoch order differs from the one this run draws")
