"""What the benchmark scripts share: their common options (with a `--smoke` mode that checks in
seconds that a script runs) and the median wall time of a call over several runs."""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

# --smoke: frames this small and one run, enough to run every line of a script quickly.
SMOKE_SIZE = (64, 96)


def benchmark_parser(doc: str, size: tuple[int, int], runs: int) -> argparse.ArgumentParser:
    """A parser with the options every benchmark takes: --size H W, --runs, --threads, --smoke."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=size, metavar=("H", "W"), help=f"frame size ({size[0]} {size[1]})")
    parser.add_argument("--runs", type=int, default=runs, help=f"timed runs, the median is reported ({runs})")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="PyTorch's CPU threads")
    parser.add_argument("--smoke", action="store_true",
                        help=f"check that the script runs: {SMOKE_SIZE[0]}×{SMOKE_SIZE[1]} frames, one run"
                             " (the figures mean nothing)")
    return parser


def parse_benchmark_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse, apply --threads, and reduce the work under --smoke (scripts reduce their own
    options further where they have more)."""
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    if args.smoke:
        args.size, args.runs = SMOKE_SIZE, 1
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    return args


def median_seconds(fn: Callable[[], object], runs: int, warm_up: bool = True,
                   clock: Callable[[], float] = time.perf_counter) -> float:
    """Median seconds of `runs` calls of `fn`, after one warm-up call (allocator, caches,
    one-time setup) unless `warm_up` is false; `clock` = time.process_time counts this
    process's CPU time instead of wall time (steadier on a machine shared with other jobs)."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    if warm_up:
        fn()
    times = []
    for _ in range(runs):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)
