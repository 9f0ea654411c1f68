"""The run folder's checkpoints, written so that an interruption never leaves a broken one.

    <out>/model/PerVFI/<model>.pth      the newest generator, in the official layout
    <out>/best-psnr/PerVFI/<model>.pth  the generator with the best validation PSNR (+ best.json),
    <out>/best-lpips/...                and so on for each metric of `log.best`
    <out>/state/step-00000100/          the full training state at step 100:
        PerVFI/<model>.pth                  the generator (so the folder is itself a --ckpt-dir)
        training.pt                         optimizer, scheduler, scaler, step, data order,
                                            the random states of every process, the config

The generator files hold exactly the keys of the official checkpoints, so
``infer_video.py --ckpt-dir <out>/model`` and ``pervfi.evaluate --checkpoints <out>/model`` load
them unchanged. A state is written into a hidden ``.partial`` folder and renamed into place
once complete; only the newest `keep` states are kept. Files are read back with
``torch.load(weights_only=True)``: tensors and plain values only.
"""
from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from pervfi.core.errors import CheckpointError
from pervfi.core.files import remove, write_text_whole, written_whole

STATE_FORMAT = "pervfi-train-state-v1"
STATE_FILE = "training.pt"
GENERATOR_FOLDER = "PerVFI"  # the official layout: <checkpoint dir>/PerVFI/<model>.pth


def generator_file(folder: Path, model: str) -> Path:
    """Where a checkpoint folder keeps the generator `model`."""
    return folder / GENERATOR_FOLDER / f"{model}.pth"


def write_generator(folder: Path, model: str, weights: Mapping[str, Tensor]) -> Path:
    """Save `weights` as `folder`'s generator file, atomically (a temporary file renamed into place)."""
    path = generator_file(folder, model)
    with written_whole(path) as partial:
        torch.save({key: value.detach().cpu() for key, value in weights.items()}, partial)
    return path


def best_folder(out: Path, metric: str) -> Path:
    """Where a run keeps the generator with the best validation `metric` (``best-psnr``, ...)."""
    return out / f"best-{metric}"


def write_best(out: Path, metric: str, model: str, weights: Mapping[str, Tensor], record: Mapping[str, Any]) -> None:
    """The best generator so far by `metric`, with its step and scores in ``best.json``."""
    folder = best_folder(out, metric)
    write_generator(folder, model, weights)
    write_text_whole(folder / "best.json", json.dumps(dict(record), indent=2) + "\n")


def read_best(out: Path, metric: str) -> dict[str, Any] | None:
    path = best_folder(out, metric) / "best.json"
    return json.loads(path.read_text()) if path.is_file() else None


def save_state(out: Path, step: int, model: str, weights: Mapping[str, Tensor], training: dict[str, Any],
               keep: int) -> Path:
    """Write the training state of `step` completely, then drop all but the newest `keep` states."""
    states = out / "state"
    final = states / f"step-{step:08d}"
    with written_whole(final) as partial:
        write_generator(partial, model, weights)
        torch.save({"format": STATE_FORMAT, "model": model, "step": step, **training}, partial / STATE_FILE)
    for old in complete_states(out)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


class RunFolderBefore:
    """What the run folder held before a run started, so that a run that stops before its first
    step (a data error found in the first batch, Ctrl-C) can remove what it added: the folder
    itself when it made it, else the entries it added (logs, estimated flows)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.existed = out.is_dir()
        self.entries = set(out.iterdir()) if self.existed else set()

    def restore(self) -> None:
        if not self.existed:
            remove(self.out)
            return
        for path in set(self.out.iterdir()) - self.entries if self.out.is_dir() else ():
            remove(path)


def complete_states(out: Path) -> list[Path]:
    """The run's complete state folders, oldest first."""
    folder = out / "state"
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.glob("step-*") if (path / STATE_FILE).is_file())


def find_state(out: Path, which: str) -> Path:
    """The state folder `which` names: "latest" (the run's newest) or a path."""
    if which == "latest":
        states = complete_states(out)
        if not states:
            raise CheckpointError(f"--resume latest: {out / 'state'} holds no complete training state")
        return states[-1]
    path = Path(which)
    if not (path / STATE_FILE).is_file():
        raise CheckpointError(f"--resume {which}: not a training state folder (no {STATE_FILE} in it)")
    return path


def load_state(folder: Path, model: str) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The generator weights and the training state saved in `folder`, checked to be of `model`."""
    try:
        training = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"{folder / STATE_FILE} is not a usable training state: {err}") from None
    if not isinstance(training, dict) or training.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{folder / STATE_FILE} is not a training state of this tool")
    if training["model"] != model:
        raise CheckpointError(f"{folder} is a training state of model {training['model']!r}, not {model!r}")
    weights = torch.load(generator_file(folder, model), map_location="cpu", weights_only=True)
    return weights, training
