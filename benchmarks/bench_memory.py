"""Peak memory of interpolating one frame pair, stage by stage, each method and size in a fresh process.

    python benchmarks/bench_memory.py [--methods raft+pervfi raft+pervfi-vb] [--sizes 256x448 720p 1080p 4k]
                                      [--times 1] [--tile N] [--device cpu] [--code ../main] [--smoke]

Stages: `flow` (both flows of the pair), `encode` (the generator's per-pair step), `per time`
(each output frame: splatting onward), `write` (the frame to 8 bits and a PNG file). On the
CPU each figure is the process's peak resident memory (VmHWM, which Linux lets a process reset
through /proc/self/clear_refs) during that stage: what a user's machine must hold, everything
included (PyTorch, the models, the frames); `peak` is the largest. On CUDA: the peak of
`torch.cuda.max_memory_allocated` and of the memory reserved by the caching allocator. Weights
are the tests' seeded ones (memory does not depend on their values). With `--tile` the
generator runs in tiles (one stage, `per time`, includes the tiles' encoding), and so it does,
marked "(tiled)", when the Interpolator chooses tiles itself from the memory it has free. `--code` runs
another checkout's `pervfi` the same way, for a before/after table. Sizes: H×W, or 720p, 1080p,
4k. --smoke: `raft+pervfi` at 64×96.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.timing import SMOKE_SIZE, benchmark_parser, parse_benchmark_args  # noqa: E402

NAMED_SIZES = {"720p": (720, 1280), "1080p": (1080, 1920), "4k": (2160, 3840)}
STAGES = ("flow", "encode", "per time", "write")

# The child: prints {"stages": {stage: bytes}, "peak": bytes, "reserved": bytes | null}.
_CHILD = r"""
import json, re, sys, tempfile
sys.path.insert(0, {code!r}); sys.path.insert(0, {root!r})
import torch
from PIL import Image
from tests.seeded_weights import seeded
from pervfi.media.tensors import to_uint8
from pervfi.models.flow import build_flow_estimator
from pervfi.models.generators import build_generator
from pervfi.models.method_names import parse_method
from pervfi.runtime.interpolator import Interpolator

torch.set_grad_enabled(False)
device = torch.device({device!r})
cuda = device.type == "cuda"
spec = parse_method({method!r})
interpolator = Interpolator(seeded(build_flow_estimator(spec.flow)), seeded(build_generator(spec.generator)),
                            device=device, tile={tile!r})
g = torch.Generator().manual_seed(0)
img0 = torch.rand(1, 3, {height}, {width}, generator=g)
img1 = torch.roll(img0, shifts=(3, 5), dims=(2, 3))
stages = {{}}
reserved = [0]

def peak_so_far():
    if cuda:
        torch.cuda.synchronize()
        reserved[0] = max(reserved[0], torch.cuda.max_memory_reserved())
        return torch.cuda.max_memory_allocated()
    return int(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read()).group(1)) * 1024

def reset():
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    else:
        open("/proc/self/clear_refs", "w").write("5")

def measured(stage, function):
    def wrapper(*args, **kwargs):
        reset()
        result = function(*args, **kwargs)
        stages[stage] = max(stages.get(stage, 0), peak_so_far())
        return result
    return wrapper

# The interpolator's own steps, wrapped where it calls them.
interpolator._estimate = measured("flow", interpolator._estimate)
if hasattr(interpolator, "_encode_pair"):
    interpolator._encode_pair = measured("encode", interpolator._encode_pair)
    interpolator._interpolate_at = measured("per time", interpolator._interpolate_at)
else:  # a generator without a per-pair step (splat) is called whole for each time
    interpolator.generator.interpolate = measured("per time", interpolator.generator.interpolate)
tiled = []
if hasattr(interpolator, "_generate_tiled"):  # tiles (--tile, or chosen from the memory budget): one stage
    generate_tiled = measured("per time", interpolator._generate_tiled)
    interpolator._generate_tiled = lambda *args, **kwargs: tiled.append(True) or generate_tiled(*args, **kwargs)
start = peak_so_far()
times = [(k + 1) / ({times} + 1) for k in range({times})]
frames = interpolator.interpolate_times(img0.to(device), img1.to(device), times)
reset()
with tempfile.TemporaryDirectory() as folder:
    for k, frame in enumerate(frames):
        Image.fromarray(to_uint8(frame)).save(f"{{folder}}/{{k}}.png")
stages["write"] = peak_so_far()
print(json.dumps({{"stages": stages, "peak": max([start, *stages.values()]), "reserved": reserved[0] if cuda else None,
                  "tiled": bool(tiled)}}))
"""


def parse_size(text: str) -> tuple[int, int]:
    """'720p', '4k' or 'HxW' → (H, W)."""
    if text.lower() in NAMED_SIZES:
        return NAMED_SIZES[text.lower()]
    height, _, width = text.lower().partition("x")
    return int(height), int(width)


def measure(code: Path, method: str, size: tuple[int, int], times: int, tile: int | None, device: str) -> dict:
    """One fresh process's stage peaks, in bytes."""
    script = _CHILD.format(code=str(code), root=str(ROOT), method=method, height=size[0], width=size[1],
                           times=times, tile=tile, device=device)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{method} at {size[0]}×{size[1]} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = benchmark_parser(__doc__, size=(256, 448), runs=1)
    parser.add_argument("--methods", nargs="+", default=["raft+pervfi", "raft+pervfi-vb"])
    parser.add_argument("--sizes", nargs="+", type=parse_size, help="frame sizes (default: --size)")
    parser.add_argument("--times", type=int, default=1, help="output frames between the pair (1)")
    parser.add_argument("--tile", type=int, help="run the generator in tiles of this size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--code", type=Path, help="another checkout whose pervfi to measure beside this one")
    args = parse_benchmark_args(parser)
    sizes = [SMOKE_SIZE] if args.smoke else (args.sizes or [tuple(args.size)])
    methods = ["raft+pervfi"] if args.smoke else args.methods
    checkouts = [("this checkout", ROOT)] + ([(str(args.code), args.code)] if args.code else [])
    unit = "peak resident memory (VmHWM)" if args.device == "cpu" else "max_memory_allocated (reserved)"
    print(f"{args.device}, {unit} by stage in MB at {', '.join(f'{h}×{w}' for h, w in sizes)}, one fresh process "
          f"each, {args.times} output frame(s)"
          + (f", tiles of {args.tile}" if args.tile else ""))
    print("| method | size | code | " + " | ".join(STAGES) + " | peak |")
    print("|---" * (len(STAGES) + 4) + "|")
    for method in methods:
        for size in sizes:
            for label, code in checkouts:
                result = measure(code, method, size, args.times, args.tile, args.device)
                cells = [f"{result['stages'][s] / 1e6:.0f}" if s in result["stages"] else "–" for s in STAGES]
                if result.get("tiled"):
                    cells[STAGES.index("per time")] += " (tiled)"
                peak = f"{result['peak'] / 1e6:.0f}"
                if result["reserved"] is not None:
                    peak += f" ({result['reserved'] / 1e6:.0f})"
                print(f"| {method} | {size[0]}×{size[1]} | {label} | " + " | ".join(cells) + f" | {peak} |", flush=True)


if __name__ == "__main__":
    main()
