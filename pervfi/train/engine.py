"""The training loop: the authors' recipe on one process or several, resumable step for step.

Each step (see `stepper`) trains on one global batch of the run's order (see `order`), split over
the processes, in the autocast precision of `runtime.precision` (by default bf16 where the device
has it natively, else fp32; fp16 with loss scaling on CUDA on request); DDP averages the gradients,
so N processes take the same step as one process with the whole batch. The loop never waits on the
device between steps: the logged values are read back every `log.log_every` steps. States are saved
every `save_every` steps; validation runs before the first step and every `val_every` steps, keeps the
generator with the best value of each metric of `log.best` and redraws ``curves.png``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from pervfi.core.errors import CheckpointError, InputError
from pervfi.metrics.perceptual import offline_requested
from pervfi.metrics.suite import METRIC_LABELS, MetricSuite
from pervfi.models.checkpoints import load_model, load_state, read_state_dict
from pervfi.models.generators import build_generator
from pervfi.models.weight_files import fetch_weight_file
from pervfi.ops.precision import precision_dtype
from pervfi.runtime.precision import resolve_precision

from . import ranks, state
from .config import shaping_differences
from .curves import plot_curves
from .datasets import FootageTriplets, VimeoTriplets
from .loading import Source, TrainingSamples, batch_loader
from .logs import RunLog, read_rows
from .order import DataOrder
from .scratch import NETWORK_LF, scratch_generator
from .step import TrainingLoss, recipe_weights
from .stepper import StepRecord, TrainingStep
from .validation import validate

log = logging.getLogger("pervfi.train")

CROP_MULTIPLE, CROP_MINIMUM = 32, 64  # what the Laplacian loss's five levels need


def train(config: dict[str, Any], resume: str | None = None, perceptual: nn.Module | None = None,
          progress: bool = True, resume_override: bool = False) -> Path:
    """Run (or resume) the training `config` describes; the run folder.

    `perceptual` defaults to the VGG19 loss on ImageNet weights. A resume whose configuration
    differs from the saved one in a key that shapes the run is refused unless `resume_override`
    (then the new values apply from the resumed step on, the schedule rebuilt at its position).
    A new run that stops before its first step (a data error, Ctrl-C, SIGTERM) leaves nothing
    behind in its run folder.
    """
    processes = ranks.start(config["device"])
    before = state.RunFolderBefore(Path(config["out"])) if not resume and processes.is_main else None
    run = None
    try:
        run = _Run(config, processes, perceptual)
        return run.run(resume, progress, resume_override)
    except BaseException:
        if before is not None and (run is None or run.step == 0):
            before.restore()
        raise
    finally:
        ranks.stop()


class _Run:
    def __init__(self, config: dict[str, Any], processes: ranks.Processes, perceptual: nn.Module | None) -> None:
        self.config, self.processes = config, processes
        self.model, self.out = config["model"], Path(config["out"])
        self.device = processes.device
        train, data = config["train"], config["data"]
        batch, crop = train["batch_size"], data["crop"]
        if batch % processes.world:
            raise InputError(f"train.batch_size {batch} does not split evenly over {processes.world} processes")
        if crop % CROP_MULTIPLE or crop < CROP_MINIMUM:
            raise InputError(f"data.crop must be a multiple of {CROP_MULTIPLE} of at least {CROP_MINIMUM}, got {crop}")
        self.loss_weights = recipe_weights(self.model, config["loss"])
        self.source = build_source(config, self.device)
        self.samples = TrainingSamples(self.source, self.model, train["seed"], crop, data["jitter"])
        if len(self.samples) < batch:
            raise InputError(f"{data['root']} has {len(self.samples)} training triplets, fewer than one "
                             f"batch of {batch}")
        self.order = DataOrder(len(self.samples), batch, train["seed"], shuffle=data["order"] == "shuffle")
        self.total_steps = train["epochs"] * self.order.steps_per_epoch
        self.stop = min(self.total_steps, train["stop_after"] or self.total_steps)
        torch.manual_seed(train["seed"])  # the same initial weights in every process
        self.generator = build_initial_generator(config).to(self.device).train()
        self.official_keys = list(build_generator(self.model).state_dict())
        network: nn.Module = self.generator  # what the loss calls: DDP averages the gradients
        if processes.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            network = DistributedDataParallel(self.generator, device_ids=ids)  # every parameter is used
        loss = TrainingLoss(self.model, perceptual, self.loss_weights).to(self.device)
        precision = precision_dtype(resolve_precision(train["precision"], self.device, training=True)) or torch.float32
        self.stepper = TrainingStep(self.generator, network, loss, train["max_lr"], self.total_steps,
                                    train["grad_clip"], precision, self.device)
        self.step = 0
        self.best: dict[str, dict[str, Any]] = {}  # metric -> its best record so far

    # -- the loop ---------------------------------------------------------------------------
    def run(self, resume: str | None, progress: bool, override: bool) -> Path:
        log_config = self.config["log"]
        if not resume and state.complete_states(self.out):
            raise InputError(f"{self.out} already holds the states of a run; continue it with --resume latest "
                             "or choose another --out")
        resumed = self._resume(resume, override) if resume else None
        main = self.processes.is_main
        run_log = RunLog(self.out, resume_step=resumed, tensorboard=True) if main else None
        suite = self._validation_suite()
        if suite is not None and resumed is None:
            self._validate(suite, run_log)  # where the run starts from
        bar = tqdm(total=self.stop, initial=self.step, desc=f"train {self.model}", unit="step",
                   disable=not (progress and main), dynamic_ncols=True)
        keys = self.order.batches(self.step, self.stop, self.processes.rank, self.processes.world)
        try:
            for batch in batch_loader(self.samples, keys, self.config["data"]["workers"],
                                      pin=self.device.type == "cuda"):
                record = self.stepper(batch)
                self.step += 1
                bar.update(1)  # the bar shows the rate, data loading included
                if self.step % log_config["log_every"] == 0:
                    self._log(record, run_log, bar)
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

    def _log(self, record: StepRecord, run_log: RunLog | None, bar: tqdm) -> None:
        """Read the step's values back (the only wait on the device between validations) and log them."""
        values = ranks.mean_over_processes(record.values, self.processes).tolist()
        row = record.row(values)
        bar.set_postfix(loss=f"{row['total']:.4f}", refresh=False)
        if run_log is not None:
            epoch = (self.step - 1) // self.order.steps_per_epoch
            run_log.write("train", {"step": self.step, "epoch": epoch, **row})

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
        for metric in (name for name in self.config["log"]["best"] if name in scores):
            value = scores[metric]
            best = self.best.get(metric) or state.read_best(self.out, metric)
            higher = METRIC_LABELS.get(metric, "↑").endswith("↑")
            if best is None or (value > best["value"] if higher else value < best["value"]):
                self.best[metric] = {"metric": metric, "value": value, "step": self.step, "scores": scores}
                state.write_best(self.out, metric, self.model, self._official_weights(), self.best[metric])
                log.info("new best %s %.4f at step %d, in %s", metric, value, self.step,
                         state.best_folder(self.out, metric))
        plot_curves(self.out, read_rows(self.out, "train"), read_rows(self.out, "val"))

    def _official_weights(self) -> dict[str, Tensor]:
        weights = self.generator.state_dict()
        return {key: weights[key] for key in self.official_keys}

    def _save(self) -> None:
        rng = ranks.gather(ranks.rng_state(), self.processes)
        optimization = self.stepper.state_dict()  # on every process: it settles the schedule
        if not self.processes.is_main:
            return
        weights = self._official_weights()
        training = {
            "extra_weights": {k: v.cpu() for k, v in self.generator.state_dict().items() if k not in weights},
            **optimization, "rng": rng, "order": self.order.state(self.step),
            "world": self.processes.world, "config": self.config,
        }
        state.save_state(self.out, self.step, self.model, weights, training, self.config["log"]["keep"])
        state.write_generator(self.out / "model", self.model, weights)

    def _resume(self, which: str, override: bool) -> int:
        folder = state.find_state(self.out, which)
        weights, training = state.load_state(folder, self.model)
        changed = shaping_differences(training["config"], self.config)
        if changed and not override:
            raise InputError(f"cannot resume from {folder}: the configuration differs in {', '.join(changed)}; "
                             "resume with the saved values, or pass --resume-override to continue with the new ones")
        try:
            self.order.check(training["order"])
        except ValueError as err:
            raise CheckpointError(f"cannot resume from {folder}: {err}") from None
        self.generator.load_state_dict({**weights, **training["extra_weights"]}, strict=True)
        try:
            self.stepper.load_state_dict(training, rebuild_schedule=bool(changed))
        except ValueError as err:
            raise InputError(f"cannot resume from {folder}: {err}") from None
        rng = training["rng"]
        if len(rng) != self.processes.world:
            log.warning("%s was saved by %d processes, this run has %d: random states restarted from rank 0's",
                        folder, len(rng), self.processes.world)
        ranks.set_rng_state(rng[self.processes.rank if len(rng) == self.processes.world else 0])
        self.step = int(training["step"])
        if self.processes.is_main:
            log.info("resumed from %s at step %d", folder, self.step)
            if changed:
                log.warning("resumed with a changed configuration (--resume-override): %s", ", ".join(changed))
        return self.step


def build_initial_generator(config: dict[str, Any]) -> nn.Module:
    """The generator to start from: the authors' scratch start ("scratch": default initialisation and
    softmax splatting's pyramid, fetched on first use), official weights ("v00", "vb") or a file."""
    model, init = config["model"], config["init"]
    if init == "scratch":
        return scratch_generator(model, fetch_weight_file(NETWORK_LF, config["checkpoint_dir"]))
    if init in ("v00", "vb"):
        if init != model:
            raise InputError(f"init {init!r} is the official {init} checkpoint, which does not fit model {model!r}")
        return load_model(model, "generator", checkpoint_dir=config["checkpoint_dir"],
                          way_out="start as the authors' from-scratch training does (--init scratch)").train()
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
