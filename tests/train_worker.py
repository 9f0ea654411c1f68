"""A training run for the tests, launched in-process or by torchrun: the config's name, then
KEY=VALUE overrides (and ``--resume=WHICH``, ``--grads=FILE``). It uses the tests' small
perceptual stand-in (`train_data.TinyPerceptual`), since the tests do not download VGG19's
ImageNet weights. ``--grads=FILE`` saves the gradients of the first step as the optimizer is
about to apply them (averaged over the processes, clipped), before any update, as FILE-rank<r>.pt."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, when torchrun runs this file

import torch
import torch.distributed as dist
from torch.optim.optimizer import register_optimizer_step_pre_hook

from pervfi.runtime.console import configure_logging
from pervfi.train import load_config, train
from tests.train_data import TinyPerceptual


def run(config: str, overrides: list[str], resume: str | None = None, grads: Path | None = None) -> Path:
    handle = register_optimizer_step_pre_hook(_first_gradients(grads)) if grads else None
    try:
        return train(load_config(config, overrides), resume=resume, perceptual=TinyPerceptual(), progress=False)
    finally:
        if handle is not None:
            handle.remove()


def _first_gradients(path: Path):
    def hook(optimizer, args, kwargs) -> None:
        rank = dist.get_rank() if dist.is_initialized() else 0
        target = path.with_name(f"{path.name}-rank{rank}.pt")
        if not target.exists():
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.save([p.grad.detach().clone() if p.grad is not None else None for p in params], target)

    return hook


if __name__ == "__main__":
    configure_logging(quiet=True)
    options = {arg.split("=", 1)[0]: arg.split("=", 1)[1] for arg in sys.argv[2:] if arg.startswith("--")}
    run(sys.argv[1], [arg for arg in sys.argv[2:] if not arg.startswith("--")], options.get("--resume"),
        Path(options["--grads"]) if "--grads" in options else None)
