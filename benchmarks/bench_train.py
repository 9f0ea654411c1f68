"""Training speed: the engine's training step per generator, and the data pipeline's share of a step.

    python benchmarks/bench_train.py [--names v00 vb] [--batch 8] [--size 256] [--runs 3] [--device auto]
    python benchmarks/bench_train.py --smoke        # one tiny step of each, to check the script runs

One step is `stepper.TrainingStep`, what `python -m pervfi.train` runs per batch: the recipe's
loss (with the VGG19 perceptual loss: architecture only, the time does not depend on its
weights) in `train.precision: auto`'s precision, backward, the GradScaler, gradient clipping at 0.1, the AdamW update
and the schedule; the median of `runs` steps after a warm-up step, in wall time and in this
process's CPU time. Peak memory is the CUDA allocator's peak on a GPU, the process's peak
resident set elsewhere. Also printed: what one epoch of Vimeo90K (51,312 training triplets)
costs at this rate with one such device.

The data pipeline (`loading.batch_loader` in the training process, as with data.workers=0:
reading the files, colour jitter, crop, noise) is timed per batch on synthetic data written to
a temporary folder: Vimeo90K-sized triplets (448×256, with flow files) and full-HD frames
(flows estimated once, before timing, as training does), with the jitter on the crop (the
default) and on the whole frame (data.jitter=frame, the authors' order). Its share of a step is
data / (data + step) in CPU seconds (what the host spends; on a busy shared machine CPU time
moves far less than wall time), for the first generator's step at the same batch.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from PIL import Image

from benchmarks.timing import median_seconds
from pervfi.models.generators import build_generator
from pervfi.ops.precision import precision_dtype
from pervfi.runtime.device import resolve_device
from pervfi.runtime.precision import resolve_precision
from pervfi.train.datasets import FootageTriplets, VimeoTriplets
from pervfi.train.flow_files import write_flow
from pervfi.train.loading import TrainingSamples, batch_loader
from pervfi.train.losses import PerceptualLoss
from pervfi.train.noise import draw_noise, stack_noise
from pervfi.train.order import DataOrder
from pervfi.train.step import TrainingLoss
from pervfi.train.stepper import TrainingStep

VIMEO_TRAINING_TRIPLETS = 51_312
VIMEO_SIZE, FULL_HD = (256, 448), (1080, 1920)
GRAD_CLIP, MAX_LR = 0.1, 5e-4


def _batch(name: str, batch: int, size: int) -> dict:
    g = torch.Generator().manual_seed(0)
    frames = {key: torch.rand(batch, 3, size, size, generator=g) for key in ("img0", "img1", "gt")}
    flow01 = torch.randn(batch, 2, size, size, generator=g) * 4
    rng = np.random.default_rng(0)
    noise = stack_noise([draw_noise(name, size, size, rng) for _ in range(batch)])
    return {**frames, "flow01": flow01, "flow10": -flow01, "noise": noise}


def _peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def measure_step(name: str, batch: int, size: int, runs: int, device: torch.device) -> tuple[float, float, float]:
    """Median wall and CPU seconds of the engine's training step for generator `name`, and the peak memory (GiB)."""
    torch.manual_seed(0)
    generator = build_generator(name).to(device).train()
    loss = TrainingLoss(name, PerceptualLoss(torchvision.models.vgg19(weights=None))).to(device)
    precision = precision_dtype(resolve_precision("auto", device, training=True)) or torch.float32  # the engine's
    step = TrainingStep(generator, generator, loss, MAX_LR, total_steps=runs + 2, grad_clip=GRAD_CLIP,
                        precision=precision, device=device)
    data = _batch(name, batch, size)
    cpu_seconds: list[float] = []

    def one_step() -> None:
        started = time.process_time()
        step(data)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        cpu_seconds.append(time.process_time() - started)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = median_seconds(one_step, runs)
    return seconds, statistics.median(cpu_seconds[1:]), _peak_memory_gib(device)


def _write_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, compress_level=1)


def _write_vimeo(root: Path, clips: int, size: tuple[int, int]) -> Path:
    rng = np.random.default_rng(0)
    names = [f"00001/{i + 1:04d}" for i in range(clips)]
    for clip in names:
        for index in (1, 2, 3):
            _write_png(root / "sequences" / clip / f"im{index}.png", rng.integers(0, 256, (*size, 3), dtype=np.uint8))
        flow = rng.normal(0, 4, (*size, 2)).astype(np.float32)
        write_flow(root / "optical_flows" / "raft" / clip / "fflow.png", flow)
        write_flow(root / "optical_flows" / "raft" / clip / "bflow.png", -flow)
    for listing in ("tri_trainlist.txt", "tri_testlist.txt"):
        (root / listing).write_text("\n".join(names) + "\n")
    return root


def _write_frames(root: Path, count: int, size: tuple[int, int]) -> Path:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    for index in range(count):
        _write_png(root / "clip" / f"{index:05d}.png", np.roll(base, 2 * index, axis=1))
    return root


def _zero_flows():
    return lambda img0, img1: (torch.zeros(1, 2, *img0.shape[-2:]), torch.zeros(1, 2, *img0.shape[-2:]))


def measure_data(source, recipe: str, batch: int, crop: int, jitter: str, runs: int) -> float:
    """Median CPU seconds per batch of the training pipeline in this process (data.workers=0),
    after a warm-up batch."""
    samples = TrainingSamples(source, recipe, seed=0, crop=crop, jitter=jitter)
    order = DataOrder(len(samples), batch, seed=0)
    loader = batch_loader(samples, order.batches(0, runs + 1), workers=0)
    next(loader)
    seconds = []
    for _ in range(runs):
        started = time.process_time()
        next(loader)
        seconds.append(time.process_time() - started)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", nargs="+", default=["v00", "vb"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--smoke", action="store_true", help="batch 1, 64×64, one timed step")
    args = parser.parse_args()
    if args.smoke:
        args.batch, args.size, args.runs = 1, 64, 1
    device = resolve_device(args.device)
    print(f"device {device} ({torch.get_num_threads()} threads), batch {args.batch}, {args.size}×{args.size}, "
          f"median of {args.runs} steps; {resolve_precision('auto', device, training=True)} (train.precision auto)")
    print("| generator | s/step (wall) | steps/s | CPU s/step | peak memory (GiB) | one Vimeo90K epoch (h, wall) |")
    print("|---|---|---|---|---|---|")
    steps = {}
    for name in args.names:
        seconds, cpu, peak = measure_step(name, args.batch, args.size, args.runs, device)
        steps[name] = cpu
        epoch_hours = VIMEO_TRAINING_TRIPLETS // args.batch * seconds / 3600
        print(f"| {name} | {seconds:.2f} | {1 / seconds:.3f} | {cpu:.2f} | {peak:.2f} | {epoch_hours:.1f} |", flush=True)

    name, step_seconds = args.names[0], steps[args.names[0]]  # CPU seconds
    clips = args.batch * (args.runs + 2)
    scale = 4 if args.smoke else 1
    with tempfile.TemporaryDirectory() as folder:
        vimeo = VimeoTriplets(_write_vimeo(Path(folder) / "vimeo", clips, VIMEO_SIZE), ["raft"])
        hd_size = (FULL_HD[0] // scale, FULL_HD[1] // scale)
        footage = FootageTriplets(_write_frames(Path(folder) / "hd", clips + 2, hd_size), "frames", [1], 0.0,
                                  _zero_flows, "zero", cache=Path(folder) / "flows")
        print(f"\ndata pipeline per batch of {args.batch} ({args.size}×{args.size} crops, in the training process) "
              f"against the {name} step above ({step_seconds:.2f} CPU s)")
        print("| source | jitter | CPU s/batch | share of a CPU step |")
        print("|---|---|---|---|")
        for label, source in ((f"Vimeo90K-sized {VIMEO_SIZE[1]}×{VIMEO_SIZE[0]}", vimeo),
                              (f"frames {hd_size[1]}×{hd_size[0]}", footage)):
            for jitter in ("crop", "frame"):
                seconds = measure_data(source, name, args.batch, args.size, jitter, args.runs)
                print(f"| {label} | {jitter} | {seconds:.3f} | {seconds / (seconds + step_seconds):.1%} |", flush=True)


if __name__ == "__main__":
    main()
