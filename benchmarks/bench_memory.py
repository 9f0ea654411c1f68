"""Peak memory of the learned flow estimators' bidirectional path, each in a fresh process.

    python benchmarks/bench_memory.py [--names raft gma gmflow] [--size 480 640] [--iters 2]
                                      [--device cpu] [--code /work/main] [--runs 3] [--smoke]

On the CPU the peak is the process's resident-set high-water mark (ru_maxrss) above
what it held once the model was built and the frames made; on CUDA it is
torch.cuda.max_memory_allocated above the memory allocated before the call. `--code`
measures another checkout's `pervfi` (e.g. main) under the same settings, for a ratio.
Each figure is the median of `--runs` processes. Weights are random (memory does not
depend on them); `--iters` refinement steps (the volume is built before the first).
--smoke: RAFT only, 64×96, one process.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.timing import benchmark_parser, parse_benchmark_args  # noqa: E402

# Run in a child process: prints {"bytes": peak above baseline}.
_CHILD = r"""
import json, resource, sys
sys.path.insert(0, {code!r})
import torch
from pervfi import build_flow_estimator
torch.set_grad_enabled(False)
options = {{"iters": {iters}}} if {name!r} in ("raft", "raft_small", "gma") else {{}}
device = torch.device({device!r})
model = build_flow_estimator({name!r}, **options).eval().to(device)
g = torch.Generator().manual_seed(0)
img0 = torch.rand(1, 3, {height}, {width}, generator=g).to(device)
img1 = torch.roll(img0, shifts=(3, 5), dims=(2, 3))
def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
if device.type == "cuda":
    torch.cuda.synchronize(); base = torch.cuda.memory_allocated(); torch.cuda.reset_peak_memory_stats()
else:
    base = rss()
model.estimate_bidirectional(img0, img1)
peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else rss()
print(json.dumps({{"bytes": peak - base}}))
"""


def peak_bytes(code: Path, name: str, size: tuple[int, int], iters: int, device: str, runs: int) -> float:
    """Median over `runs` fresh processes of the peak above the baseline, in bytes."""
    script = _CHILD.format(code=str(code), name=name, height=size[0], width=size[1], iters=iters, device=device)
    values = []
    for _ in range(runs):
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        values.append(json.loads(result.stdout.strip().splitlines()[-1])["bytes"])
    return statistics.median(values)


def main() -> None:
    parser = benchmark_parser(__doc__, size=(480, 640), runs=3)
    parser.add_argument("--names", nargs="+", help="estimators (raft gma gmflow; --smoke: raft)")
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--code", type=Path, help="another checkout whose pervfi to compare with")
    args = parse_benchmark_args(parser)
    args.names = args.names or (["raft"] if args.smoke else ["raft", "gma", "gmflow"])
    size = tuple(args.size)
    columns = [("this checkout", ROOT)] + ([(str(args.code), args.code)] if args.code else [])
    print(f"{size[0]}×{size[1]} on {args.device}, peak above baseline (MB), median of {args.runs} processes")
    print("| estimator | " + " | ".join(label for label, _ in columns) + (" | ratio |" if args.code else " |"))
    print("|---" * (len(columns) + 1 + bool(args.code)) + "|")
    for name in args.names:
        peaks = [peak_bytes(code, name, size, args.iters, args.device, args.runs) for _, code in columns]
        cells = " | ".join(f"{peak / 1e6:.0f}" for peak in peaks)
        ratio = f" | {peaks[0] / peaks[1]:.2f}× |" if args.code else " |"
        print(f"| {name} | {cells}{ratio}")


if __name__ == "__main__":
    main()
