"""Running a generator in overlapping tiles, for frames too large to process at once.

Windows are aligned to multiples of 8 (so the pyramid and the v00 noise line up with the
whole frame), overlap by `overlap` pixels, and are blended with raised-cosine weights
across each overlap, so no seam shows. Each window is computed with a halo as wide as
the largest motion (plus a margin for the networks' reach), so what splats into it from
outside is there, and PerVFI's soft masks use the whole frame's channel attention
(gathered in a first pass over the windows). Memory is bounded by the tile and its
halo, not the frame. Flows are computed by the caller (on the whole frame, possibly at
reduced resolution).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from pervfi.ops import Region

ALIGN = 8
# Pixels a halo adds to the largest motion: the reach of the generator's convolutions
# around a splatted pixel (measured: 48 px motion, tile 128, see tests/test_tiling.py).
HALO_MARGIN = 32


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    """Window starts along one axis: multiples of ALIGN, each window `tile` long (the
    last one flush with the end), neighbours overlapping by at least `overlap`."""
    if size <= tile:
        return [0]
    count = math.ceil((size - overlap) / (tile - overlap))
    last = size - tile
    return [min(last, round(i * last / (count - 1) / ALIGN) * ALIGN) for i in range(count)]


def plan_tiles(height: int, width: int, tile: int, overlap: int) -> list[Region]:
    """Overlapping windows covering an H×W frame (H, W multiples of 8)."""
    if tile % ALIGN or overlap % ALIGN or not 0 <= overlap < tile:
        raise ValueError(f"expected a tile and an overlap that are multiples of {ALIGN} with overlap < tile, "
                         f"got tile {tile} and overlap {overlap}")
    tile_h, tile_w = min(tile, height), min(tile, width)
    return [Region(top, left, tile_h, tile_w, height, width)
            for top in _starts(height, tile_h, overlap) for left in _starts(width, tile_w, overlap)]


def _ramp(length: int, start: int, end: int, frame: int, ramp_before: int, ramp_after: int) -> Tensor:
    """1-D weights of a window [start, end): raised-cosine ramps over its overlaps with the
    neighbouring windows (none at the frame's edges). Overlapping ramps of two windows
    sum to one; `tiled_interpolate` still normalises by the sum of all weights."""
    position = torch.arange(start, end, dtype=torch.float32) + 0.5
    weight = torch.ones(length)
    if start > 0 and ramp_before > 0:
        rising = ((position - start) / ramp_before).clamp(0, 1)
        weight = weight * (0.5 - 0.5 * torch.cos(math.pi * rising))
    if end < frame and ramp_after > 0:
        falling = ((end - position) / ramp_after).clamp(0, 1)
        weight = weight * (0.5 - 0.5 * torch.cos(math.pi * falling))
    return weight


def blend_weights(regions: list[Region]) -> list[Tensor]:
    """For each window, H×W weights that ramp across its overlap with each neighbour."""
    def overlaps(starts: list[int], length: int) -> dict[int, tuple[int, int]]:
        ordered = sorted(set(starts))
        out = {}
        for i, s in enumerate(ordered):
            before = ordered[i - 1] + length - s if i > 0 else 0
            after = s + length - ordered[i + 1] if i + 1 < len(ordered) else 0
            out[s] = (before, after)
        return out

    rows = overlaps([r.top for r in regions], regions[0].height)
    cols = overlaps([r.left for r in regions], regions[0].width)
    weights = []
    for r in regions:
        wy = _ramp(r.height, r.top, r.top + r.height, r.frame_height, *rows[r.top])
        wx = _ramp(r.width, r.left, r.left + r.width, r.frame_width, *cols[r.left])
        weights.append(wy[:, None] * wx[None, :])
    return weights


def motion_halo(flow01: Tensor, flow10: Tensor) -> int:
    """The halo for these flows: the largest motion plus `HALO_MARGIN`, a multiple of 8.
    (One host synchronisation per frame, in the tiled path only.)"""
    motion = torch.maximum(flow01.abs().amax(), flow10.abs().amax()).item()
    return math.ceil((motion + HALO_MARGIN) / ALIGN) * ALIGN


def with_halo(region: Region, halo: int) -> Region:
    """`region` grown by `halo` on every side, within the frame."""
    top, left = max(0, region.top - halo), max(0, region.left - halo)
    bottom = min(region.frame_height, region.top + region.height + halo)
    right = min(region.frame_width, region.left + region.width + halo)
    return Region(top, left, bottom - top, right - left, region.frame_height, region.frame_width)


def owned_areas(regions: list[Region]) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """A partition of the frame among overlapping windows: each owns (rows, columns) up to
    the middle of its overlaps (multiples of 8)."""
    def bounds(starts: list[int], length: int, size: int) -> dict[int, tuple[int, int]]:
        ordered = sorted(set(starts))
        cuts = [0] + [round((b + a + length) / 2 / ALIGN) * ALIGN for a, b in zip(ordered, ordered[1:])] + [size]
        return {start: (cuts[i], cuts[i + 1]) for i, start in enumerate(ordered)}

    rows = bounds([r.top for r in regions], regions[0].height, regions[0].frame_height)
    cols = bounds([r.left for r in regions], regions[0].width, regions[0].frame_width)
    return [(rows[r.top], cols[r.left]) for r in regions]


def tiled_interpolate(generator: nn.Module, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor,
                      time: float, tile: int, overlap: int, zs: list[Tensor] | None = None,
                      rng: torch.Generator | None = None) -> Tensor:
    """The generator's frame at `time`, computed window by window (each with a halo) and
    blended.

    v00's noise is drawn for the whole frame (or taken from `zs`) and cropped per window,
    so tiles see the noise the whole frame would.
    """
    batch, _, height, width = img0.shape
    if zs is None and hasattr(generator, "sample_noise"):
        zs = generator.sample_noise(batch, height, width, rng=rng, device=img0.device)
    regions = plan_tiles(height, width, tile, overlap)
    halo = motion_halo(flow01, flow10)
    windows = [with_halo(region, halo) for region in regions]

    def inputs(window: Region) -> list[Tensor]:
        return [window.crop(x) for x in (img0, img1, flow01, flow10)]

    options = {}
    if hasattr(generator, "attention_sums") and len(regions) > 1:
        sums = None
        for window, owned in zip(windows, owned_areas(regions)):
            part = generator.attention_sums(generator.encode_pair(*inputs(window)), time, window, owned)
            sums = part if sums is None else [a + b for a, b in zip(sums, part)]
        options["attentions"] = generator.attentions_from_sums(sums, height, width)
    out = torch.zeros(batch, 3, height, width, device=img0.device)
    total = torch.zeros(1, 1, height, width, device=img0.device)
    for region, window, weight in zip(regions, windows, blend_weights(regions)):
        # The noise levels are at 1/2, 1/4 and 1/8 of the frame.
        tile_zs = None if zs is None else [window.crop(z, 2 ** (level + 1)) for level, z in enumerate(zs)]
        pred = generator.interpolate(*inputs(window), time=time, zs=tile_zs, region=window, **options)
        core = (..., slice(region.top - window.top, region.top - window.top + region.height),
                slice(region.left - window.left, region.left - window.left + region.width))
        frame = (..., slice(region.top, region.top + region.height), slice(region.left, region.left + region.width))
        weight = weight.to(pred.device)
        out[frame] += pred[core] * weight
        total[frame] += weight
    return out / total
