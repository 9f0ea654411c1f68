"""Frames per second of dis+splat (flows both ways + the splat generator), median of several runs.

    python benchmarks/bench_splat.py [--size 720 1280] [--runs 5] [--threads N] [--smoke]

Frames come from ../shared/data (a Sintel pair resized to the size) when present, else
a smooth random texture and a shifted copy: DIS's time depends on the content a little.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.timing import benchmark_parser, median_seconds, parse_benchmark_args  # noqa: E402
from pervfi.media.frame_files import read_frame
from pervfi.media.tensors import to_tensor
from pervfi.models.flow import build_flow_estimator
from pervfi.models.generators import build_generator

SINTEL = Path(__file__).resolve().parents[2] / "shared" / "data" / "sintel-market-10"


def _frames(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    paths = [SINTEL / "frame_0016.png", SINTEL / "frame_0018.png"]
    if all(path.is_file() for path in paths):
        frames = [to_tensor(read_frame(path), "cpu") for path in paths]
    else:
        g = torch.Generator().manual_seed(0)
        texture = torch.rand(1, 3, height // 16, width // 16 + 1, generator=g)
        frames = [texture[..., :-1], texture[..., 1:]]
    return tuple(F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False) for x in frames)


def main() -> None:
    args = parse_benchmark_args(benchmark_parser(__doc__, size=(720, 1280), runs=5))
    img0, img1 = _frames(*args.size)
    flow, generator = build_flow_estimator("dis"), build_generator("splat")
    flow01, flow10 = flow.estimate_bidirectional(img0, img1)
    flow_s = median_seconds(lambda: flow.estimate_bidirectional(img0, img1), args.runs)
    splat_s = median_seconds(lambda: generator.interpolate(img0, img1, flow01, flow10, time=0.5), args.runs)
    total = flow_s + splat_s
    print(f"{args.size[0]}×{args.size[1]}, {args.threads} threads, median of {args.runs}")
    print(f"dis (both directions): {flow_s * 1000:.0f} ms")
    print(f"splat:                 {splat_s * 1000:.0f} ms")
    print(f"dis+splat:             {total * 1000:.0f} ms per frame, {1 / total:.2f} frames/s")


if __name__ == "__main__":
    main()
