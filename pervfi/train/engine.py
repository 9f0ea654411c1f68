"""The training loop: the authors' recipe on one process or several, resumable step for step.

AdamW with PyTorch's defaults, OneCycleLR (max_lr, cosine annealing, momentum cycling) over
every step of every epoch, the gradient norm clipped, automatic mixed precision (fp16 with
loss scaling on CUDA by default, bf16 on request, fp32 on the CPU). Each step trains on one
global batch of the run's order (see `order`), split over the processes; DDP averages the
gradients, so N processes take the same step as one process with the whole batch. States are
saved every `save_every` steps, validation runs every `val_every` steps.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from pervfi.core.errors import CheckpointError, InputError
from pervfi.metrics.perceptual import offline_requested
from pervfi.metrics.suite import MetricSuite
from pervfi.models.checkpoints import load_model, load_state, read_state_dict
from pervfi.models.generators import build_generator
from pervfi.ops.precision import precision_dtype
from pervfi.runtime.precision import resolve_precision

from . import ranks, state
from .datasets import FootageTriplets, VimeoTriplets
from .loading import Source, TrainingSamples, batch_loader
from .logs import RunLog
from .losses import imagenet_perceptual_loss
from .order import DataOrder
from .step import recipe_weights, training_loss
from .validation import validate

log = logging.getLogger("pervfi.train")

LossFunction = Callable[..., dict[str, Any]]  # training_loss(generator, batch, recipe, noise=, perceptual=, weights=)
LOGGED_TERMS = ("total", "nll", "l1", "lap", "per")
CROP_MULTIPLE, CROP_MINIMUM = 32, 64  # what the Laplacian loss's five levels need


def train(config: dict[str, Any], resume: str | None = None, loss: LossFunction | None = None,
          perceptual: nn.Module | None = None, progress: bool = True) -> Path:
    """Run (or resume) the training `config` describes; the run folder.

    `loss` (the recipe's `training_loss` by default) is called as ``loss(generator, batch, recipe,
    noise=, perceptual=, weights=)``; `perceptual` defaults to the VGG19 loss on ImageNet weights
    (loaded only when its weight is not 0). A new run that stops before its first step (a data
    error, Ctrl-C, SIGTERM) leaves nothing behind in its run folder.
    """
    processes = ranks.start(config["device"])
    before = state.RunFolderBefore(Path(config["out"])) if not resume and processes.is_main else None
    run = None
    try:
        run = _Run(config, processes, loss, perceptual)
        return run.run(resume, progress)
    except BaseException:
        if before is not None and (run is None or run.step == 0):
            before.restore()
        raise
    finally:
        ranks.stop()


class _Run:
    def __init__(self, config: dict[str, Any], processes: ranks.Processes, loss: LossFunction | None,
                 perceptual: nn.Module | None) -> None:
        self.config, self.processes = config, processes
        self.model, self.out = config["model"], Path(config["out"])
        self.device = processes.device
        train = config["train"]
        batch, crop = train["batch_size"], config["data"]["crop"]
        if batch % processes.world:
            raise InputError(f"train.batch_size {batch} does not split evenly over {processes.world} processes")
        if train["epochs"] < 1 or train["batch_size"] < 1:
            raise InputError(f"train.epochs and train.batch_size must be at least 1, got {train['epochs']} "
                             f"and {batch}")
        if crop % CROP_MULTIPLE or crop < CROP_MINIMUM:
            raise InputError(f"data.crop must be a multiple of {CROP_MULTIPLE} of at least {CROP_MINIMUM}, got {crop}")
        self.loss_weights = recipe_weights(self.model, config["loss"])
        self.source = build_source(config, self.device)
        self.samples = TrainingSamples(self.source, self.model, train["seed"], crop)
        if len(self.samples) < batch:
            raise InputError(f"{config['data']['root']} has {len(self.samples)} training triplets, fewer than one "
                             f"batch of {batch}")
        self.order = DataOrder(len(self.samples), batch, train["seed"])
        self.total_steps = train["epochs"] * self.order.steps_per_epoch
        self.stop = min(self.total_steps, train["stop_after"] or self.total_steps)
        torch.manual_seed(train["seed"])  # the same initial weights in every process
        self.generator = build_initial_generator(config).to(self.device).train()
        self.official_keys = list(build_generator(self.model).state_dict())
        parameters = [p for p in self.generator.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(parameters)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=train["max_lr"], total_steps=self.total_steps, anneal_strategy="cos")
        self.precision = precision_dtype(resolve_precision(train["precision"], self.device, training=True)) or torch.float32
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == torch.float16)
        self.loss, self.perceptual = loss or training_loss, perceptual
        self.network: nn.Module = self.generator  # what the loss calls: DDP averages the gradients
        if processes.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.network = DistributedDataParallel(self.generator, device_ids=ids)  # every parameter is used
        self.step = 0
        self.best = None

    # -- the loop ---------------------------------------------------------------------------
    def run(self, resume: str | None, progress: bool) -> Path:
        log_config = self.config["log"]
        if not resume and state.complete_states(self.out):
            raise InputError(f"{self.out} already holds the states of a run; continue it with --resume latest "
                             "or choose another --out")
        resumed = self._resume(resume) if resume else None
        if "per" in self.loss_weights:
            self.perceptual = (self.perceptual or imagenet_perceptual_loss()).to(self.device)
        main = self.processes.is_main
        run_log = RunLog(self.out, resume_step=resumed, tensorboard=True) if main else None
        suite = self._validation_suite()
        bar = tqdm(total=self.stop, initial=self.step, desc=f"train {self.model}", unit="step",
                   disable=not (progress and main), dynamic_ncols=True)
        keys = self.order.batches(self.step, self.stop, self.processes.rank, self.processes.world)
        workers = self.config["data"]["workers"] if isinstance(self.source, VimeoTriplets) else 0
        try:
            for batch in batch_loader(self.samples, keys, workers):
                terms = self._train_step(batch)
                self.step += 1
                bar.set_postfix(loss=f"{terms['total']:.4f}", refresh=False)
                bar.update(1)  # the bar shows the rate, data loading included
                if main and self.step % log_config["log_every"] == 0:
                    epoch = (self.step - 1) // self.order.steps_per_epoch
                    run_log.write("train", {"step": self.step, "epoch": epoch, **terms})
                if suite is not None and self.step % log_config["val_every"] == 0:
                    self._validate(suite, run_log)
                if self.step % log_config["save_every"] == 0 or self.step == self.stop:
                    self._save()
        finally:
            bar.close()
            if run_log is not None:
                run_log.close()
        if main:
            log.info("trained %d steps; the generator is in %s (use --ckpt-dir %s)", self.step,
                     state.generator_file(self.out / "model", self.model), self.out / "model")
        return self.out

    def _train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        noise = batch.pop("noise")
        batch = {name: tensor.to(self.device, non_blocking=True) for name, tensor in batch.items()}
        noise = {name: ([t.to(self.device) for t in value] if isinstance(value, list) else value.to(self.device))
                 for name, value in noise.items()}
        autocast = (torch.autocast(self.device.type, dtype=self.precision)
                    if self.precision != torch.float32 else nullcontext())
        with autocast:
            out = self.loss(self.network, batch, self.model, noise=noise, perceptual=self.perceptual,
                            weights=self.loss_weights)
        self.scaler.scale(out["total"]).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.generator.parameters(), self.config["train"]["grad_clip"])
        lr = self.scheduler.get_last_lr()[0]  # the rate this step used
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        names = [name for name in LOGGED_TERMS if name in out]
        values = torch.stack([out[name].detach().float().mean().cpu() for name in names] + [grad_norm.detach().float().cpu()])
        values = ranks.mean_over_processes(values, self.processes)
        return {"lr": lr, **dict(zip(names, values[:-1].tolist())), "grad_norm": values[-1].item()}

    # -- validation, checkpoints ---------------------------------------------------------------
    def _validation_suite(self) -> MetricSuite | None:
        """The metrics of validation, or None (with a warning saying why, unless the config turned
        validation off) when this run will not validate."""
        every, data = self.config["log"]["val_every"], self.config["data"]
        if not every:
            return None
        why = None
        if not self.source.split("val"):
            gaps = data["gaps"]
            why = (f"{data['root']} has no validation triplets: data.val_fraction {data['val_fraction']:g} holds out "
                   f"fewer than the {2 * min(gaps) + 1} frames of a triplet (gap {min(gaps)}) at the end of each "
                   "sequence; raise data.val_fraction")
        elif self.stop // every == self.step // every:
            why = (f"it runs every {every} steps (log.val_every) and this run stops at step {self.stop}; "
                   f"set log.val_every to at most {self.stop - self.step}")
        suite = None if why else MetricSuite(self.config["log"]["metrics"], self.device, offline=offline_requested())
        if suite is not None and set(suite.unavailable) >= set(suite.names):
            why = "none of its metrics can be computed (" + "; ".join(
                f"{name}: {reason}" for name, reason in suite.unavailable.items()) + ")"
            suite = None
        if why and self.processes.is_main:
            log.warning("no validation: %s (or set log.val_every=0 to train without it)", why)
        return suite

    def _validate(self, suite: MetricSuite, run_log: RunLog | None) -> None:
        scores = validate(self.generator, self.source, suite, self.device, self.config["train"]["seed"],
                          self.config["data"]["val_limit"], self.processes.rank, self.processes.world)
        if not self.processes.is_main or not scores:
            return
        run_log.write("val", {"step": self.step, **scores})
        log.info("step %d: %s", self.step, ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        metric = self.config["log"]["best"] if self.config["log"]["best"] in scores else next(iter(scores))
        higher = metric in ("psnr", "ssim")
        value = scores[metric]
        best = self.best or state.read_best(self.out)
        if best is None or best.get("metric") != metric or (value > best["value"] if higher else value < best["value"]):
            self.best = {"metric": metric, "value": value, "step": self.step, "scores": scores}
            state.write_best(self.out, self.model, self._official_weights(), self.best)
            log.info("new best %s %.4f at step %d, in %s", metric, value, self.step, self.out / "best")

    def _official_weights(self) -> dict[str, Tensor]:
        weights = self.generator.state_dict()
        return {key: weights[key] for key in self.official_keys}

    def _save(self) -> None:
        rng = ranks.gather(ranks.rng_state(), self.processes)
        if not self.processes.is_main:
            return
        weights = self._official_weights()
        training = {
            "extra_weights": {k: v.cpu() for k, v in self.generator.state_dict().items() if k not in weights},
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), "rng": rng, "order": self.order.state(self.step),
            "world": self.processes.world, "config": self.config,
        }
        state.save_state(self.out, self.step, self.model, weights, training, self.config["log"]["keep"])
        state.write_generator(self.out / "model", self.model, weights)

    def _resume(self, which: str) -> int:
        folder = state.find_state(self.out, which)
        weights, training = state.load_state(folder, self.model)
        try:
            self.order.check(training["order"])
        except ValueError as err:
            raise CheckpointError(f"cannot resume from {folder}: {err}") from None
        self.generator.load_state_dict({**weights, **training["extra_weights"]}, strict=True)
        self.optimizer.load_state_dict(training["optimizer"])
        self.scheduler.load_state_dict(training["scheduler"])
        self.scaler.load_state_dict(training["scaler"])
        rng = training["rng"]
        if len(rng) != self.processes.world:
            log.warning("%s was saved by %d processes, this run has %d: random states restarted from rank 0's",
                        folder, len(rng), self.processes.world)
        ranks.set_rng_state(rng[self.processes.rank if len(rng) == self.processes.world else 0])
        self.step = int(training["step"])
        if self.processes.is_main:
            log.info("resumed from %s at step %d", folder, self.step)
        return self.step


def build_initial_generator(config: dict[str, Any]) -> nn.Module:
    """The generator to start from: random ("scratch"), official weights ("v00", "vb") or a file."""
    model, init = config["model"], config["init"]
    if init == "scratch":
        return build_generator(model)
    if init in ("v00", "vb"):
        if init != model:
            raise InputError(f"init {init!r} is the official {init} checkpoint, which does not fit model {model!r}")
        return load_model(model, "generator", checkpoint_dir=config["checkpoint_dir"],
                          way_out="start from random weights (--init scratch)").train()
    path = Path(init)
    if not path.is_file():
        raise InputError(f"init {init}: no such file (use scratch, v00, vb or a generator checkpoint)")
    generator = build_generator(model)
    load_state(generator, read_state_dict(path), path, model)
    return generator


def build_source(config: dict[str, Any], device: torch.device) -> Source:
    """The dataset of `config`: Vimeo90K with precomputed flows, or footage with flows estimated here."""
    data = config["data"]
    if not data["root"]:
        raise InputError("no dataset: give --root DIR (and --dataset vimeo90k|frames|videos)")
    root = Path(data["root"])
    if data["dataset"] == "vimeo90k":
        return VimeoTriplets(root, data["flows"])
    name = data["flows"][0]

    def flow_function() -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]:
        estimator = load_model(name, "flow", checkpoint_dir=config["checkpoint_dir"],
                               way_out="estimate the flows with DIS, which needs no weights (data.flows=[dis])"
                               ).to(device)
        return lambda img0, img1: estimator.estimate_bidirectional(img0.to(device), img1.to(device))

    return FootageTriplets(root, data["dataset"], data["gaps"], data["val_fraction"], flow_function, name,
                           cache=Path(config["out"]) / "flows" / name)
