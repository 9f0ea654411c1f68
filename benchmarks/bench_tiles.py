"""Tiles that bound memory: how much of the frame the windows cover, and the per-pixel peak
figures the automatic tile size rests on (pervfi/runtime/memory.py).

    python benchmarks/bench_tiles.py                       # coverage at 4K, tile 512
    python benchmarks/bench_tiles.py --fit [--runs 3]      # PEAKS, measured (CPU, Linux)
    python benchmarks/bench_tiles.py --check --size 544 960 --max-memory 3GB
    python benchmarks/bench_tiles.py --smoke

Coverage: a 3840×2160 frame whose background moves 2 px and one 256×256 object 256 px;
the windows' total area over the frame's, with every window's halo sized by the frame's
largest motion (the rule before: largest motion + HALO_MARGIN) and by the motion that can
reach each window (now).

--fit: per generator and frame size, a fresh process (random weights: memory does not
depend on them) measures, as the resident-set high-water mark (reset through
/proc/self/clear_refs), the bytes per pixel the per-pair encoding holds and the peak of
one output time's step above it; it prints the larger figure of the sizes, median over
`--runs` processes, as the `PEAKS` table to paste into pervfi/runtime/memory.py.

--check: raft is replaced by DIS, then `Interpolator(max_memory=...)` runs one pair at
`--size` in a fresh process; prints the tile chosen, the model's prediction and the peak
resident memory the process reached.
"""
from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.timing import benchmark_parser, parse_benchmark_args
from pervfi.runtime.memory import PeakModel
from pervfi.runtime.tiling import (
    ALIGN,
    HALO_MARGIN,
    default_overlap,
    plan_tiles,
    window_halos,
    with_halo,
)

GENERATORS = {"v00": "PerVFIv00", "vb": "PerVFIvb", "splat": "SplatGenerator"}
FIT_SIZES = ((256, 448), (384, 640))

_PROC = r"""
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
def reset_peak():
    with open("/proc/self/clear_refs", "w") as stream:
        stream.write("5")
"""

# Prints {"encoding": B/px, "step": B/px} for one generator at one size.
_FIT_CHILD = _PROC + r"""
import gc, json, sys
sys.path.insert(0, {root!r})
import torch
from pervfi.models.generators import build_generator
torch.set_grad_enabled(False)
height, width = {height}, {width}
model = build_generator({name!r}).eval()
g = torch.Generator().manual_seed(0)
img0, img1 = torch.rand(2, 1, 3, height, width, generator=g)
flow = torch.randn(1, 2, height, width, generator=g) * 4
gc.collect(); reset_peak(); start = status("VmRSS")
encoded = model.encode_pair(img0, img1, flow, -flow) if hasattr(model, "encode_pair") else None
held = status("VmRSS") - start if encoded is not None else 0
reset_peak(); before = status("VmRSS")
if encoded is None:
    model.interpolate(img0, img1, flow, -flow, 0.5)
else:
    model.interpolate_at(encoded, 0.5)
step = status("VmHWM") - before
print(json.dumps({{"encoding": held / (height * width), "step": step / (height * width)}}))
"""

# Prints the tile chosen, the prediction and the peak for one pair through the Interpolator.
_CHECK_CHILD = _PROC + r"""
import json, sys
sys.path.insert(0, {root!r})
import torch
from pervfi.models.flow import build_flow_estimator
from pervfi.models.generators import build_generator
from pervfi.runtime import interpolator as module
from pervfi.runtime.interpolator import Interpolator
from pervfi.runtime.memory import peak_model
torch.set_grad_enabled(False)
height, width = {height}, {width}
g = torch.Generator().manual_seed(0)
img0 = torch.rand(1, 3, height, width, generator=g)
img1 = torch.roll(img0, shifts=(3, 5), dims=(2, 3))
interpolator = Interpolator(build_flow_estimator("dis"), build_generator({name!r}), device="cpu",
                            max_memory={budget})
chosen = []
tiled = module.tiled_interpolate
module.tiled_interpolate = lambda *args, **kwargs: chosen.append(args[6]) or tiled(*args, **kwargs)
reset_peak()
interpolator.interpolate(img0, img1)
print(json.dumps({{"tile": chosen[0] if chosen else None, "peak": status("VmHWM"),
                  "whole": peak_model(interpolator.generator).whole(height * width, 1, 1)}}))
"""


def coverage(height: int, width: int, tile: int, speed: float, side: int = 256) -> tuple[float, float, int, int]:
    """(windows' area over the frame's with one halo for all, the same with per-window
    halos, the largest window's pixels each way) for the scene of the module's docstring,
    its object `side` pixels square."""
    flow = torch.full((1, 2, height, width), 2.0)
    top, left = height // 2 - side // 2, width // 3
    flow[..., top:top + side, left:left + side] = speed
    regions = plan_tiles(height, width, tile, default_overlap(tile))
    before = [with_halo(region, math.ceil((speed + HALO_MARGIN) / ALIGN) * ALIGN) for region in regions]
    after = [with_halo(region, halo) for region, halo in zip(regions, window_halos(flow, -flow, regions))]

    def area(windows):
        return sum(w.height * w.width for w in windows)

    def largest(windows):
        return max(w.height * w.width for w in windows)

    return area(before) / (height * width), area(after) / (height * width), largest(before), largest(after)


def _child(source: str) -> dict:
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"a measuring process failed: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def fit(sizes: tuple[tuple[int, int], ...], runs: int) -> dict[str, PeakModel]:
    """The per-pixel figures of each generator: per size the median of `runs` fresh
    processes, then the larger of the sizes."""
    table = {}
    for name, class_name in GENERATORS.items():
        per_size = []
        for height, width in sizes:
            found = [_child(_FIT_CHILD.format(root=str(ROOT), name=name, height=height, width=width))
                     for _ in range(runs)]
            per_size.append({key: statistics.median(f[key] for f in found) for key in ("encoding", "step")})
            print(f"{name} {height}×{width}: encoding {per_size[-1]['encoding']:.0f} B/px, "
                  f"step {per_size[-1]['step']:.0f} B/px", file=sys.stderr)
        table[class_name] = PeakModel(*(math.ceil(max(s[key] for s in per_size) / 10) * 10
                                        for key in ("encoding", "step")))
    return table


def main(argv: list[str] | None = None) -> None:
    parser = benchmark_parser(__doc__, (2160, 3840), 1)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--speed", type=float, default=256.0, help="the fast object's motion in pixels")
    parser.add_argument("--fit", action="store_true", help="measure the per-pixel figures (fresh processes)")
    parser.add_argument("--check", action="store_true", help="run one pair under --max-memory and report its peak")
    parser.add_argument("--generator", choices=sorted(GENERATORS), default="vb", help="for --check")
    parser.add_argument("--max-memory", default="3GB", help="for --check")
    args = parse_benchmark_args(parser, argv)
    height, width = args.size
    if args.smoke:  # the scene scaled to the frame, and the budget check (a frame this small is never tiled)
        args.tile, args.speed, args.check = 48, 24.0, True
    side = min(256, height // 4)
    before, after, largest_before, largest_after = coverage(height, width, args.tile, args.speed, side)
    print(f"{width}×{height}, tile {args.tile}, one {side}-px object moving {args.speed:g} px: windows cover "
          f"{before:.2f}× the frame with one halo for all (largest window {largest_before} px), {after:.2f}× "
          f"with per-window halos (largest {largest_after} px)")
    if args.fit:
        sizes = ((64, 96), (96, 128)) if args.smoke else FIT_SIZES
        table = fit(sizes, args.runs)
        print("PEAKS = {")
        for class_name, model in table.items():
            print(f'    "{class_name}": PeakModel(encoding={model.encoding:.0f}, step={model.step:.0f}),')
        print("}")
    if args.check:
        found = _child(_CHECK_CHILD.format(root=str(ROOT), name=args.generator, height=height, width=width,
                                           budget=repr(args.max_memory)))
        print(f"{args.generator} {height}×{width} under --max-memory {args.max_memory}: tile {found['tile']}, "
              f"whole frame predicted {found['whole'] / 1e9:.2f} GB above what is held, "
              f"process peak {found['peak'] / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
