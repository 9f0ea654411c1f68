"""Flow estimator + generator: interpolated frames from pairs of frames, for any frame size."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from pervfi.models.flow.base import FlowEstimator, check_pair
from pervfi.models.generators.base import SIZE_MULTIPLE
from pervfi.models.method_names import parse_method
from pervfi.ops import Padder, autocast, precision_dtype, resize

from .budget import parse_memory
from .device import resolve_device
from .memory import choose_tile, peak_model, room
from .precision import emulated, resolve_precision
from .tiling import default_overlap, tiled_interpolate, window_halos

log = logging.getLogger(__name__)
# A pair of frames and the times wanted between them.
PairTimes = tuple[Tensor, Tensor, Sequence[float]]
# v00's noise source: one generator for every frame, one per output frame (in order), or none.
NoiseSource = torch.Generator | Sequence[torch.Generator] | None


class Interpolator:
    """The reference pipeline: pad right/bottom to a multiple of 8, estimate the flows both
    ways, run the generator, clamp to [0, 1], crop back.

    Images are RGB in [0, 1], B×3×H×W, on any device; results come back on the
    interpolator's device.

    For large frames: `flow_scale` < 1 estimates the flows on frames scaled by that factor
    and scales the flows back up (the usual UHD mode). The generator runs in overlapping
    windows blended smoothly (see `pervfi.runtime.tiling`), so its memory is bounded by
    the tile: of `tile`×`tile` pixels (overlap `tile_overlap`) when given, else when the
    whole frame would not fit in `max_memory` (bytes, or a size such as ``"8GB"``; the
    peak of the process on the device) or, without it, in what the device has free, of
    the largest size that fits (see `pervfi.runtime.memory`).

    Speed: `precision` (``fp32``, ``bf16``, ``fp16``; default: `runtime.precision.default_precision`) runs
    the models under autocast, with the parts that need it kept in float32; `compile`
    compiles the flow estimator (when traceable) and the generator's two steps with
    `torch.compile`, whole graphs, once per frame size (a short last batch is filled up to
    `batch` with copies of its last pair, whose frames are dropped); `batch` is how many
    frame pairs go through the flow estimator, and how many (pair, time) frames through
    the generator, in one call; `channels_last` stores the models' weights channels-last
    (None: only for bf16/fp16 on the CPU, where oneDNN's low-precision convolutions are
    channels-last kernels and the others 15-35× slower).
    """

    def __init__(self, flow: FlowEstimator, generator: nn.Module, device: str | torch.device = "auto",
                 flow_scale: float = 1.0, tile: int | None = None, tile_overlap: int | None = None,
                 precision: str | None = None, compile: bool = False, batch: int = 1,
                 channels_last: bool | None = None, max_memory: int | str | None = None) -> None:
        if not 0.0 < flow_scale <= 1.0:
            raise ValueError(f"flow_scale must lie in (0, 1], got {flow_scale}")
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        if tile is not None and max_memory is not None:
            raise ValueError("give tile or max_memory, not both: a budget chooses the tile")
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        if emulated(self.precision, self.device):
            log.warning("%s is emulated on %s (no native %s arithmetic): expect it slower than fp32",
                        self.precision, self.device, self.precision)
        self.dtype = precision_dtype(self.precision)
        if channels_last is None:
            channels_last = self.device.type == "cpu" and self.dtype is not None
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.flow = flow.to(self.device, memory_format=memory_format).eval()
        self.generator = generator.to(self.device, memory_format=memory_format).eval()
        self.flow_scale = flow_scale
        self.tile = tile
        self.tile_overlap = default_overlap(tile) if tile is not None and tile_overlap is None else tile_overlap
        self.batch = batch
        self.compiled = compile
        self.max_memory = parse_memory(max_memory) if isinstance(max_memory, str) else max_memory
        self._room: dict[tuple[int, int], int | None] = {}  # per padded frame size, read once
        self._estimate = _compiled(self.flow.estimate_bidirectional, compile and self.flow.traceable)
        self._split = hasattr(self.generator, "encode_pair")
        if self._split:
            self._encode_pair = _compiled(self.generator.encode_pair, compile)
            self._interpolate_at = _compiled(self.generator.interpolate_at, compile)

    @classmethod
    def from_method(
        cls,
        method: str,
        checkpoint_dir: str = "checkpoints",
        device: str | torch.device = "auto",
        download: bool = True,
        generator_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> "Interpolator":
        """Build ``FLOW+GENERATOR`` (e.g. ``raft+pervfi``) with its official weights.

        Missing checkpoints are fetched from the Hugging Face Hub when `download` is true.
        `generator_options` go to the generator's builder (e.g. ``{"heat": 0.5}`` for v00);
        `options` (`flow_scale`, `tile`, `tile_overlap`, `max_memory`, `precision`, `compile`,
        `batch`, `channels_last`) go to the constructor.
        """
        from pervfi.models.checkpoints import load_model, require_checkpoints

        spec = parse_method(method)
        # Fetch (or, offline, report) every missing file at once before building either model.
        require_checkpoints([(spec.flow, "flow"), (spec.generator, "generator")], checkpoint_dir, download=download)
        flow = load_model(spec.flow, "flow", checkpoint_dir, download=download)
        generator = load_model(spec.generator, "generator", checkpoint_dir, download=download,
                               options=generator_options)
        return cls(flow, generator, device=device, **options)

    @torch.inference_mode()
    def interpolate(self, img0: Tensor, img1: Tensor, time: float = 0.5,
                    zs: list[Tensor] | None = None, rng: torch.Generator | None = None) -> Tensor:
        """The frame at `time` in (0, 1) between img0 and img1, clamped to [0, 1].

        `zs` (v00 only) is the noise for the padded frame; without it, noise is drawn with
        the generator's heat from `rng` (a `torch.Generator`) if given.
        """
        return self.interpolate_times(img0, img1, [time], zs=zs, rng=rng)[0]

    @torch.inference_mode()
    def interpolate_times(self, img0: Tensor, img1: Tensor, times: Sequence[float],
                          zs: list[Tensor] | None = None, rng: NoiseSource = None) -> list[Tensor]:
        """Frames at several times between one pair; the flows and the frames' encoding are
        computed once."""
        return self.interpolate_pairs([(img0, img1, times)], zs=zs, rng=rng)[0]

    @torch.inference_mode()
    def interpolate_pairs(self, pairs: Sequence[PairTimes], zs: list[Tensor] | None = None,
                          rng: NoiseSource = None) -> list[list[Tensor]]:
        """The frames at each pair's times (all frames of one size), pair by pair.

        Up to `batch` pairs share one call of the flow estimator and of the generator's
        per-pair step, and up to `batch` (pair, time) frames one call of its per-time step.
        v00's noise is drawn frame by frame in output order (from `rng`, or from the k-th
        generator for the k-th frame), so batching does not change the output.
        """
        for _, _, times in pairs:
            for time in times:
                if not 0.0 < time < 1.0:
                    raise ValueError(f"time must lie strictly between 0 and 1, got {time}")
        counts = [len(times) for _, _, times in pairs]
        rngs = _per_frame(rng, sum(counts))
        outputs: list[Tensor] = []
        for start in range(0, len(pairs), self.batch):
            group = pairs[start:start + self.batch]
            first = sum(counts[:start])
            outputs += self._group(group, zs, rngs[first:first + sum(counts[start:start + self.batch])])
        result, offset = [], 0
        for count in counts:
            result.append(outputs[offset:offset + count])
            offset += count
        return result

    def _group(self, pairs: Sequence[PairTimes], zs: list[Tensor] | None,
               rngs: list[torch.Generator | None]) -> list[Tensor]:
        """The frames of up to `batch` pairs, in order."""
        rows = pairs[0][0].shape[0]
        fill = self.batch * rows if self.compiled else 0
        padder, img0, img1, flow01, flow10 = self.padded_flows(_filled(torch.cat([p[0] for p in pairs]), fill),
                                                               _filled(torch.cat([p[1] for p in pairs]), fill))
        items = [(index, time) for index, (_, _, times) in enumerate(pairs) for time in times]
        noise = [self._noise(rows, *img0.shape[-2:], zs, rng) for rng in rngs]
        tile = self._tile_for(flow01, flow10, pairs)
        frames = []
        if tile is not None:
            for index, (_, _, times) in enumerate(pairs):
                window = slice(index * rows, (index + 1) * rows)
                pair_noise = [item_zs for (item, _), item_zs in zip(items, noise) if item == index]
                frames += self._generate_tiled(img0[window], img1[window], flow01[window], flow10[window], times,
                                               pair_noise, tile)
        elif not self._split:
            for (index, time), item_zs in zip(items, noise):
                window = slice(index * rows, (index + 1) * rows)
                with autocast(self.device.type, self.dtype):
                    pred = self.generator.interpolate(img0[window], img1[window], flow01[window], flow10[window],
                                                      time=time, zs=item_zs)
                frames.append(pred.float())
        else:
            with autocast(self.device.type, self.dtype):
                encoded = self._encode_pair(img0, img1, flow01, flow10)
            for start in range(0, len(items), self.batch):
                chunk = items[start:start + self.batch]
                chunk_zs = noise[start:start + self.batch]
                count = len(chunk)
                if self.compiled:  # one batch size for the compiled step
                    chunk += chunk[-1:] * (self.batch - count)
                    chunk_zs += chunk_zs[-1:] * (self.batch - count)
                frames += self._generate_split(encoded, chunk, chunk_zs, rows).split(rows)[:count]
        return [padder.crop(frame.clamp(0.0, 1.0))[0] for frame in frames]

    def _tile_for(self, flow01: Tensor, flow10: Tensor, pairs: Sequence[PairTimes]) -> int | None:
        """The tile for this group of pairs: the one given, else None when the whole frame
        fits the memory budget, else the largest that does (`memory.choose_tile`)."""
        if self.tile is not None:
            return self.tile
        size = tuple(flow01.shape[-2:])
        if size not in self._room:
            self._room[size] = room(self.device, self.max_memory)
        times = max(len(times) for _, _, times in pairs)
        frames = min(self.batch, sum(len(times) for _, _, times in pairs))
        return choose_tile(peak_model(self.generator), *size, len(pairs), frames, times, self._room[size],
                           lambda regions: window_halos(flow01, flow10, regions), strict=self.max_memory is not None)

    def _generate_split(self, encoded: Any, items: list[tuple[int, float]], zs: list[list[Tensor] | None],
                        rows: int) -> Tensor:
        """The per-time step for (pair, time) items as one batch: item k is rows k·rows…"""
        rows_used = [index * rows + row for index, _ in items for row in range(rows)]
        times = torch.tensor([time for _, time in items for _ in range(rows)], dtype=torch.float32)
        times = times.to(self.device).view(-1, 1, 1, 1)
        if rows_used != list(range(encoded.flow01.shape[0])):  # not every pair once, in order: gather
            encoded = encoded.select(torch.tensor(rows_used).to(self.device))
        batch_zs = None if zs[0] is None else [torch.cat(level) for level in zip(*zs)]
        with autocast(self.device.type, self.dtype):
            pred = self._interpolate_at(encoded, times, zs=batch_zs)
        return pred.float()

    def _generate_tiled(self, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor, times: Sequence[float],
                        zs: list[list[Tensor] | None], tile: int) -> list[Tensor]:
        """One pair's frames at `times`, the generator run in tiles."""
        overlap = self.tile_overlap if tile == self.tile else default_overlap(tile)
        with autocast(self.device.type, self.dtype):
            preds = tiled_interpolate(self.generator, img0, img1, flow01, flow10, times, tile, overlap, zs=zs)
        return [pred.float() for pred in preds]

    def _noise(self, rows: int, height: int, width: int, zs: list[Tensor] | None,
               rng: torch.Generator | None) -> list[Tensor] | None:
        """v00's noise for one output frame of the padded size (None for other generators)."""
        if zs is not None or not hasattr(self.generator, "sample_noise"):
            return zs
        return self.generator.sample_noise(rows, height, width, rng=rng, device=self.device)

    @torch.inference_mode()
    def padded_flows(self, img0: Tensor, img1: Tensor) -> tuple[Padder, Tensor, Tensor, Tensor, Tensor]:
        """The generator's inputs: (padder, padded img0, padded img1, flow01, flow10), the
        frames on the interpolator's device padded right/bottom to a multiple of 8."""
        check_pair(img0, img1)
        padder = Padder(*img0.shape[-2:], multiple=SIZE_MULTIPLE, mode="corner")
        img0, img1 = padder.apply(img0.to(self.device).float(), img1.to(self.device).float())
        flow01, flow10 = self._flows(img0, img1)
        return padder, img0, img1, flow01, flow10

    def _flows(self, img0: Tensor, img1: Tensor) -> tuple[Tensor, Tensor]:
        """Both flows at full size, estimated at `flow_scale` of it, float32."""
        height, width = img0.shape[-2:]
        small = (max(1, round(height * self.flow_scale)), max(1, round(width * self.flow_scale)))
        if self.flow_scale != 1.0:
            img0, img1 = resize(img0, small), resize(img1, small)
        with autocast(self.device.type, self.dtype):
            flows = self._estimate(img0, img1)
        if self.flow_scale == 1.0:
            return tuple(flow.float() for flow in flows)
        # Plain numbers per component: no tensor is made on the device per call.
        return tuple(torch.cat([flow[:, :1] * (width / small[1]), flow[:, 1:] * (height / small[0])], 1)
                     for flow in (resize(flow.float(), (height, width)) for flow in flows))


def _compiled(function: Callable, enabled: bool) -> Callable:
    """`function` compiled for fixed shapes (recompiled when the frame size changes)."""
    return torch.compile(function, dynamic=False) if enabled else function


def _filled(frames: Tensor, rows: int) -> Tensor:
    """`frames` with its last row repeated up to `rows` rows (a compiled function then sees
    one batch size); as is when it has that many."""
    missing = rows - frames.shape[0]
    return frames if missing <= 0 else torch.cat([frames, frames[-1:].expand(missing, *frames.shape[1:])])


def _per_frame(rng: NoiseSource, count: int) -> list[torch.Generator | None]:
    """The noise generator of each of `count` output frames."""
    if rng is None or isinstance(rng, torch.Generator):
        return [rng] * count
    rngs = list(rng)
    if len(rngs) != count:
        raise ValueError(f"expected one random generator per output frame ({count}), got {len(rngs)}")
    return rngs
