"""How much memory a generator needs, and the tile size that keeps it within a budget.

A generator's peak is modelled as linear in the pixels it works on, per generator, from
two measured figures (`benchmarks/bench_tiles.py --fit`, fresh processes, float32 on the
CPU; lower precisions need less, so the model errs on the safe side there):

- ``encoding``: bytes per pixel the per-pair step holds for every time (0 without one);
- ``step``: bytes per pixel of one output frame's step, above the encoding.

The whole frame runs when its peak fits the room left; otherwise the largest tile whose
largest window (with the halo its motion needs) fits, see `choose_tile`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from pervfi.core.errors import PerVFIError
from pervfi.ops import Region

from .budget import available_ram, format_bytes, process_ram
from .tiling import default_overlap, plan_tiles, with_halo

log = logging.getLogger("pervfi")

# Without a budget, the share of the device's free memory the generator may take: the rest
# is left to other programs, the pipeline's queued frames and the model's error.
FREE_SHARE = 0.75
# Tile sizes tried, largest first. Larger tiles save little: at 1024 the halos and
# overlaps already add only a fraction of the frame.
AUTO_TILES = (1024, 768, 512, 384, 256, 192, 128)
# Per pixel and output time, what the tiled path accumulates (float32 RGB), and once the
# sum of the blending weights.
OUTPUT_BYTES, WEIGHT_BYTES = 12, 4


@dataclass(frozen=True)
class PeakModel:
    """A generator's peak memory per pixel (see the module's docstring)."""

    encoding: float
    step: float

    def whole(self, pixels: int, pairs: int, frames: int) -> float:
        """Bytes of a whole-frame run: `pairs` encodings, then `frames` steps at once."""
        return pixels * (self.encoding * pairs + self.step * frames)

    def tiled(self, pixels: int, window_pixels: int, times: int) -> float:
        """Bytes of a tiled run of one pair: the frame's encoding and outputs, then the
        largest window's own encoding and step."""
        return pixels * (self.encoding + OUTPUT_BYTES * times + WEIGHT_BYTES) + window_pixels * (self.encoding + self.step)


# Measured by `python benchmarks/bench_tiles.py --fit` (the largest per-pixel figure of two
# frame sizes), keyed by the generator's class.
PEAKS = {
    "PerVFIv00": PeakModel(encoding=1040, step=6910),
    "PerVFIvb": PeakModel(encoding=1030, step=7110),
    "SplatGenerator": PeakModel(encoding=0, step=280),
}
# Generators not measured: the largest figures of those that are.
UNMEASURED = PeakModel(max(p.encoding for p in PEAKS.values()), max(p.step for p in PEAKS.values()))


def peak_model(generator: nn.Module) -> PeakModel:
    """The peak model of `generator` (the conservative one when it was not measured)."""
    return PEAKS.get(type(generator).__name__, UNMEASURED)


def in_use_and_free(device: torch.device) -> tuple[int | None, int | None]:
    """Bytes this process holds on `device` and bytes it could still take there (None
    where the platform does not say): CUDA's free memory plus what PyTorch caches unused;
    MPS's recommended limit less what its driver holds; the CPU's available memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        allocated = torch.cuda.memory_allocated(device)
        return allocated, free + torch.cuda.memory_reserved(device) - allocated
    if device.type == "mps":
        allocated = torch.mps.current_allocated_memory()
        if not hasattr(torch.mps, "recommended_max_memory"):
            return allocated, None
        return allocated, torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()
    return process_ram(), available_ram()


def room(device: torch.device, max_memory: int | None) -> int | None:
    """Bytes the generator may still take on `device`: `max_memory` less what the process
    holds now, or without a budget `FREE_SHARE` of what is free; None when unknown."""
    used, free = in_use_and_free(device)
    if max_memory is not None:
        return max_memory - (used or 0)
    return None if free is None else int(free * FREE_SHARE)


def choose_tile(model: PeakModel, height: int, width: int, pairs: int, frames: int, times: int,
                space: int | None, halos: Callable[[list[Region]], list[int]], strict: bool) -> int | None:
    """None when the whole H×W frame fits in `space` bytes (or `space` is unknown), else
    the largest of `AUTO_TILES` whose largest window, grown by its halo (`halos` gives
    them for a plan), fits. When none fits: a PerVFIError if `strict` (the user set the
    budget), else a warning and the smallest tile.

    `pairs` and `frames` are what a whole-frame run holds at once; `times`, the output
    times of one pair (tiles run one pair at a time).
    """
    pixels = height * width
    if space is None or model.whole(pixels, pairs, frames) <= space:
        return None
    need = model.whole(pixels, pairs, frames)
    for tile in AUTO_TILES:
        regions = plan_tiles(height, width, tile, default_overlap(tile))
        if len(regions) == 1:
            continue  # one window is the whole frame
        windows = [with_halo(region, halo) for region, halo in zip(regions, halos(regions))]
        need = model.tiled(pixels, max(window.height * window.width for window in windows), times)
        if need <= space:
            return tile
    smallest = AUTO_TILES[-1]
    message = (f"{height}×{width} frames need about {format_bytes(need)} in tiles of {smallest} pixels, "
               f"but the memory budget leaves {format_bytes(max(space, 0))}")
    if strict:
        raise PerVFIError(f"{message}; allow more memory or use smaller frames")
    log.warning("%s; trying anyway", message)
    return smallest
