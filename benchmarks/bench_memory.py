"""Peak memory of interpolating one frame pair, stage by stage, each method and size in a fresh process.

    python benchmarks/bench_memory.py [--methods raft+pervfi raft+pervfi-vb] [--sizes 256x448 720p 1080p 4k]
                                      [--times 1] [--tile N] [--device cpu] [--code ../main]
                                      [--reference ../PerVFI] [--runs 3] [--smoke]

Stages: `flow` (both flows of the pair), `encode` (the generator's per-pair step), `per time`
(each output frame: splatting onward), `write` (the frame to 8 bits and a PNG file). On the
CPU each figure is the process's peak resident memory (VmHWM, which Linux lets a process reset
through /proc/self/clear_refs) during that stage: what a user's machine must hold, everything
included (PyTorch, the models, the frames); `peak` is the largest; each figure is the median
of `--runs` fresh processes (1), as a process's peak moves by a few hundred MB from one run to
the next. On CUDA: the peak of
`torch.cuda.max_memory_allocated` and of the memory reserved by the caching allocator. Weights
are the tests' seeded ones (memory does not depend on their values). With `--tile` the
generator runs in tiles (one stage, `per time`, includes the tiles' encoding), and so it does,
marked "(tiled)", when the Interpolator chooses tiles itself from the memory it has free. `--code` runs
another checkout's `pervfi` the same way, for a before/after table. `--reference` runs the
authors' code (a checkout of github.com/mulns/PerVFI, with its requirements `loguru` and
`accelerate` importable) beside ours, on the CPU in float32 with the same seeded weights: its
flow (both directions, its full correlation volume), then its generator's one call for the
frame (encoding included: "per time"). Its CUDA-only pieces are replaced so that it runs here,
as the conformance vectors were made: forward splatting (a CuPy kernel) by ours, `.cuda()` by
staying on the CPU, the removed `torch.qr` by `torch.linalg.qr`. Sizes: H×W, or 720p, 1080p,
4k. --smoke: `raft+pervfi` at 64×96.
"""
from __future__ import annotations

import json
import statistics
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


# The authors' code in a child: the same figures, from their `build_flow_estimator` and generator.
_REFERENCE_CHILD = r"""
import json, re, sys, tempfile, types
from pathlib import Path
sys.path.insert(0, {root!r})
import torch
from PIL import Image
from pervfi.media.tensors import to_uint8
from pervfi.models import registry
from pervfi.ops.splat import softsplat
from tests.checkpoint_files import model_state, official_layout, serialized, write

cupy = sys.modules["cupy"] = types.ModuleType("cupy")  # their kernels' import; only splatting runs, replaced below
cupy.memoize = lambda **options: (lambda function: function)
torch.Tensor.cuda = lambda self, *args, **kwargs: self
torch.qr = torch.linalg.qr
sys.path.insert(0, {source!r})
from models.flow_estimators import build_flow_estimator
from models.generators import build_generator_arch
from models.pipeline import get_z
import models.generators.PFlowVFI_V0, models.generators.PFlowVFI_Vb
for module in [m for name, m in sys.modules.items() if name.startswith("models.generators")]:
    if hasattr(module, "softsplat") and callable(module.softsplat):
        module.softsplat = lambda tenIn, tenFlow, tenMetric, strMode: softsplat(tenIn, tenFlow, tenMetric, strMode)

torch.set_grad_enabled(False)
flow_name = {flow!r}
version = {generator!r}
folder = Path(tempfile.mkdtemp())
write(folder / "checkpoints" / registry.get_entry(flow_name).checkpoint.path, serialized(official_layout(flow_name, model_state(flow_name))))
import os; os.chdir(folder)  # their loader reads checkpoints/… from the working folder
flownet, compute_flow = build_flow_estimator(flow_name, device="cpu")
generator = build_generator_arch(version)
generator.load_state_dict(model_state(version))
generator.eval()
g = torch.Generator().manual_seed(0)
img0 = torch.rand(1, 3, {height}, {width}, generator=g)
img1 = torch.roll(img0, shifts=(3, 5), dims=(2, 3))
stages = {{}}

def peak_so_far():
    return int(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read()).group(1)) * 1024

def reset():
    open("/proc/self/clear_refs", "w").write("5")

start = peak_so_far()
reset()
flows = compute_flow(img0, img1)
stages["flow"] = peak_so_far()
frames = []
for k in range({times}):
    reset()
    zs = get_z(0.3, img0.shape[-2:], 1, img0.device)
    prediction, _ = generator(zs=zs, inps=[img0, img1, *flows], time=(k + 1) / ({times} + 1), code="decode")
    if not torch.isfinite(prediction).all():
        raise SystemExit("the authors' generator made NaN or infinite values")
    frames.append(prediction.clamp(0, 1))
    stages["per time"] = max(stages.get("per time", 0), peak_so_far())
reset()
for k, frame in enumerate(frames):
    Image.fromarray(to_uint8(frame)).save(folder / f"{{k}}.png")
stages["write"] = peak_so_far()
print(json.dumps({{"stages": stages, "peak": max([start, *stages.values()]), "reserved": None, "tiled": False}}))
"""

GENERATOR_VERSIONS = {"pervfi": "v00", "pervfi-vb": "vb"}  # our generator names → the authors' versions
REFERENCE_FLOWS = ("raft", "raft_small", "gma", "gmflow")  # the authors' flow estimators, named as ours


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
    return run_child(script, method, size)


def reference_source(checkout: Path, methods: list[str]) -> Path:
    """The folder of the authors' inference code in `checkout`; SystemExit when it is not
    there or cannot run one of `methods`."""
    source = checkout / "src" / "test"
    if not (source / "models" / "pipeline.py").is_file():
        raise SystemExit(f"--reference: {checkout} is not a checkout of github.com/mulns/PerVFI (no src/test/models)")
    for method in methods:
        flow, _, generator = method.partition("+")
        if generator not in GENERATOR_VERSIONS or flow not in REFERENCE_FLOWS:
            raise SystemExit(f"--reference: the authors' code cannot run {method!r} (flows: {', '.join(REFERENCE_FLOWS)}; "
                             f"generators: {', '.join(GENERATOR_VERSIONS)})")
    return source.resolve()


def measure_reference(source: Path, method: str, size: tuple[int, int], times: int) -> dict:
    """The authors' code's stage peaks in one fresh process, in bytes (CPU, float32)."""
    flow, _, generator = method.partition("+")
    script = _REFERENCE_CHILD.format(root=str(ROOT), source=str(source), flow=flow,
                                     generator=GENERATOR_VERSIONS[generator], height=size[0], width=size[1],
                                     times=times)
    return run_child(script, f"{method} (reference)", size)


def run_child(script: str, label: str, size: tuple[int, int]) -> dict:
    """Run a measuring child script in a fresh interpreter; its last line, parsed."""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{label} at {size[0]}×{size[1]} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def median_result(results: list[dict]) -> dict:
    """Each figure's median over fresh processes: a process's peak moves by a few hundred MB
    from one run to the next (the allocator)."""
    median = statistics.median
    stages = {stage: median([r["stages"][stage] for r in results]) for stage in results[0]["stages"]}
    reserved = None if results[0]["reserved"] is None else median([r["reserved"] for r in results])
    return {"stages": stages, "peak": median([r["peak"] for r in results]), "reserved": reserved,
            "tiled": results[0]["tiled"]}


def main() -> None:
    parser = benchmark_parser(__doc__, size=(256, 448), runs=1)
    parser.add_argument("--methods", nargs="+", default=["raft+pervfi", "raft+pervfi-vb"])
    parser.add_argument("--sizes", nargs="+", type=parse_size, help="frame sizes (default: --size)")
    parser.add_argument("--times", type=int, default=1, help="output frames between the pair (1)")
    parser.add_argument("--tile", type=int, help="run the generator in tiles of this size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--code", type=Path, help="another checkout whose pervfi to measure beside this one")
    parser.add_argument("--reference", type=Path, help="a checkout of the authors' code to measure beside this one (CPU)")
    args = parse_benchmark_args(parser)
    sizes = [SMOKE_SIZE] if args.smoke else (args.sizes or [tuple(args.size)])
    methods = ["raft+pervfi"] if args.smoke else args.methods
    if args.reference and args.device != "cpu":
        raise SystemExit("--reference runs the authors' code on the CPU only: leave out --device")
    checkouts = [("this checkout", ROOT)] + ([(str(args.code), args.code)] if args.code else [])
    checkouts += [("reference", reference_source(args.reference, methods))] if args.reference else []
    unit = "peak resident memory (VmHWM)" if args.device == "cpu" else "max_memory_allocated (reserved)"
    print(f"{args.device}, {unit} by stage in MB at {', '.join(f'{h}×{w}' for h, w in sizes)}, median of "
          f"{args.runs} fresh process(es) each, {args.times} output frame(s)"
          + (f", tiles of {args.tile}" if args.tile else ""))
    print("| method | size | code | " + " | ".join(STAGES) + " | peak |")
    print("|---" * (len(STAGES) + 4) + "|")
    for method in methods:
        for size in sizes:
            for label, code in checkouts:
                result = median_result([
                    measure_reference(code, method, size, args.times) if label == "reference"
                    else measure(code, method, size, args.times, args.tile, args.device)
                    for _ in range(args.runs)])
                cells = [f"{result['stages'][s] / 1e6:.0f}" if s in result["stages"] else "–" for s in STAGES]
                if result.get("tiled"):
                    cells[STAGES.index("per time")] += " (tiled)"
                peak = f"{result['peak'] / 1e6:.0f}"
                if result["reserved"] is not None:
                    peak += f" ({result['reserved'] / 1e6:.0f})"
                print(f"| {method} | {size[0]}×{size[1]} | {label} | " + " | ".join(cells) + f" | {peak} |", flush=True)


if __name__ == "__main__":
    main()
