"""Throughput of the whole tool with 1, 2, ... workers (`--devices`), against one process.

    python benchmarks/bench_parallel.py [--workers 1 2] [--kind cpu|cuda|mps] [--frames 33] [--size 256 448]
                                        [--method dis+pervfi-vb] [--runs 3] [--smoke]

Each figure is a real command line, as a user runs it (process start, model loading,
decoding, segments, joining): output frames per second of wall time, the median of
`--runs` runs (after one warm-up run). ``--kind cpu`` gives workers ``cpu,cpu,...``;
``--kind cuda`` (or ``mps``) gives ``cuda:0,cuda:1,...``. The "1 process" line is the plain command
without `--devices`. On a machine with fewer cores than workers the figures show the
overhead of splitting; on one GPU per worker they show the scaling. The learned generators
get the tests' seeded weights (time does not depend on the values), written as checkpoint
files in a temporary folder. `--smoke`: dis+splat on 3 frames of 64×96, one run.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.timing import benchmark_parser, median_seconds, parse_benchmark_args  # noqa: E402
from tests.media import moving_frames, write_frames  # noqa: E402


def checkpoints(folder: Path) -> Path:
    """v00 and vb checkpoints with the tests' seeded weights (time does not depend on the values)."""
    from tests.checkpoint_files import model_state, official_layout, serialized, write

    for name in ("v00", "vb"):
        write(folder / "PerVFI" / f"{name}.pth", serialized(official_layout(name, model_state(name))))
    return folder


def command(data: Path, save: Path, method: str, ckpt: Path, devices: str | None, segment_frames: int) -> list[str]:
    line = [sys.executable, str(ROOT / "infer_video.py"), "-m", method, "-data", str(data), "-s", str(save),
            "--ckpt-dir", str(ckpt), "--quiet", "--seed", "0", "--scene-cut", "off"]
    if devices is not None:
        line += ["--devices", devices, "--segment-frames", str(segment_frames)]
    return line


def main() -> None:
    parser = benchmark_parser(__doc__, size=(256, 448), runs=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--kind", choices=("cpu", "cuda", "mps"), default="cpu",
                        help="worker devices: the CPU repeated, or accelerators by index (cpu)")
    parser.add_argument("--frames", type=int, default=33, help="source frames (output: 2× − 1)")
    parser.add_argument("--method", default="dis+pervfi-vb")
    args = parse_benchmark_args(parser)
    if args.smoke:  # dis+splat on 3 frames, one run without warm-up: it checks that everything runs
        args.method, args.frames = "dis+splat", 3
    height, width = args.size
    outputs = 2 * args.frames - 1
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    print(f"{args.method}, {args.frames} frames of {height}×{width} -> {outputs}, {os.cpu_count()} cores, "
          f"median of {args.runs} run(s)")
    with tempfile.TemporaryDirectory() as tmp:
        data, ckpt = Path(tmp) / "in", Path(tmp) / "ckpt"
        if "pervfi" in args.method:
            checkpoints(ckpt)
        write_frames(data / "seq", moving_frames(args.frames, height, width, step=4))
        settings = [("1 process", None)] + [
            (f"{n} worker(s)", ",".join([args.kind] * n if args.kind == "cpu" else [f"{args.kind}:{i}" for i in range(n)]))
            for n in args.workers]
        base = None
        for label, devices in settings:
            # Segments: about four per worker, so the queue balances the load.
            length = max(2, args.frames // (4 * max(1, len(devices.split(",")) if devices else 1)))
            line = command(data, Path(tmp) / "out", args.method, ckpt, devices, length)

            def run(line: list[str] = line, label: str = label) -> None:
                done = subprocess.run(line, env=env, capture_output=True, text=True)
                if done.returncode != 0:  # the tool's own one-line reason, not a traceback of ours
                    sys.exit(f"{label}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")

            seconds = median_seconds(run, args.runs, warm_up=not args.smoke)
            base = base or seconds
            print(f"{label:>12}: {outputs / seconds:6.2f} frames/s ({seconds:.1f} s, {base / seconds:.2f}× one process)")


if __name__ == "__main__":
    main()
