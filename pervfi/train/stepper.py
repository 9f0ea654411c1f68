"""One optimisation step of the recipe, exactly as the training loop runs it, without making the
device wait on the host.

AdamW with PyTorch's defaults (fused on CUDA, where GradScaler then needs no host round trip),
OneCycleLR (max_lr, cosine annealing, momentum cycling) over every step of the run, the gradient
norm clipped, automatic mixed precision with a GradScaler for fp16. Like accelerate's scheduler
in the authors' training, the schedule does not advance on a step the GradScaler skipped
(non-finite gradients): the skip is read back one step late, once the device has long computed
it, so the host never blocks the device's queue. The logged values stay on the device until the
loop asks for them (every `log.log_every` steps).
"""
from __future__ import annotations

import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

LOGGED_TERMS = ("total", "nll", "l1", "lap", "per")


@dataclass
class StepRecord:
    """What one step logs: the learning rate it used, and its loss terms and gradient norm
    (before clipping) as one device tensor in the order of `names` + ["grad_norm"]."""

    lr: float
    names: list[str]
    values: Tensor

    def row(self, values: list[float]) -> dict[str, float]:
        """The logged row once `values` (this record's, possibly averaged over processes) are on the host."""
        return {"lr": self.lr, **dict(zip([*self.names, "grad_norm"], values))}


class TrainingStep:
    """Loss, backward, clipping and the optimizer update of one global batch.

    `generator` holds the parameters; `network` is what the loss calls (the generator, or its
    DDP wrapper, which averages the gradients over the processes); `loss` is a
    `step.TrainingLoss` (or any module called as ``loss(network, batch, noise=...)``).
    """

    def __init__(self, generator: nn.Module, network: nn.Module, loss: nn.Module, max_lr: float, total_steps: int,
                 grad_clip: float, precision: torch.dtype, device: torch.device) -> None:
        self.generator, self.network, self.loss = generator, network, loss
        self.grad_clip, self.precision, self.device = grad_clip, precision, device
        self.max_lr, self.total_steps = max_lr, total_steps
        parameters = [p for p in generator.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(parameters, fused=device.type == "cuda")
        self.scheduler = self._schedule()
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == torch.float16)
        self._skipped: _HostFlag | None = None  # whether the previous step's update was skipped

    def __call__(self, batch: dict[str, Any]) -> StepRecord:
        batch = upload(batch, self.device)
        noise = batch.pop("noise", None)
        autocast = (torch.autocast(self.device.type, dtype=self.precision)
                    if self.precision != torch.float32 else nullcontext())
        with autocast:
            out = self.loss(self.network, batch, noise=noise)
        self.scaler.scale(out["total"]).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.generator.parameters(), self.grad_clip)
        self.settle()
        lr = self.scheduler.get_last_lr()[0]  # the rate this step uses
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler.is_enabled():  # the scaler skips the update when a gradient is not finite
            self._skipped = _HostFlag(~torch.isfinite(grad_norm))
        else:
            self.scheduler.step()
        names = [name for name in LOGGED_TERMS if name in out]
        values = torch.stack([out[name].detach().float().mean() for name in names] + [grad_norm.detach().float()])
        return StepRecord(lr, names, values)

    def settle(self) -> None:
        """Advance the schedule past the previous step unless the GradScaler skipped its update
        (called before the next update, before saving a state and at the end of a run)."""
        if self._skipped is not None:
            if not self._skipped.value():
                self.scheduler.step()
            self._skipped = None

    def state_dict(self) -> dict[str, Any]:
        self.settle()
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any], rebuild_schedule: bool = False) -> None:
        """Continue from a saved state; `rebuild_schedule`: with this step's max_lr and length
        (a resume with a changed configuration), at the saved position of the schedule."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        if not rebuild_schedule:
            self.scheduler.load_state_dict(state["scheduler"])
            return
        position = int(state["scheduler"]["last_epoch"])
        if position >= self.total_steps:
            raise ValueError(f"the saved schedule is at step {position}, past the {self.total_steps} steps of this run")
        self.scheduler = self._schedule()
        self.scheduler.last_epoch = position - 1
        with warnings.catch_warnings():  # stepping to set the position is not a step before the optimizer's
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            self.scheduler.step()

    def _schedule(self) -> torch.optim.lr_scheduler.OneCycleLR:
        return torch.optim.lr_scheduler.OneCycleLR(self.optimizer, max_lr=self.max_lr, total_steps=self.total_steps,
                                                   anneal_strategy="cos")


class _HostFlag:
    """A boolean device tensor on its way to the host: copied without blocking (into pinned
    memory on CUDA), read when needed, by which time the device has long produced it."""

    def __init__(self, flag: Tensor) -> None:
        if flag.device.type == "cuda":
            self._host = torch.empty((), dtype=torch.bool, pin_memory=True)
            self._host.copy_(flag, non_blocking=True)
            self._ready = torch.cuda.Event()
            self._ready.record()
        else:
            self._host, self._ready = flag, None

    def value(self) -> bool:
        if self._ready is not None:
            self._ready.synchronize()
        return bool(self._host.item())


def upload(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The batch's tensors (nested in dicts and lists) on `device`, copied asynchronously
    (the loader pins them on CUDA, so the copies overlap the device's work)."""
    def move(value: Any) -> Any:
        if isinstance(value, Tensor):
            return value.to(device, non_blocking=True)
        if isinstance(value, dict):
            return {key: move(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [move(item) for item in value]
        return value

    return move(batch)

