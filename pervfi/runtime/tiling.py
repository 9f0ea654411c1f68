"""Running a generator in overlapping tiles, for frames too large to process at once.

Windows are aligned to multiples of 8 (so the pyramid and the v00 noise line up with the
whole frame), overlap by `overlap` pixels, and are blended with raised-cosine weights
across each overlap, so no seam shows. Each window is computed with a halo as wide as
the motion that can reach it (plus a margin for the networks' reach), so what splats
into it from outside is there, and PerVFI's soft masks use the whole frame's channel
attention (gathered in a first pass over the windows, which also encodes each window,
once for every output time). Memory is bounded by the largest window and one
frame-sized encoding, see `pervfi.runtime.memory`. Flows are computed by the caller (on
the whole frame, possibly at reduced resolution).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

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


def _gaps(starts: Tensor, begin: int, end: int) -> Tensor:
    """For blocks of ALIGN pixels beginning at `starts`: the fewest pixels from each block
    to the span [begin, end) (0 for blocks that meet it)."""
    return torch.maximum(begin - (starts + ALIGN - 1), starts - (end - 1)).clamp(min=0)


def window_halos(flow01: Tensor, flow10: Tensor, regions: list[Region]) -> list[int]:
    """Per window, the halo its motion needs: the largest motion among the pixels that can
    reach the window (those inside it, and those outside whose motion spans their distance
    to it plus `HALO_MARGIN`), plus `HALO_MARGIN`, a multiple of 8.

    One fast object enlarges only the windows it can reach, not every window. Motion is
    taken per block of 8×8 pixels (its largest component, both directions, every batch
    row); one host synchronisation per frame.
    """
    motion = torch.maximum(flow01.abs().amax(1), flow10.abs().amax(1)).amax(0).float()
    blocks = torch.nn.functional.max_pool2d(motion[None, None], ALIGN, ceil_mode=True)[0, 0]
    rows = torch.arange(blocks.shape[0], device=blocks.device) * ALIGN
    cols = torch.arange(blocks.shape[1], device=blocks.device) * ALIGN
    reach = []
    for region in regions:
        distance = torch.maximum(_gaps(rows, region.top, region.top + region.height)[:, None],
                                 _gaps(cols, region.left, region.left + region.width)[None, :])
        reach.append(torch.where(blocks + HALO_MARGIN >= distance, blocks, 0.0).amax())
    return [math.ceil((motion + HALO_MARGIN) / ALIGN) * ALIGN for motion in torch.stack(reach).tolist()]


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


def default_overlap(tile: int) -> int:
    """A quarter of the tile, at least 32 pixels, a multiple of 8."""
    return max(32, tile // 4 // 8 * 8)


def _map(function: Callable[..., Tensor], *trees: Any) -> Any:
    """`function` applied leaf by leaf to parallel structures of tensors (tensors, lists,
    tuples, named tuples such as an encoding), keeping the structure."""
    first = trees[0]
    if isinstance(first, Tensor):
        return function(*trees)
    parts = [_map(function, *branches) for branches in zip(*trees)]
    return type(first)(*parts) if hasattr(first, "_fields") else type(first)(parts)


def _paste(frame: Any, part: Any, window: Region, owned: tuple[tuple[int, int], tuple[int, int]]) -> Any:
    """`frame` (a frame-sized encoding, None for a new one) with the pixels `owned` by
    `window` taken from `part`, the window's encoding; each tensor's scale is read from
    its size (pyramid levels at 1, 1/2, 1/4)."""
    (top, bottom), (left, right) = owned

    def paste(whole: Tensor | None, piece: Tensor) -> Tensor:
        scale = window.height // piece.shape[-2]
        if whole is None:
            whole = piece.new_empty(*piece.shape[:-2], window.frame_height // scale, window.frame_width // scale)
        whole[..., top // scale:bottom // scale, left // scale:right // scale] = piece[
            ..., (top - window.top) // scale:(bottom - window.top) // scale,
            (left - window.left) // scale:(right - window.left) // scale]
        return whole

    if frame is None:
        return _map(lambda piece: paste(None, piece), part)
    return _map(paste, frame, part)


def _crop(frame: Any, window: Region) -> Any:
    """The window of a frame-sized encoding (every tensor at its own scale)."""
    return _map(lambda whole: window.crop(whole, window.frame_height // whole.shape[-2]), frame)


def _encode_windows(generator: nn.Module, inputs: Callable[[Region], list[Tensor]], times: Sequence[float],
                    regions: list[Region], windows: list[Region]) -> tuple[Any, list[list[Tensor] | None]]:
    """The frame's encoding, each window encoded once (its owned part kept: one frame's
    worth, not one per window), and per time the whole frame's soft-mask channel attention
    gathered from the same encodings (None with one window: it is the whole frame)."""
    if len(windows) == 1:
        return generator.encode_pair(*inputs(windows[0])), [None] * len(times)
    frame, sums = None, [None] * len(times)
    for window, owned in zip(windows, owned_areas(regions)):
        part = generator.encode_pair(*inputs(window))
        for index, time in enumerate(times):
            found = generator.attention_sums(part, time, window, owned)
            sums[index] = found if sums[index] is None else [a + b for a, b in zip(sums[index], found)]
        frame = _paste(frame, part, window, owned)
    height, width = windows[0].frame_height, windows[0].frame_width
    return frame, [generator.attentions_from_sums(level_sums, height, width) for level_sums in sums]


def tiled_interpolate(generator: nn.Module, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor,
                      times: Sequence[float], tile: int, overlap: int,
                      zs: Sequence[list[Tensor] | None] | None = None,
                      rng: torch.Generator | None = None) -> list[Tensor]:
    """The generator's frames at `times`, computed window by window (each with its halo)
    and blended.

    Generators with a per-pair step (`encode_pair`, the PerVFI ones) encode each window
    once for every time and both passes (see `_encode_windows`). v00's noise is drawn for
    the whole frame, one draw per time (or taken from `zs`, one list per time), and
    cropped per window, so tiles see the noise the whole frame would.
    """
    batch, _, height, width = img0.shape
    if zs is None:
        zs = [generator.sample_noise(batch, height, width, rng=rng, device=img0.device)
              if hasattr(generator, "sample_noise") else None for _ in times]
    regions = plan_tiles(height, width, tile, overlap)
    windows = [with_halo(region, halo) for region, halo in zip(regions, window_halos(flow01, flow10, regions))]

    def inputs(window: Region) -> list[Tensor]:
        return [window.crop(x) for x in (img0, img1, flow01, flow10)]

    if hasattr(generator, "encode_pair"):
        encoded, attentions = _encode_windows(generator, inputs, times, regions, windows)

        def predict(window: Region, index: int, tile_zs: list[Tensor] | None) -> Tensor:
            return generator.interpolate_at(_crop(encoded, window), times[index], zs=tile_zs, region=window,
                                            attentions=attentions[index])
    else:
        def predict(window: Region, index: int, tile_zs: list[Tensor] | None) -> Tensor:
            return generator.interpolate(*inputs(window), time=times[index], zs=tile_zs, region=window)

    outs = [torch.zeros(batch, 3, height, width, device=img0.device) for _ in times]
    total = torch.zeros(1, 1, height, width, device=img0.device)
    for region, window, weight in zip(regions, windows, blend_weights(regions)):
        core = (..., slice(region.top - window.top, region.top - window.top + region.height),
                slice(region.left - window.left, region.left - window.left + region.width))
        frame = (..., slice(region.top, region.top + region.height), slice(region.left, region.left + region.width))
        weight = weight.to(img0.device)
        for index, out in enumerate(outs):
            # The noise levels are at 1/2, 1/4 and 1/8 of the frame.
            tile_zs = None if zs[index] is None else [window.crop(z, 2 ** (level + 1))
                                                      for level, z in enumerate(zs[index])]
            out[frame] += predict(window, index, tile_zs)[core] * weight
        total[frame] += weight
    return [out / total for out in outs]
