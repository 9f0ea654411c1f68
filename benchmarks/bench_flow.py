"""Flow estimators: two separate calls vs the shared bidirectional path, median of runs.

    python benchmarks/bench_flow.py [--names raft raft_small gma gmflow dis] [--size 256 448] [--runs 5] [--smoke]

--smoke times RAFT-small and DIS only, unless --names says otherwise.

Weights are random (timings do not depend on their values).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.timing import benchmark_parser, median_seconds, parse_benchmark_args  # noqa: E402
from pervfi.models.flow import build_flow_estimator


def main() -> None:
    parser = benchmark_parser(__doc__, size=(256, 448), runs=5)
    parser.add_argument("--names", nargs="+", help="estimators (all of them; --smoke: raft_small dis)")
    args = parse_benchmark_args(parser)
    args.names = args.names or (["raft_small", "dis"] if args.smoke else ["raft", "raft_small", "gma", "gmflow", "dis", "farneback"])
    g = torch.Generator().manual_seed(0)
    img0 = torch.rand(1, 3, *args.size, generator=g)
    img1 = torch.roll(img0, shifts=(3, 5), dims=(2, 3))
    print(f"{args.size[0]}×{args.size[1]}, {torch.get_num_threads()} threads, median of {args.runs}")
    print("| estimator | two calls (s) | bidirectional (s) | speed-up |")
    print("|---|---|---|---|")
    for name in args.names:
        model = build_flow_estimator(name).eval()
        separate = median_seconds(lambda: (model.estimate(img0, img1), model.estimate(img1, img0)), args.runs)
        shared = median_seconds(lambda: model.estimate_bidirectional(img0, img1), args.runs)
        print(f"| {name} | {separate:.3f} | {shared:.3f} | {separate / shared:.2f}× |")


if __name__ == "__main__":
    main()
