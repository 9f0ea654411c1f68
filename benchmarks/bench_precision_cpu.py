"""bf16 against fp32 on the CPU: seconds per frame and PSNR, with channels-last and without.

    python benchmarks/bench_precision_cpu.py [--method raft+pervfi] [--size 256 448] [--runs 3]
                                             [--configs fp32 fp32-cl bf16-cl bf16] [--cpu-time] [--conv] [--smoke]

Each configuration builds `Interpolator(precision=..., channels_last=...)` with the tests' seeded
weights and interpolates the middle of frames 16 and 18 of ../shared/data/sintel-market-10
(resized to --size; moving synthetic frames without ../shared) with the same noise; the time is
the median of --runs calls after a warm-up, the PSNR is against the first configuration's frame. It also says
whether the CPU has bf16 natively (AVX-512 BF16 or AMX): without it bf16 is emulated and slow,
which is why the default precision there is fp32 (runtime/precision.py). --conv measures
instead one 3×3 convolution 128→128 at 1/2 of --size (the hardware's rate, GFLOP/s). --smoke:
raft_small+pervfi-vb, fp32 and bf16-cl.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.timing import benchmark_parser, median_seconds, parse_benchmark_args  # noqa: E402
from pervfi.media.frame_files import read_frame  # noqa: E402
from pervfi.media.tensors import to_tensor  # noqa: E402
from pervfi.models.flow import build_flow_estimator  # noqa: E402
from pervfi.models.generators import build_generator  # noqa: E402
from pervfi.models.method_names import parse_method  # noqa: E402
from pervfi.ops import autocast, precision_dtype  # noqa: E402
from pervfi.runtime.interpolator import Interpolator  # noqa: E402
from pervfi.runtime.precision import CPU_NATIVE_BF16, cpu_features  # noqa: E402
from tests.media import moving_frames  # noqa: E402
from tests.seeded_weights import seeded  # noqa: E402

FRAMES = Path(__file__).resolve().parents[2] / "shared" / "data" / "sintel-market-10"
# name -> (precision, channels_last)
CONFIGS = {"fp32": ("fp32", False), "fp32-cl": ("fp32", True), "bf16-cl": ("bf16", True), "bf16": ("bf16", False)}


def frames(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    if FRAMES.is_dir():
        pair = [to_tensor(read_frame(FRAMES / f"frame_{i:04d}.png")) for i in (16, 18)]
        return tuple(F.interpolate(x, size=(height, width), mode="area") for x in pair)
    return tuple(to_tensor(frame) for frame in moving_frames(2, height, width, step=4))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return (10 * torch.log10(1 / F.mse_loss(a, b))).item()


def conv_rates(height: int, width: int, configs: list[str], runs: int, clock) -> None:
    """GFLOP/s of one 3×3 convolution 128→128 over a height/2 × width/2 map in each configuration."""
    x = torch.randn(1, 128, height // 2, width // 2)
    flops = 2 * 128 * 128 * 9 * x.shape[2] * x.shape[3]
    for name in configs:
        precision, channels_last = CONFIGS[name]
        layout = torch.channels_last if channels_last else torch.contiguous_format
        conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(memory_format=layout)
        with autocast("cpu", precision_dtype(precision)):
            seconds = median_seconds(lambda: conv(x.to(memory_format=layout)), runs, clock=clock)  # noqa: B023
        print(f"{name}: {flops / seconds / 1e9:.2f} GFLOP/s", flush=True)


def main() -> None:
    parser = benchmark_parser(__doc__, size=(256, 448), runs=3)
    parser.add_argument("--method", default="raft+pervfi")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--cpu-time", action="store_true",
                        help="time this process's CPU seconds instead of wall seconds (a shared machine; use --threads 1)")
    parser.add_argument("--conv", action="store_true", help="time one 3×3 convolution 128→128 instead (GFLOP/s)")
    args = parse_benchmark_args(parser)
    if args.smoke:
        args.method, args.configs = "raft_small+pervfi-vb", ["fp32", "bf16-cl"]
    clock = time.process_time if args.cpu_time else time.perf_counter
    native = sorted(set(CPU_NATIVE_BF16) & cpu_features()) or "none (emulated)"
    what = "3×3 convolution 128→128 at 1/2 of" if args.conv else args.method
    print(f"{what} {args.size[0]}×{args.size[1]}, {torch.get_num_threads()} threads, "
          f"{'CPU' if args.cpu_time else 'wall'} seconds, median of {args.runs} runs; native bf16: {native}", flush=True)
    if args.conv:
        return conv_rates(*args.size, args.configs, args.runs, clock)
    spec = parse_method(args.method)
    img0, img1 = frames(*args.size)
    reference, fp32_seconds = None, None
    for name in args.configs:
        precision, channels_last = CONFIGS[name]
        flow, generator = seeded(build_flow_estimator(spec.flow), 0.5), seeded(build_generator(spec.generator), 0.5)
        interpolator = Interpolator(flow, generator, device="cpu", precision=precision, channels_last=channels_last)
        run = lambda: interpolator.interpolate(img0, img1, rng=torch.Generator().manual_seed(0))  # noqa: E731, B023
        seconds = median_seconds(run, args.runs, clock=clock)
        frame = run()
        if reference is None:
            reference, fp32_seconds = frame, seconds
        print(f"{name}: {seconds:.2f} s per frame, {fp32_seconds / seconds:.2f}× the first, "
              f"{psnr(frame, reference):.1f} dB against it", flush=True)


if __name__ == "__main__":
    main()
