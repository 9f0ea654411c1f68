"""The run's curves as one figure, ``curves.png`` beside ``log.csv``: the loss terms, the learning
rate and the validation scores against the step, redrawn at every validation.

matplotlib is imported on use (headless Agg backend); the figure is written to a temporary
file and renamed into place, so a reader never sees half an image.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CURVES_FILE = "curves.png"
LOSS_TERMS = ("total", "nll", "l1", "lap", "per")


def plot_curves(folder: Path, train_rows: Sequence[dict[str, Any]], val_rows: Sequence[dict[str, Any]]) -> Path:
    """Draw the rows of a run's training and validation logs into ``folder/curves.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = [key for key in (val_rows[0] if val_rows else {}) if key != "step"]
    panels = 2 + len(scores)
    figure, axes = plt.subplots(panels, 1, figsize=(7, 2.2 * panels), sharex=True, squeeze=False)
    axes = axes[:, 0]
    steps = [row["step"] for row in train_rows]
    for term in LOSS_TERMS:
        values = [row.get(term) for row in train_rows]
        if any(value is not None for value in values):
            axes[0].plot(steps, [float("nan") if v is None else v for v in values], label=term, linewidth=1)
    axes[0].set_ylabel("loss")
    axes[0].legend(loc="upper right", fontsize="small", ncol=len(LOSS_TERMS))
    axes[1].plot(steps, [row["lr"] for row in train_rows], color="tab:gray", linewidth=1)
    axes[1].set_ylabel("learning rate")
    val_steps = [row["step"] for row in val_rows]
    for axis, score in zip(axes[2:], scores):
        axis.plot(val_steps, [row[score] for row in val_rows], marker="o", markersize=3, linewidth=1)
        axis.set_ylabel(f"val {score}")
    axes[-1].set_xlabel("step")
    figure.tight_layout()
    target = folder / CURVES_FILE
    partial = folder / f".{CURVES_FILE}.partial.png"
    figure.savefig(partial, dpi=100)
    plt.close(figure)
    os.replace(partial, target)
    return target
