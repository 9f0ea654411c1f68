"""Does training learn? Fine-tune on a short clip made from ../shared/data on the CPU and compare the
validation PSNR at the start and at the end with the two-frame average on the same held-out triplets.

    python benchmarks/bench_learning.py [--steps 100] [--out runs/bench-learning]
    python benchmarks/bench_learning.py --smoke      # 2 steps on 96-row strips, to check the script runs

The clip: the ten Sintel "market" frames (1024×436) cut into four 256×436 strips, each strip a
sequence of ten frames; the last three frames of each are held out (one validation triplet per
strip, never trained on), the first seven give triplets at gaps 1 and 2. The run is
`python -m pervfi.train --config finetune` for vb with flows by DIS (no weights), starting from
the authors' scratch start when ``checkpoints/network-lf.pytorch`` is there and from PyTorch's
default initialisation otherwise, and the perceptual loss on ImageNet VGG19 when its weights are
in the torch hub cache, on a randomly initialised VGG19 otherwise (both said in the output).
The run folder keeps log.csv, val.csv and curves.png.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pervfi.metrics.pixel import psnr
from pervfi.models.generators import build_generator
from pervfi.train import load_config, train
from pervfi.train.datasets import FootageTriplets
from pervfi.train.loading import unit_range
from pervfi.train.logs import read_rows
from pervfi.train.losses import VGG19_URL, PerceptualLoss

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sintel-market-10"
STRIP, STRIPS = 256, 4
VAL_FRACTION = 0.3  # of ten frames: the last three, one triplet per strip


def make_clip(folder: Path, rows: int | None = None) -> Path:
    """The four strips of the Sintel frames (their first `rows` rows; all by default) as four frame folders."""
    frames = sorted(DATA.glob("*.png"))
    if len(frames) < 10:
        sys.exit(f"bench_learning needs the ten Sintel frames in {DATA}")
    for path in frames:
        pixels = np.asarray(Image.open(path).convert("RGB"))
        for strip in range(STRIPS):
            target = folder / f"strip{strip}" / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels[:rows, strip * STRIP:(strip + 1) * STRIP]).save(target)
    return folder


def perceptual_loss() -> tuple[PerceptualLoss, str]:
    cached = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_URL.rsplit("/", 1)[-1]
    if cached.is_file():
        return PerceptualLoss.imagenet(), "ImageNet VGG19"
    return PerceptualLoss(torchvision.models.vgg19(weights=None)), "VGG19 with random weights (no ImageNet weights here)"


def average_psnr(source: FootageTriplets) -> float:
    """The two-frame average's PSNR on the held-out triplets."""
    scores = []
    for triplet in source.split("val"):
        sample = source.load(triplet)
        img0, img1, gt = (unit_range(frame)[None] for frame in (sample.img0, sample.img1, sample.gt))
        scores.append(psnr((img0 + img1) / 2, gt).item())
    return sum(scores) / len(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="training steps (100: about 10 minutes of CPU time)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--max-lr", type=float, default=1e-3)
    parser.add_argument("--out", type=Path, help="the run folder's parent (default runs/bench-learning)")
    parser.add_argument("--smoke", action="store_true", help="2 steps on 96-row strips, to check the script runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        if args.smoke:
            args.steps, args.out = 2, args.out or Path(scratch)
        run(args, args.out or Path("runs/bench-learning"))


def run(args: argparse.Namespace, folder: Path) -> None:
    args.out = folder
    clip = make_clip(args.out / "clip", rows=96 if args.smoke else None)
    network_lf = Path("checkpoints") / "network-lf.pytorch"
    init = "scratch" if network_lf.is_file() else str(args.out / "default-init.pth")
    if init != "scratch":
        torch.manual_seed(0)
        torch.save(build_generator("vb").state_dict(), init)
    steps_per_epoch = 32 // args.batch  # four strips × (5 triplets at gap 1 + 3 at gap 2)
    overrides = ["device=cpu", "model=vb", f"init={init}", "data.flows=[dis]", f"data.crop={args.crop}",
                 "data.gaps=[1,2]", f"data.val_fraction={VAL_FRACTION}", "data.workers=0",
                 f"train.batch_size={args.batch}", f"train.epochs={math.ceil(args.steps / steps_per_epoch)}",
                 f"train.stop_after={args.steps}", f"train.max_lr={args.max_lr}", "train.seed=0",
                 f"log.val_every={max(1, args.steps // 10)}", f"log.save_every={args.steps}", "log.keep=1",
                 "log.metrics=[psnr,ssim]", "log.best=[psnr]", f"data.root={clip}", f"out={args.out / 'run'}"]
    config = load_config("finetune", overrides)
    perceptual, vgg = perceptual_loss()
    started = time.perf_counter()
    out = train(config, perceptual=perceptual, progress=False)
    minutes = (time.perf_counter() - started) / 60
    rows = read_rows(out, "val")
    source = FootageTriplets(clip, "frames", [1, 2], VAL_FRACTION, lambda: None, "dis", cache=out / "flows" / "dis")
    print(f"vb fine-tuned {args.steps} steps (batch {args.batch}, {args.crop}×{args.crop} crops, max_lr {args.max_lr}) "
          f"on {len(source.split('train'))} training triplets in {minutes:.1f} min on the CPU "
          f"({torch.get_num_threads()} threads); start: {'the authors scratch start' if init == 'scratch' else 'default init'};"
          f" perceptual loss: {vgg}")
    print(f"| held-out triplets | two-frame average PSNR | PSNR at step 0 | PSNR at step {rows[-1]['step']} | best |")
    print("|---|---|---|---|---|")
    print(f"| {len(source.split('val'))} | {average_psnr(source):.2f} | {rows[0]['psnr']:.2f} | {rows[-1]['psnr']:.2f} | "
          f"{max(row['psnr'] for row in rows):.2f} |")
    print(f"curves: {out / 'curves.png'}")


if __name__ == "__main__":
    main()
