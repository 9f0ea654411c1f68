"""python -m pervfi.evaluate: score a method on a benchmark, or measure its cost.

    python -m pervfi.evaluate -m raft+pervfi --dataset vimeo90k --root data/vimeo_triplet --out results/vimeo
    python -m pervfi.evaluate -m dis+splat --dataset davis --root data/DAVIS --scale 4
    python -m pervfi.evaluate --speed -m raft+pervfi --device cuda

The markdown table goes to stdout; logs and the progress bar to stderr. Errors the user
can fix print one line and exit with status 2.
"""
from __future__ import annotations

import argparse
import logging
import sys

from pervfi.core.cpu_threads import use_threads
from pervfi.metrics.suite import METRIC_NAMES, metric_names
from pervfi.runtime.console import (
    ArgumentParser,
    add_threads_option,
    configure_logging,
    positive_int,
    program_name,
    run_command,
)

from .contenders import NOISE_MODES, method_names
from .cost import cost_table, measure_cost
from .datasets import DATASETS, SCALES
from .results import markdown_table
from .runner import evaluate

log = logging.getLogger("pervfi.evaluate")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog=program_name("python -m pervfi.evaluate"), description=__doc__.split("\n")[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--method", required=True,
                        help=f"FLOW+GENERATOR (e.g. raft+pervfi, dis+splat) or a baseline: {', '.join(method_names()[:-1])}")
    parser.add_argument("--dataset", help=f"one of {', '.join(DATASETS)}")
    parser.add_argument("--root", help="the dataset's folder, in its published layout")
    parser.add_argument("--scale", type=int, default=2, choices=SCALES,
                        help="video datasets: keep every SCALE-th frame, interpolate the others (default 2)")
    parser.add_argument("--limit", type=int, help="only the first N triplets / frame pairs")
    parser.add_argument("--out", help="folder for samples.csv and summary.json; a re-run resumes it")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    parser.add_argument("--metrics", default=",".join(METRIC_NAMES),
                        help=f"comma-separated subset of {','.join(METRIC_NAMES)} (default all)")
    parser.add_argument("--noise", default="heat", choices=NOISE_MODES,
                        help="v00: sample at heat 0.3 (default) or the reference's 'best noise' protocol")
    parser.add_argument("--seed", type=int, default=0, help="seed of v00's noise (default 0)")
    parser.add_argument("--ckpt-dir", default="checkpoints", help="checkpoint folder (default checkpoints)")
    # the option's earlier name, still accepted
    parser.add_argument("--checkpoints", dest="ckpt_dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--no-download", action="store_true", help="never download checkpoints or metric weights")
    add_threads_option(parser)
    parser.add_argument("--speed", action="store_true",
                        help="measure parameters, FLOPs and time per frame at 512×512 instead of scoring")
    parser.add_argument("--runs", type=positive_int, default=10, help="--speed: timed runs, the median is reported")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging()

    def work() -> None:
        use_threads(args.threads)
        if args.speed:
            print(cost_table(measure_cost(args.method, device=args.device, runs=args.runs)))
            return
        if not args.dataset or not args.root:
            parser.error("--dataset and --root are required (or --speed)")
        metrics = metric_names(args.metrics)
        summary = evaluate(args.method, args.dataset, args.root, scale=args.scale, limit=args.limit, out=args.out,
                           device=args.device, metrics=metrics, noise=args.noise, seed=args.seed,
                           checkpoint_dir=args.ckpt_dir, download=not args.no_download,
                           offline=True if args.no_download else None)
        print(markdown_table(summary, metrics, by_group=DATASETS[summary["dataset"]].report_groups))
        if args.out is None:
            log.info("no --out: the scores were not kept; add --out DIR to keep them and resume")

    return run_command(work, stopped="the samples scored so far are kept in --out")

if __name__ == "__main__":
    sys.exit(main())
