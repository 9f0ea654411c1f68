"""Training speed and peak memory of PerVFI's generators: steps per second at batch 8, 256×256.

    python benchmarks/bench_train.py [--names v00 vb] [--batch 8] [--size 256] [--runs 3] [--device auto]
    python benchmarks/bench_train.py --smoke        # one tiny step of each, to check the script runs

One step is what `python -m pervfi.train` does per batch: the recipe's loss (`training_loss`,
with the VGG19 perceptual loss: architecture only, the time does not depend on its weights),
backward, gradient clipping at 0.1 and the AdamW update; the median of `runs` steps after a
warm-up step, in wall time and in this process's CPU time (which, with one thread, is what a
step costs on an otherwise idle core of a shared machine). Peak memory is the CUDA allocator's peak on a GPU, the process's peak resident
set elsewhere (the process's, so give one name per run for separate figures). Also printed: what one epoch of Vimeo90K (51,312 training triplets) costs at
this rate with one such device.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.timing import median_seconds
from pervfi.models.generators import build_generator
from pervfi.runtime.device import resolve_device
from pervfi.train import PerceptualLoss, training_loss

VIMEO_TRAINING_TRIPLETS = 51_312
GRAD_CLIP = 0.1


def _batch(batch: int, size: int, device: torch.device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    frames = {name: torch.rand(batch, 3, size, size, generator=g) for name in ("img0", "img1", "gt")}
    flow01 = torch.randn(batch, 2, size, size, generator=g) * 4
    return {name: t.to(device) for name, t in {**frames, "flow01": flow01, "flow10": -flow01}.items()}


def _peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def measure(name: str, batch: int, size: int, runs: int, device: torch.device) -> tuple[float, float, float]:
    """Median wall and CPU seconds per training step, and the peak memory (GiB), of generator `name`."""
    torch.manual_seed(0)
    generator = build_generator(name).to(device).train()
    perceptual = PerceptualLoss(torchvision.models.vgg19(weights=None)).to(device)
    optimizer = torch.optim.AdamW(generator.parameters())
    data = _batch(batch, size, device)
    autocast = device.type == "cuda"

    cpu_seconds: list[float] = []

    def step() -> None:
        started = time.process_time()
        with torch.autocast(device.type, dtype=torch.float16, enabled=autocast):
            loss = training_loss(generator, data, name, perceptual=perceptual)["total"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(generator.parameters(), GRAD_CLIP)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        cpu_seconds.append(time.process_time() - started)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = median_seconds(step, runs)
    return seconds, statistics.median(cpu_seconds[1:]), _peak_memory_gib(device)


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
          f"median of {args.runs} steps; fp16 autocast on CUDA, fp32 elsewhere")
    print("| generator | s/step (wall) | steps/s | CPU s/step | peak memory (GiB) | one Vimeo90K epoch (h, wall) |")
    print("|---|---|---|---|---|---|")
    for name in args.names:
        seconds, cpu, peak = measure(name, args.batch, args.size, args.runs, device)
        epoch_hours = VIMEO_TRAINING_TRIPLETS // args.batch * seconds / 3600
        print(f"| {name} | {seconds:.2f} | {1 / seconds:.3f} | {cpu:.2f} | {peak:.2f} | {epoch_hours:.1f} |", flush=True)


if __name__ == "__main__":
    main()
