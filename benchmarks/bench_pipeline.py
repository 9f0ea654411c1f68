"""CPU time per interpolated frame through the whole tool, and the I/O pipeline's overhead.

    python benchmarks/bench_pipeline.py [--size 256 448] [--pairs 4] [--runs 3] [--methods raft+pervfi raft+pervfi-vb]
                                        [--precision fp32|bf16|fp16] [--smoke]

For each method, `--runs` times in turn: the model alone on every pair of the sequence
(flows both ways + generator) and the streaming pipeline on the same frames as a folder of
PNG files (decode, model, MP4 + PNG encode). Times are per interpolated frame, medians
over the runs; the I/O overhead is pipeline / model − 1. Weights are the tests' seeded
ones (times do not depend on the values). --smoke: one pair, one run, raft_small+pervfi-vb
unless --methods says otherwise.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.timing import benchmark_parser, parse_benchmark_args  # noqa: E402
from pervfi.media.sources import discover as discover_sequences
from pervfi.media.tensors import to_tensor
from pervfi.models.flow import build_flow_estimator
from pervfi.models.generators import build_generator
from pervfi.models.method_names import parse_method
from pervfi.runtime.interpolator import Interpolator
from pervfi.runtime.sequence import SequenceRun, Settings
from tests.media import moving_frames, write_frames  # noqa: E402
from tests.seeded_weights import seeded  # noqa: E402

# The reference implementation's CPU seconds per interpolated frame at 256×448 (issue 4).
REFERENCE_SECONDS = {"raft+pervfi": 9.8, "raft+pervfi-vb": 8.3}


def build(method: str, **options) -> Interpolator:
    spec = parse_method(method)
    flow, generator = seeded(build_flow_estimator(spec.flow), 0.5), seeded(build_generator(spec.generator), 0.5)
    return Interpolator(flow, generator.eval(), device="cpu", **options)


def main() -> None:
    parser = benchmark_parser(__doc__, size=(256, 448), runs=3)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--methods", nargs="+", help="methods (raft+pervfi raft+pervfi-vb; --smoke: raft_small+pervfi-vb)")
    parser.add_argument("--precision", help="fp32, bf16 or fp16 (default: the Interpolator's, fp32 on the CPU)")
    args = parse_benchmark_args(parser)
    if args.smoke:
        args.pairs = 1
    args.methods = args.methods or (["raft_small+pervfi-vb"] if args.smoke else list(REFERENCE_SECONDS))
    torch.set_grad_enabled(False)
    height, width = args.size
    frames = moving_frames(args.pairs + 1, height, width, step=4)
    print(f"{height}×{width}, {torch.get_num_threads()} threads, {args.pairs} pairs, median of {args.runs} runs, "
          f"{args.precision or 'default precision'}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "seq"
        write_frames(folder, frames)
        for method in args.methods:
            interpolator = build(method, **({"precision": args.precision} if args.precision else {}))
            tensors = [to_tensor(frame, interpolator.device) for frame in frames]
            interpolator.interpolate(tensors[0], tensors[1])  # warm-up
            settings = Settings(scale=2, png=True, quiet=True, seed=0)
            model, pipeline = [], []
            for _ in range(args.runs):
                start = time.perf_counter()
                for img0, img1 in zip(tensors, tensors[1:]):
                    interpolator.interpolate(img0, img1, rng=torch.Generator().manual_seed(0))
                model.append((time.perf_counter() - start) / args.pairs)
                start = time.perf_counter()
                (sequence,) = discover_sequences(folder)
                SequenceRun(interpolator, sequence, Path(tmp) / "out", method, settings).run()
                pipeline.append((time.perf_counter() - start) / args.pairs)
            model_seconds, pipeline_seconds = statistics.median(model), statistics.median(pipeline)
            ref = REFERENCE_SECONDS.get(method)
            versus = f", {pipeline_seconds / ref:.2f}× the reference's {ref} s" if ref and (height, width) == (256, 448) else ""
            print(f"{method}: model {model_seconds:.2f} s, pipeline {pipeline_seconds:.2f} s per interpolated frame "
                  f"(I/O overhead {100 * (pipeline_seconds / model_seconds - 1):+.1f}%{versus})")


if __name__ == "__main__":
    main()
