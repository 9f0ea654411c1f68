"""The device check: conformance, precision and speed of the fast paths on one device, as a markdown report.

    python benchmarks/gpu_check.py                       # CUDA (or MPS): about 8 minutes at most
    python benchmarks/gpu_check.py --reduced --device cpu  # small frames, fp32 and bf16 (part of the tests)

1. The conformance vectors (../shared/conformance) on the device in fp32, at their tolerances.
2. PSNR of each lower precision against fp32 on the frames of ../shared/data.
3. Time per interpolated frame of raft+pervfi, raft+pervfi-vb, gma+pervfi and dis+splat at
   720p, 1080p and 4K (4K with flows at half size) for each precision, and with batching
   and torch.compile for the main methods; peak device memory; achieved TFLOP/s (PyTorch's
   FLOP counter) against the device's measured matrix-product peak in that precision.
4. Writes the report to `--out` (and stdout). Rows that do not fit the time budget
   (`--budget` seconds) are listed as skipped. Weights are the conformance fill (or random):
   neither speed nor the precision comparison needs the trained values.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.timing import median_seconds  # noqa: E402
from pervfi.media.frame_files import read_frame
from pervfi.media.tensors import to_tensor
from pervfi.models.flow import build_flow_estimator
from pervfi.models.generators import build_generator
from pervfi.models.method_names import parse_method
from pervfi.runtime.device import resolve_device
from pervfi.runtime.interpolator import Interpolator
from tests.conformance import CONFORMANCE, DATA, fill, load_vector  # noqa: E402

SALT = "gpu-check"
GAINS = {"raft": 0.5, "raft_small": 0.5, "gma": 0.5, "gmflow": 0.5, "v00": 0.5, "vb": 0.65}
SIZES = {"720p": (720, 1280), "1080p": (1080, 1920), "4K": (2160, 3840)}
FLOW_TOLERANCE = 5e-3  # pixels, the conformance README's bound for flows
FRAME_TOLERANCE = 1e-3
# Real frame pairs in ../shared/data (frame a, frame c; b is the true middle).
PAIRS = (("sintel-market-10", "frame_0016.png", "frame_0018.png"), ("davis-breakdance-flare-3", "00000.jpg", "00002.jpg"))


@dataclass(frozen=True)
class Config:
    """One timed row."""

    method: str
    size: str
    precision: str
    batch: int = 1
    compile: bool = False


@dataclass(frozen=True)
class Mode:
    """What a run covers: full on a GPU, reduced on the CPU."""

    precisions: tuple[str, ...]
    sizes: dict[str, tuple[int, int]]
    configs: tuple[Config, ...]
    vectors: tuple[str, ...]
    psnr_methods: tuple[str, ...]
    psnr_size: tuple[int, int]
    runs: int


def full_mode(device: torch.device) -> Mode:
    precisions = ("fp32", "bf16", "fp16") if device.type == "cuda" else ("fp32", "fp16")
    learned = ("raft+pervfi", "raft+pervfi-vb", "gma+pervfi")
    rows = [Config(m, size, p) for size in ("1080p", "720p", "4K") for m in learned for p in precisions]
    rows += [Config("dis+splat", size, "fp32") for size in SIZES]
    fast = precisions[1]
    rows += [Config(m, "720p", fast, batch=4) for m in learned[:2]]
    rows += [Config(m, "1080p", fast, compile=True) for m in learned[:2]]
    return Mode(precisions, SIZES, tuple(rows), ("raft_*.pt", "raft_small_*.pt", "gma_*.pt", "gmflow_*.pt",
                                                 "v00_*.pt", "vb_*.pt", "pipeline_*.pt"),
                ("raft+pervfi", "raft+pervfi-vb"), (544, 960), runs=5)


def reduced_mode() -> Mode:
    sizes = {"64×96": (64, 96)}
    rows = [Config("raft_small+pervfi-vb", "64×96", p, batch=b) for p in ("fp32", "bf16") for b in (1, 2)]
    rows.append(Config("dis+splat", "64×96", "fp32"))
    return Mode(("fp32", "bf16"), sizes, tuple(rows), ("raft_small_*.pt", "vb_96x128_*.pt"),
                ("raft_small+pervfi-vb",), (64, 96), runs=1)


def build(method: str, device: torch.device, **options) -> Interpolator:
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


def conformance(device: torch.device, patterns: tuple[str, ...]) -> list[tuple[str, float, float, float, bool]]:
    """(vector, relative error, largest difference, its limit, passed) per vector, fp32 on `device`."""
    rows = []
    for pattern in patterns:
        for path in sorted(CONFORMANCE.glob(pattern)):
            vec = load_vector(path)
            out, limit = _run_vector(vec, path.stem, device)
            ref = vec["output"].float()
            out = out.float().cpu()
            spread = (ref - ref.mean()).norm().item()
            relative = (out - ref).norm().item() / spread if spread > 0 else 0.0
            largest = (out - ref).abs().max().item()
            rows.append((path.stem, relative, largest, limit, relative <= 1e-4 and largest <= limit))
    return rows


def _on(x, device: torch.device):
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


def real_pairs(size: tuple[int, int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The frame pairs of ../shared/data resized to `size` (none when absent)."""
    pairs = []
    for folder, first, last in PAIRS:
        paths = [DATA / folder / first, DATA / folder / last]
        if all(path.is_file() for path in paths):
            frames = [F.interpolate(to_tensor(read_frame(path)), size=size, mode="area") for path in paths]
            pairs.append((frames[0], frames[1]))
    return pairs


@torch.inference_mode()
def precision_psnr(device: torch.device, mode: Mode) -> list[tuple[str, str, float]]:
    """(method, precision, worst PSNR in dB against fp32 over the shared pairs)."""
    pairs = real_pairs(mode.psnr_size)
    rows = []
    for method in mode.psnr_methods if pairs else ():
        reference = None
        for precision in mode.precisions:
            interpolator = build(method, device, precision=precision)
            frames = []
            for index, (img0, img1) in enumerate(pairs):
                zs = _fixed_noise(interpolator, img0, index)
                frames.append(interpolator.interpolate(img0, img1, 0.5, zs=zs).float().cpu())
            if reference is None:
                reference = frames
                continue
            worst = min((10 * torch.log10(1 / F.mse_loss(a, b))).item() for a, b in zip(frames, reference))
            rows.append((method, precision, worst))
    return rows


def _fixed_noise(interpolator: Interpolator, img: torch.Tensor, seed: int) -> list[torch.Tensor] | None:
    """v00's noise for the padded frame, the same for every precision."""
    if not hasattr(interpolator.generator, "sample_noise"):
        return None
    height, width = (-(-side // 8) * 8 for side in img.shape[-2:])
    noise = interpolator.generator.sample_noise(1, height, width, rng=torch.Generator().manual_seed(seed))
    return [z.to(interpolator.device) for z in noise]


def matmul_peak(device: torch.device, precision: str, size: int) -> float:
    """Measured TFLOP/s of a square matrix product in `precision` (the achievable peak)."""
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)

    def product() -> None:
        torch.matmul(a, b)
        synchronize(device)

    return 2 * size**3 / median_seconds(product, 3) / 1e12


@torch.inference_mode()
def time_config(config: Config, mode: Mode, device: torch.device, flops: dict) -> dict:
    """Seconds per frame, peak memory and FLOPs of one row."""
    height, width = mode.sizes[config.size]
    flow_scale = 0.5 if config.size == "4K" and not config.method.startswith("dis") else 1.0
    interpolator = build(config.method, device, precision=config.precision, compile=config.compile,
                         batch=config.batch, flow_scale=flow_scale)
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, 3, height // 16, width // 16, generator=g)
    img0 = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1).to(device)
    img1 = torch.roll(img0, shifts=(2, 4), dims=(2, 3))
    pairs = [(img0, img1, [0.5])] * config.batch
    key = (config.method, config.size)
    if key not in flops:
        with FlopCounterMode(display=False) as counter:
            build(config.method, device, flow_scale=flow_scale, precision="fp32").interpolate(img0, img1)
        flops[key] = counter.get_total_flops()

    def run() -> None:
        interpolator.interpolate_pairs(pairs)
        synchronize(device)

    start = time.perf_counter()
    run()  # warm-up (and compilation)
    warmup = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = median_seconds(run, mode.runs) / config.batch
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {"seconds": seconds, "peak": peak, "flops": flops[key], "warmup": warmup}


def report(device: torch.device, mode: Mode, budget: float) -> tuple[str, bool]:
    """The markdown report, and whether every conformance vector passed."""
    began = time.perf_counter()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    lines = [f"# Device check: {name}", "", f"torch {torch.__version__}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]
    vectors = conformance(device, mode.vectors)
    lines += ["## Conformance (fp32 on the device)", "", "| vector | relative error | max abs diff (limit) | |",
              "|---|---|---|---|"]
    lines += [f"| {stem} | {rel:.2e} | {big:.2e} ({limit:g}) | {'pass' if ok else 'FAIL'} |"
              for stem, rel, big, limit, ok in vectors] or ["| (no vectors in ../shared/conformance) | | | |"]
    passed = all(ok for *_, ok in vectors)
    lines += ["", f"## Precision: PSNR against fp32 on ../shared/data at {mode.psnr_size[0]}×{mode.psnr_size[1]} "
              "(worst pair)", "", "| method | precision | PSNR (dB) |", "|---|---|---|"]
    lines += [f"| {m} | {p} | {db:.1f} |" for m, p, db in precision_psnr(device, mode)] or ["| (no frames) | | |"]
    peaks = {p: matmul_peak(device, p, 4096 if device.type != "cpu" else 1024) for p in mode.precisions}
    lines += ["", "## Speed (per interpolated frame; 4K with flows at half size)", "",
              "matrix-product peak measured here: " + ", ".join(f"{p} {v:.1f} TFLOP/s" for p, v in peaks.items()), "",
              "| method | size | precision | batch | compile | ms/frame | frames/s | peak memory | GFLOP/frame "
              "| TFLOP/s | of peak | first call (s) |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    flops: dict = {}
    for config in mode.configs:
        head = f"| {config.method} | {config.size} | {config.precision} | {config.batch} | {'yes' if config.compile else 'no'}"
        if time.perf_counter() - began > budget:
            lines.append(head + " | skipped: time budget | | | | | | |")
            continue
        try:
            row = time_config(config, mode, device, flops)
        except torch.cuda.OutOfMemoryError:
            lines.append(head + " | out of memory | | | | | | |")
            torch.cuda.empty_cache()
            continue
        tflops = row["flops"] / row["seconds"] / 1e12
        memory = "n/a" if row["peak"] is None else f"{row['peak'] / 2**30:.1f} GiB"
        lines.append(f"{head} | {row['seconds'] * 1e3:.1f} | {1 / row['seconds']:.2f} | {memory} "
                     f"| {row['flops'] / 1e9:.0f} | {tflops:.2f} | {tflops / peaks[config.precision]:.0%} "
                     f"| {row['warmup']:.1f} |")
    lines += ["", f"Total {time.perf_counter() - began:.0f} s."]
    return "\n".join(lines) + "\n", passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--reduced", action="store_true", help="small frames, fp32 and bf16 (for the CPU)")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.md"))
    parser.add_argument("--budget", type=float, default=420.0, help="seconds after which timed rows are skipped")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    mode = reduced_mode() if args.reduced else full_mode(device)
    text, passed = report(device, mode, args.budget)
    args.out.write_text(text)
    print(text)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
