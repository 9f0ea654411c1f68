"""Cost of a method: parameters, FLOPs (PyTorch's flop counter) and the median time per
interpolated frame at 512×512, the authors' protocol, on one device.

Model methods are timed as built from the registry with untrained weights: weights do
not change the cost, and no checkpoint is needed. FLOPs count what PyTorch's counter
sees (matrix products, convolutions); work done in OpenCV (DIS, Farneback) or ffmpeg is
not counted.
"""
from __future__ import annotations

import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from pervfi.models.flow import build_flow_estimator
from pervfi.models.generators import build_generator
from pervfi.models.method_names import parse_method
from pervfi.runtime.device import resolve_device
from pervfi.runtime.interpolator import Interpolator

from .contenders import BASELINES, EvaluatedMethod, ModelMethod
from .minterpolate import MinterpolateBaseline

SIZE = 512


@torch.no_grad()
def measure_cost(method: str | EvaluatedMethod, device: str | torch.device = "auto", size: int = SIZE,
                 runs: int = 10, warmup: int = 2) -> dict[str, Any]:
    """Parameters, FLOPs per frame and the median seconds per frame of `method` (a name,
    or an object with the `EvaluatedMethod` interface)."""
    device = resolve_device(device)
    evaluated = _build(method, device) if isinstance(method, str) else method
    img0, img1 = test_pair(size, device)
    parameters = _parameter_count(evaluated)
    flops: int | None = None
    if not isinstance(evaluated, MinterpolateBaseline):
        with FlopCounterMode(display=False) as counter:
            evaluated.interpolate(img0, img1, [0.5])
        flops = counter.get_total_flops()
    seconds = []
    for run in range(warmup + runs):
        _synchronize(device)
        start = time.perf_counter()
        evaluated.interpolate(img0, img1, [0.5])
        _synchronize(device)
        if run >= warmup:
            seconds.append(time.perf_counter() - start)
    return {"method": evaluated.name, "device": str(device), "size": f"{size}×{size}", "parameters": parameters,
            "flops": flops, "seconds_per_frame": statistics.median(seconds), "runs": runs,
            "flops_note": _uncounted_work(evaluated)}


def cost_table(cost: dict[str, Any]) -> str:
    """One markdown row per measurement, and a line on the work the FLOPs leave out, if any."""
    flops = "n/a (outside PyTorch)" if cost["flops"] is None else f"{cost['flops'] / 1e9:.1f} G"
    lines = [
        "| method | device | size | parameters | FLOPs | time per frame |",
        "|---|---|---|---|---|---|",
        f"| {cost['method']} | {cost['device']} | {cost['size']} | {cost['parameters'] / 1e6:.2f} M | {flops} "
        f"| {cost['seconds_per_frame'] * 1e3:.1f} ms (median of {cost['runs']}) |",
    ]
    if cost.get("flops_note"):
        lines += ["", f"FLOPs: {cost['flops_note']}."]
    return "\n".join(lines)


def _uncounted_work(evaluated: EvaluatedMethod) -> str | None:
    """Why the FLOP count leaves out some of a pipeline's work: PyTorch's counter sees matrix
    products and convolutions, not OpenCV's flow nor element-wise warping and splatting."""
    if not isinstance(evaluated, ModelMethod):
        return None
    parts = []
    if not any(True for _ in evaluated.interpolator.flow.parameters()):
        parts.append("its flow estimator runs outside PyTorch (DIS and Farnebäck in OpenCV)")
    if not any(True for _ in evaluated.interpolator.generator.parameters()):
        parts.append("its generator has no learned layers (splat warps, splats and blends element-wise)")
    if not parts:
        return None
    return (f"PyTorch's counter counts matrix products and convolutions only, and for {evaluated.name} "
            + " and ".join(parts) + ", so that work is not in the figure")


def test_pair(size: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Two smooth random frames, the second moved 4 pixels right and 2 down."""
    rng = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, 3, size // 16, size // 16, generator=rng)
    img0 = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    img1 = torch.roll(img0, shifts=(2, 4), dims=(2, 3))
    return img0.to(device), img1.to(device)


def _build(method: str, device: torch.device) -> EvaluatedMethod:
    key = method.strip().lower()
    if key in BASELINES:
        return BASELINES[key]()
    spec = parse_method(method)
    interpolator = Interpolator(build_flow_estimator(spec.flow), build_generator(spec.generator), device=device)
    return ModelMethod(method, interpolator)


def _parameter_count(evaluated: EvaluatedMethod) -> int:
    if not isinstance(evaluated, ModelMethod):
        return 0
    modules = (evaluated.interpolator.flow, evaluated.interpolator.generator)
    return sum(parameter.numel() for module in modules for parameter in module.parameters())


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
