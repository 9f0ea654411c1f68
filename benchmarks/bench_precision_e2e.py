"""fp16/bf16 against fp32 end to end: `infer_video.py` on a pair of full-size Sintel frames.

    python benchmarks/bench_precision_e2e.py [--methods dis+pervfi dis+pervfi-vb] [--precisions fp16 bf16]
                                             [--size H W] [--smoke]

For each method, the whole tool (`infer_video.py --png --seed 0`) runs on frames 16 and 18 of
../shared/data/sintel-market-10 (436×1024) in fp32 and in each precision; the interpolated
middle frame of each is compared with fp32's: finite, and PSNR in dB (issue 23: ≥ 35 dB).
Weights are the tests' seeded ones, written as checkpoint files (the official ones cannot be
downloaded here). On a CPU without native bf16/fp16 both are emulated: expect tens of minutes
per frame; run it once under `flock /tmp/arch/heavy.lock`. --smoke: 64×96 frames, vb only.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from PIL import Image  # noqa: E402

from benchmarks.timing import benchmark_parser, parse_benchmark_args  # noqa: E402
from pervfi.media.frame_files import read_frame  # noqa: E402
from pervfi.media.tensors import to_tensor, to_uint8  # noqa: E402
from tests.checkpoint_files import model_state, official_layout, serialized, write  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FRAMES = ROOT.parent / "shared" / "data" / "sintel-market-10"
PAIR = ("frame_0016.png", "frame_0018.png")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def run_tool(method: str, precision: str, data: Path, out: Path, ckpt: Path) -> tuple[np.ndarray, float]:
    """The middle frame `infer_video.py` writes in `precision`, and the seconds the run took."""
    command = [sys.executable, str(ROOT / "infer_video.py"), "-m", method, "-data", str(data), "-s", str(out),
               "--png", "--seed", "0", "--quiet", "--ckpt-dir", str(ckpt), "--precision", precision]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{method} {precision} failed: {result.stderr.strip()}")
    (middle,) = [p for p in out.rglob("*.png") if p.name == "00000001.png"]
    return read_frame(middle), seconds


def main() -> None:
    parser = benchmark_parser(__doc__, size=(436, 1024), runs=1)
    parser.add_argument("--methods", nargs="+", default=["dis+pervfi-vb", "dis+pervfi"])
    parser.add_argument("--precisions", nargs="+", default=["fp16"], choices=["fp16", "bf16"])
    parser.add_argument("--frames", type=Path, default=FRAMES, help="the folder of Sintel frames (%(default)s)")
    args = parse_benchmark_args(parser)
    if args.smoke:
        args.methods = ["dis+pervfi-vb"]
    if not args.frames.is_dir():
        raise SystemExit(f"no Sintel frames in {args.frames}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in ("v00", "vb"):
            write(tmp / "ckpt" / "PerVFI" / f"{name}.pth", serialized(official_layout(name, model_state(name))))
        for index, name in enumerate(PAIR):
            frame = to_tensor(read_frame(args.frames / name))
            if tuple(frame.shape[-2:]) != tuple(args.size):
                frame = F.interpolate(frame, size=tuple(args.size), mode="area")
            (tmp / "seq").mkdir(exist_ok=True)
            Image.fromarray(to_uint8(frame)).save(tmp / "seq" / f"{index}.png")
        print(f"{args.size[0]}×{args.size[1]} Sintel frames {PAIR}, {torch.get_num_threads()} threads, seeded weights",
              flush=True)
        for method in args.methods:
            reference, seconds = run_tool(method, "fp32", tmp / "seq", tmp / f"{method}-fp32", tmp / "ckpt")
            print(f"{method} fp32: {seconds:.0f} s", flush=True)
            for precision in args.precisions:
                frame, seconds = run_tool(method, precision, tmp / "seq", tmp / f"{method}-{precision}", tmp / "ckpt")
                print(f"{method} {precision}: {seconds:.0f} s, {psnr(frame, reference):.1f} dB against fp32, "
                      f"mean level {frame.mean():.1f} (fp32 {reference.mean():.1f})", flush=True)


if __name__ == "__main__":
    main()
