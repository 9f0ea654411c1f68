"""Time per frame pair of the PerVFI generators (flows given), median of several runs.

    python benchmarks/bench_generators.py [--size 256 448] [--runs 5] [--threads N]

Weights come from the conformance fill when ../shared is present (the numbers do not
depend on the weights' values, only on the architecture), else stay random.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.timing import median_seconds  # noqa: E402
from pervfi import build_generator  # noqa: E402

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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=(256, 448), metavar=("H", "W"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--names", nargs="+", default=["v00", "vb"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    inputs = _inputs(1, *args.size)
    print(f"{args.size[0]}×{args.size[1]}, {args.threads} threads, median of {args.runs}")
    for name in args.names:
        model = build_generator(name).eval()
        try:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.conformance import CONFORMANCE, fill

            if CONFORMANCE.exists():
                fill(model, "pervfi-conformance-v1", 0.5)
        except ImportError:
            pass
        seconds = median_seconds(lambda: model.interpolate(*inputs, time=0.5), args.runs)
        ref = REFERENCE_SECONDS.get(name)
        ratio = f"  ({seconds / ref:.2f}× the reference's {ref} s)" if ref and tuple(args.size) == (256, 448) else ""
        print(f"{name}: {seconds:.3f} s per frame pair{ratio}")


if __name__ == "__main__":
    main()
