"""Time per frame pair of the PerVFI generators (flows given), median of several runs.

    python benchmarks/bench_generators.py [--size 256 448] [--runs 5] [--threads N] [--smoke]

Weights are the tests' seeded ones (the times do not depend on their values, only on the
architecture).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.timing import benchmark_parser, median_seconds, parse_benchmark_args  # noqa: E402
from pervfi.models.generators import build_generator
from tests.seeded_weights import seeded  # noqa: E402

# The reference implementation's CPU times per frame pair at 256×448, float32, 2 cores
# (figures from the project's issue 2), for the ratio printed at the end.
REFERENCE_SECONDS = {"v00": 6.7, "vb": 5.3}


def _inputs(batch: int, height: int, width: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    img0 = torch.rand(batch, 3, height, width, generator=g)
    img1 = torch.rand(batch, 3, height, width, generator=g)
    flow01 = torch.randn(batch, 2, height, width, generator=g) * 4
    return img0, img1, flow01, -flow01


def main() -> None:
    parser = benchmark_parser(__doc__, size=(256, 448), runs=5)
    parser.add_argument("--names", nargs="+", default=["v00", "vb"])
    args = parse_benchmark_args(parser)
    inputs = _inputs(1, *args.size)
    print(f"{args.size[0]}×{args.size[1]}, {args.threads} threads, median of {args.runs}")
    for name in args.names:
        model = seeded(build_generator(name), 0.5)
        seconds = median_seconds(lambda: model.interpolate(*inputs, time=0.5), args.runs)
        ref = REFERENCE_SECONDS.get(name)
        ratio = f"  ({seconds / ref:.2f}× the reference's {ref} s)" if ref and tuple(args.size) == (256, 448) else ""
        print(f"{name}: {seconds:.3f} s per frame pair{ratio}")


if __name__ == "__main__":
    main()
