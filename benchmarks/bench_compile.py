"""Time per interpolated frame through the Interpolator, eager against `--compile` (torch.compile,
inductor), median of several runs.

    python benchmarks/bench_compile.py [--size 256 448] [--runs 5] [--threads N] [--methods dis+pervfi-vb dis+pervfi]

With DIS (OpenCV, never compiled) the compiled parts are the generator's per-pair and per-time
steps; name a learned flow (``raft_small+pervfi-vb``) to compile it too. The first compiled
call (the compilation) is reported apart, with the largest difference from eager. Weights are
the tests' seeded ones (times do not depend on their values). `--smoke`: dis+pervfi-vb only.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.timing import benchmark_parser, median_seconds, parse_benchmark_args
from pervfi.models.flow import build_flow_estimator
from pervfi.models.generators import build_generator
from pervfi.models.method_names import parse_method
from pervfi.runtime.interpolator import Interpolator
from tests.seeded_weights import seeded


def _frames(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth random texture and a shifted copy."""
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, 3, max(1, height // 16), max(1, width // 16), generator=g)
    img0 = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)
    return img0, torch.roll(img0, shifts=(2, 4), dims=(2, 3))


def _interpolator(method: str, compile: bool) -> Interpolator:
    spec = parse_method(method)
    flow = build_flow_estimator(spec.flow)
    if any(True for _ in flow.parameters()):
        flow = seeded(flow, 0.5)
    return Interpolator(flow, seeded(build_generator(spec.generator), 0.5), device="cpu", precision="fp32",
                        compile=compile)


def measure(method: str, img0: torch.Tensor, img1: torch.Tensor, runs: int) -> str:
    """One line: eager and compiled seconds per frame, the first compiled call, the largest difference."""
    eager, compiled = _interpolator(method, False), _interpolator(method, True)
    noise = None
    if hasattr(eager.generator, "sample_noise"):
        height, width = (-(-side // 8) * 8 for side in img0.shape[-2:])
        noise = eager.generator.sample_noise(1, height, width, rng=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    out = compiled.interpolate(img0, img1, zs=noise)
    first = time.perf_counter() - start
    difference = (out - eager.interpolate(img0, img1, zs=noise)).abs().max().item()
    eager_s = median_seconds(lambda: eager.interpolate(img0, img1, zs=noise), runs)
    compiled_s = median_seconds(lambda: compiled.interpolate(img0, img1, zs=noise), runs)
    return (f"{method}: eager {eager_s:.3f} s, compiled {compiled_s:.3f} s per frame ({eager_s / compiled_s:.2f}×); "
            f"first compiled call {first:.0f} s; max |compiled − eager| {difference:.1e}")


def main() -> None:
    parser = benchmark_parser(__doc__, size=(256, 448), runs=5)
    parser.add_argument("--methods", nargs="+", default=["dis+pervfi-vb", "dis+pervfi"])
    args = parse_benchmark_args(parser)
    if args.smoke:
        args.methods = ["dis+pervfi-vb"]
    img0, img1 = _frames(*args.size)
    print(f"{args.size[0]}×{args.size[1]}, {args.threads} threads, median of {args.runs}, fp32")
    for method in args.methods:
        print(measure(method, img0, img1, args.runs), flush=True)


if __name__ == "__main__":
    main()
