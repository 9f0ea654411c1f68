"""The run's curves as one figure, ``curves.png`` beside ``log.csv``: the loss terms, the learning
rate and the validation scores against the step, redrawn at every validation.

matplotlib is imported on use (headless Agg backend); the figure is written whole or not at
all (`core.files.written_whole`), so a reader never sees half an image.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pervfi.core.files import written_whole

from .validation import BEST_NOISE

CURVES_FILE = "curves.png"
LOSS_TERMS = ("total", "nll", "l1", "lap", "per")


def plot_curves(folder: Path, train_rows: Sequence[dict[str, Any]], val_rows: Sequence[dict[str, Any]]) -> Path:
    """Draw the rows of a run's training and validation logs into ``folder/curves.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = [key for key in (val_rows[0] if val_rows else {}) if key != "step"]
    metrics = list(dict.fromkeys(score.removeprefix(BEST_NOISE) for score in scores))
    panels = 2 + len(metrics)
    figure, axes = plt.subplots(panels, 1, figsize=(7, 2.2 * panels), sharex=True, squeeze=False)
    axes = axes[:, 0]
    steps = [row["step"] for row in train_rows]
    for term in LOSS_TERMS:
        values = [row.get(term) for row in train_rows]
        if any(value is not None for value in values):
            axes[0].plot(steps, [float("nan") if v is None else v for v in values], label=term, linewidth=1)
    axes[0].set_ylabel("loss")
    if axes[0].lines:
        axes[0].legend(loc="upper right", fontsize="small", ncol=len(LOSS_TERMS))
    axes[1].plot(steps, [row["lr"] for row in train_rows], color="tab:gray", linewidth=1)
    axes[1].set_ylabel("learning rate")
    val_steps = [row["step"] for row in val_rows]
    for axis, metric in zip(axes[2:], metrics):
        for score in (s for s in scores if s.removeprefix(BEST_NOISE) == metric):
            label = "best noise" if score.startswith(BEST_NOISE) else "heat"
            axis.plot(val_steps, [row[score] for row in val_rows], marker="o", markersize=3, linewidth=1, label=label)
        if len(axis.lines) > 1:
            axis.legend(loc="lower right", fontsize="small")
        axis.set_ylabel(f"val {metric}")
    axes[-1].set_xlabel("step")
    figure.tight_layout()
    target = folder / CURVES_FILE
    with written_whole(target, suffix=".png") as partial:
        figure.savefig(partial, dpi=100)
    plt.close(figure)
    return target
