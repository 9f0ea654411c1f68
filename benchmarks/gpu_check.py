"""The device check: conformance, precision, determinism and speed of the fast paths on one
device, written row by row (markdown and JSON lines) so that no measured row is ever lost.

    python benchmarks/gpu_check.py --budget 480           # CUDA (or MPS): paste back gpu_check.md
    python benchmarks/gpu_check.py --reduced --device cpu   # small frames (part of the tests)

Rows run most important first, each written the moment it is measured; a row that raises is
written with its error and the next one runs; rows past `--budget` seconds are written as
skipped. The exit status is 1 when a conformance vector failed or a row raised.

1. Conformance: the vectors of ../shared/conformance on the device in fp32, at their tolerances.
2. Precision: each lower precision against fp32 on the real frames of ../shared/data at their
   full size: finite, and the worst PSNR.
3. Determinism: the same frames twice, and split in two halves over fresh interpolators,
   compared bit for bit (float output and 8-bit frames), as the multi-device runner runs them.
4. Speed: time and peak memory per interpolated frame per method at 1080p, 720p and 4K (flows
   at half size; tiled and whole), by precision, with and without torch.compile; achieved
   TFLOP/s (PyTorch's FLOP counter) against the device's measured matrix-product peak.

Weights are the conformance fill (or random): neither speed nor the comparisons need the
trained values.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.rows import RowLog
from benchmarks.timing import median_seconds
from pervfi.media.frame_files import read_frame
from pervfi.media.tensors import to_tensor, to_uint8
from pervfi.models.flow import build_flow_estimator
from pervfi.models.generators import build_generator
from pervfi.models.method_names import parse_method
from pervfi.runtime.determinism import deterministic
from pervfi.runtime.device import resolve_device
from pervfi.runtime.interpolator import Interpolator
from tests.conformance import CONFORMANCE, DATA, fill, load_vector

SALT = "gpu-check"
GAINS = {"raft": 0.5, "raft_small": 0.5, "gma": 0.5, "gmflow": 0.5, "v00": 0.5, "vb": 0.65}
SIZES = {"1080p": (1080, 1920), "720p": (720, 1280), "4K": (2160, 3840)}
FLOW_TOLERANCE = 5e-3  # pixels, the conformance README's bound for flows
FRAME_TOLERANCE = 1e-3
# Real frame sequences in ../shared/data: each consecutive pair is interpolated.
SEQUENCES = ("sintel-market-10", "davis-breakdance-flare-3")


@dataclass(frozen=True)
class Config:
    """One timed row."""

    method: str
    size: str
    precision: str
    batch: int = 1
    compile: bool = False
    tile: int | None = None


@dataclass(frozen=True)
class Mode:
    """What a run covers: full on a GPU, reduced on the CPU."""

    vectors: tuple[str, ...]
    precision_methods: tuple[str, ...]
    low_precisions: tuple[str, ...]
    frame_size: tuple[int, int] | None  # None: the frames' own size
    precision_pairs: int | None  # pairs of each sequence compared across precisions (None: all)
    determinism: tuple[tuple[str, str], ...]  # (method, precision)
    sizes: dict[str, tuple[int, int]]
    configs: tuple[Config, ...]
    runs: int


def full_mode(device: torch.device) -> Mode:
    fast = ("bf16", "fp16") if device.type == "cuda" else ("fp16",)
    learned = ("raft+pervfi", "raft+pervfi-vb", "gma+pervfi")
    default = fast[0]
    rows = [Config(m, "1080p", p) for m in learned for p in ("fp32", *fast)]
    rows += [Config("dis+splat", "1080p", "fp32"), Config("raft+pervfi-vb", "1080p", default, compile=True)]
    rows += [Config(m, "720p", p) for m in learned for p in ("fp32", default)]
    rows += [Config(m, "720p", default, batch=4) for m in learned[:2]]
    rows += [Config(m, "4K", default, tile=1024) for m in learned[:2]]
    rows += [Config(m, "4K", default) for m in learned[:2]]
    rows += [Config("raft+pervfi", "1080p", default, compile=True), Config("raft+pervfi-vb", "4K", default, compile=True)]
    rows += [Config("dis+splat", size, "fp32") for size in ("720p", "4K")]
    return Mode(("raft_*.pt", "raft_small_*.pt", "gma_*.pt", "gmflow_*.pt", "v00_*.pt", "vb_*.pt", "pipeline_*.pt"),
                ("dis+pervfi", "dis+pervfi-vb", "raft+pervfi", "raft+pervfi-vb"), fast, None, None,
                (("raft+pervfi-vb", "fp32"), ("raft+pervfi-vb", default), ("raft+pervfi", default), ("dis+splat", "fp32")),
                SIZES, tuple(rows), runs=5)


def reduced_mode() -> Mode:
    # bf16 once: on CPUs without bf16 arithmetic each of its rows costs as much as the rest together.
    rows = [Config("raft_small+pervfi-vb", "64×96", "fp32", batch=b) for b in (1, 2)]
    rows += [Config("raft_small+pervfi-vb", "64×96", "bf16"), Config("dis+splat", "64×96", "fp32")]
    return Mode(("raft_small_*.pt", "vb_96x128_*.pt"), ("raft_small+pervfi-vb",), ("bf16",), (64, 96), 1,
                (("dis+pervfi-vb", "fp32"),), {"64×96": (64, 96)}, tuple(rows), runs=1)


def build(method: str, device: torch.device, **options: Any) -> Interpolator:
    """The method with the conformance fill (or random weights without ../shared)."""
    spec = parse_method(method)
    flow, generator = build_flow_estimator(spec.flow), build_generator(spec.generator)
    if (CONFORMANCE / "fill_state.py").exists():
        for model, name in ((flow, spec.flow), (generator, spec.generator)):
            if name in GAINS:
                fill(model, SALT, GAINS[name])
    return Interpolator(flow, generator, device=device, **options)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


# 1. Conformance

def conformance_row(path: Path, device: torch.device) -> dict[str, Any]:
    """Relative error, largest difference, its limit and whether the vector passed, fp32 on `device`."""
    vec = load_vector(path)
    out, limit = _run_vector(vec, path.stem, device)
    ref, out = vec["output"].float(), out.float().cpu()
    spread = (ref - ref.mean()).norm().item()
    relative = (out - ref).norm().item() / spread if spread > 0 else 0.0
    largest = (out - ref).abs().max().item()
    return {"relative error": relative, "max abs diff": largest, "limit": limit,
            "result": "pass" if relative <= 1e-4 and largest <= limit else "FAIL"}


def _on(x: Any, device: torch.device) -> Any:
    return [_on(v, device) for v in x] if isinstance(x, list) else x.to(device) if torch.is_tensor(x) else x


@torch.inference_mode()
def _run_vector(vec: dict, stem: str, device: torch.device) -> tuple[torch.Tensor, float]:
    inputs = {k: _on(v, device) for k, v in vec["inputs"].items()}
    if stem.startswith("pipeline_"):
        spec = parse_method(vec["method"])
        flow = fill(build_flow_estimator(spec.flow), vec["salt"], vec["gains"][spec.flow])
        generator = fill(build_generator(spec.generator), vec["salt"], vec["gains"][spec.generator])
        interpolator = Interpolator(flow, generator, device=device, precision="fp32")
        return interpolator.interpolate(inputs["img0"], inputs["img1"], inputs["time"], zs=inputs["zs"]), FRAME_TOLERANCE
    if stem.startswith(("v00_", "vb_")):
        model = fill(build_generator(vec["model"]), vec["salt"], vec["gain"]).to(device)
        out = model.interpolate(inputs["img0"], inputs["img1"], inputs["flow01"], inputs["flow10"],
                                time=inputs["time"], zs=inputs.get("zs"))
        return out, FRAME_TOLERANCE
    name = stem.rsplit("_", 2)[0]
    model = fill(build_flow_estimator(name), vec["salt"], vec["gain"]).to(device)
    return model.estimate(inputs["img0"], inputs["img1"]), FLOW_TOLERANCE


# 2. Precision

def real_sequences(size: tuple[int, int] | None) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """The consecutive frame pairs of each sequence of ../shared/data present (resized to
    `size` unless None)."""
    sequences = []
    for name in SEQUENCES:
        frames = [to_tensor(read_frame(path)) for path in sorted((DATA / name).glob("*.[pj][np]g"))]
        if size is not None:
            frames = [F.interpolate(frame, size=size, mode="area") for frame in frames]
        if len(frames) > 2:
            sequences.append(list(zip(frames, frames[1:])))
    return sequences


def _fixed_noise(interpolator: Interpolator, img: torch.Tensor, seed: int) -> list[torch.Tensor] | None:
    """v00's noise for the padded frame, the same for every precision and run."""
    if not hasattr(interpolator.generator, "sample_noise"):
        return None
    height, width = (-(-side // 8) * 8 for side in img.shape[-2:])
    noise = interpolator.generator.sample_noise(1, height, width, rng=torch.Generator().manual_seed(seed))
    return [z.to(interpolator.device) for z in noise]


@torch.inference_mode()
def frames_of(method: str, device: torch.device, precision: str, pairs: list, **options: Any) -> list[torch.Tensor]:
    """The middle frame of each pair (fixed noise), on the CPU."""
    interpolator = build(method, device, precision=precision, **options)
    return [interpolator.interpolate(a, b, 0.5, zs=_fixed_noise(interpolator, a, index)).float().cpu()
            for index, (a, b) in enumerate(pairs)]


def precision_row(method: str, precision: str, device: torch.device, pairs: list,
                  references: dict[str, list[torch.Tensor]]) -> dict[str, Any]:
    """Whether every frame is finite, and the worst PSNR against fp32 (dB)."""
    if method not in references:
        references[method] = frames_of(method, device, "fp32", pairs)
    frames = frames_of(method, device, precision, pairs)
    finite = all(bool(torch.isfinite(frame).all()) for frame in frames)
    worst = min((10 * torch.log10(1 / F.mse_loss(a, b).clamp_min(1e-20))).item()
                for a, b in zip(frames, references[method]))
    return {"finite": finite, "PSNR vs fp32 (dB)": worst, "frames": len(frames)}


# 3. Determinism

def _compare(first: list[torch.Tensor], second: list[torch.Tensor]) -> str:
    """``identical``, or how the 8-bit frames and the float output differ."""
    if all(torch.equal(a, b) for a, b in zip(first, second)):
        return "identical"
    pixels = sum(int((torch.from_numpy(to_uint8(a)) != torch.from_numpy(to_uint8(b))).any(-1).sum())
                 for a, b in zip(first, second))
    largest = max((a - b).abs().max().item() for a, b in zip(first, second))
    return f"float differs (max {largest:.2g}); {pixels} px differ in 8 bits"


@torch.inference_mode()
def determinism_row(method: str, precision: str, device: torch.device, pairs: list, runner: bool,
                    batch: int = 2) -> dict[str, Any]:
    """The same frames twice with one interpolator, and split in two halves over two fresh
    ones (so batches are made up differently), against one pass; `runner`: in the
    deterministic mode of the multi-device runner's processes."""
    def run(first: int, chosen: list, interpolator: Interpolator) -> list[torch.Tensor]:
        # v00's noise per output frame from its number (`first` is the first pair's), as the runner draws it
        rngs = [torch.Generator().manual_seed(first + k) for k in range(len(chosen))]
        frames = interpolator.interpolate_pairs([(a, b, [0.5]) for a, b in chosen], rng=rngs)
        return [frame[0].float().cpu() for frame in frames]

    def fresh() -> Interpolator:
        return build(method, device, precision=precision, batch=batch)

    with deterministic() if runner else contextlib.nullcontext():
        whole = fresh()
        once, twice = run(0, pairs, whole), run(0, pairs, whole)
        half = len(pairs) // 2
        split = run(0, pairs[:half], fresh()) + run(half, pairs[half:], fresh())
    return {"twice": _compare(once, twice), "2-way split": _compare(once, split)}


# 4. Speed

def matmul_peak(device: torch.device, precision: str, size: int) -> float:
    """Measured TFLOP/s of a square matrix product in `precision` (the achievable peak)."""
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)

    def product() -> None:
        torch.matmul(a, b)
        synchronize(device)

    return 2 * size**3 / median_seconds(product, 3) / 1e12


def test_frames(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth random texture and a shifted copy."""
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, 3, height // 16, width // 16, generator=g)
    img0 = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1).to(device)
    return img0, torch.roll(img0, shifts=(2, 4), dims=(2, 3))


@torch.inference_mode()
def speed_row(config: Config, mode: Mode, device: torch.device, peaks: dict[str, float],
              flops: dict[tuple[str, str, int | None], float]) -> dict[str, Any]:
    """Time per frame, frames/s, peak memory, FLOPs and first-call seconds of one row."""
    height, width = mode.sizes[config.size]
    flow_scale = 0.5 if config.size == "4K" and not config.method.startswith("dis") else 1.0
    img0, img1 = test_frames(height, width, device)
    key = (config.method, config.size, config.tile)
    if key not in flops:  # counted in fp32, tiled as the row is (a whole 4K frame may not fit)
        with FlopCounterMode(display=False) as counter:
            build(config.method, device, flow_scale=flow_scale, precision="fp32", tile=config.tile).interpolate(img0, img1)
        flops[key] = counter.get_total_flops()
    interpolator = build(config.method, device, precision=config.precision, compile=config.compile,
                         batch=config.batch, flow_scale=flow_scale, tile=config.tile)
    pairs = [(img0, img1, [0.5])] * config.batch

    def run() -> None:
        interpolator.interpolate_pairs(pairs)
        synchronize(device)

    start = time.perf_counter()
    run()  # warm-up (and compilation)
    warmup = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = median_seconds(run, mode.runs, warm_up=False) / config.batch
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    tflops = flops[key] / seconds / 1e12
    return {"ms/frame": seconds * 1e3, "frames/s": 1 / seconds, "peak GiB": peak, "GFLOP/frame": flops[key] / 1e9,
            "TFLOP/s": tflops, "of peak": f"{tflops / peaks[config.precision]:.0%}", "first call (s)": warmup}


def run_check(device: torch.device, mode: Mode, log: RowLog) -> bool:
    """Every row of `mode` in order of importance; whether all conformance vectors passed."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    log.text(f"# Device check: {name}", "",
             f"torch {torch.__version__}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
             f"budget {log.budget:.0f} s")
    log.section("Conformance (fp32 on the device)", ["vector", "relative error", "max abs diff", "limit", "result"])
    paths = [path for pattern in mode.vectors for path in sorted(CONFORMANCE.glob(pattern))]
    results = [log.row({"vector": path.stem}, lambda path=path: conformance_row(path, device)) for path in paths]
    if not paths:
        log.text("| (no vectors in ../shared/conformance) | | | | |")
    passed = all(result is not None and result["result"] == "pass" for result in results)

    size = "full size" if mode.frame_size is None else f"{mode.frame_size[0]}×{mode.frame_size[1]}"
    sequences = real_sequences(mode.frame_size)
    pairs = [pair for sequence in sequences for pair in sequence[:mode.precision_pairs]]
    log.section(f"Precision against fp32 on ../shared/data, {size} (worst pair)",
                ["method", "precision", "finite", "PSNR vs fp32 (dB)", "frames"])
    references: dict[str, list[torch.Tensor]] = {}
    for method in mode.precision_methods if pairs else ():
        for precision in mode.low_precisions:
            log.row({"method": method, "precision": precision},
                    lambda m=method, p=precision: precision_row(m, p, device, pairs, references))
    if not pairs:
        log.text("| (no frames in ../shared/data) | | | | |")

    log.section(f"Determinism: the same frames twice, and a 2-way split (batch 2), {size}",
                ["method", "precision", "mode", "twice", "2-way split"])
    for method, precision in mode.determinism if pairs else ():
        for runner in (True, False):
            log.row({"method": method, "precision": precision, "mode": "runner" if runner else "plain"},
                    lambda m=method, p=precision, r=runner: determinism_row(m, p, device, sequences[0], r))

    precisions = sorted({config.precision for config in mode.configs})
    peaks = {p: matmul_peak(device, p, 4096 if device.type != "cpu" else 1024) for p in precisions}
    log.section("Speed (per interpolated frame; 4K with flows at half size); matrix-product peak here: "
                + ", ".join(f"{p} {v:.1f} TFLOP/s" for p, v in peaks.items()),
                ["method", "size", "precision", "batch", "compile", "tile", "ms/frame", "frames/s", "peak GiB",
                 "GFLOP/frame", "TFLOP/s", "of peak", "first call (s)"])
    flops: dict[tuple[str, str, int | None], float] = {}
    for config in mode.configs:
        log.row({"method": config.method, "size": config.size, "precision": config.precision, "batch": config.batch,
                 "compile": config.compile, "tile": config.tile or "no"},
                lambda c=config: speed_row(c, mode, device, peaks, flops))
    log.text("", f"Total {log.elapsed():.0f} s; rows that raised: {log.errors}.")
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--reduced", action="store_true", help="small frames, fp32 and bf16 (for the CPU)")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.md"),
                        help="the markdown report; the JSON lines go next to it (.jsonl)")
    parser.add_argument("--budget", type=float, default=480.0,
                        help="seconds after which the remaining rows are written as skipped (%(default)s)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    mode = reduced_mode() if args.reduced else full_mode(device)
    log = RowLog(args.out, args.budget)
    passed = run_check(device, mode, log)
    return 0 if passed and not log.errors else 1


if __name__ == "__main__":
    sys.exit(main())
