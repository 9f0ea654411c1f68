"""Flow estimator + generator: one interpolated frame from two, for any frame size."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .device import resolve_device
from .flow.base import FlowEstimator, check_pair
from .method_names import parse_method
from .ops import Padder, resize
from .tiling import tiled_interpolate

# The PerVFI generators work on frames whose sides are multiples of 8.
GENERATOR_MULTIPLE = 8


class Interpolator:
    """The reference pipeline: pad right/bottom to a multiple of 8, estimate the flows both
    ways, run the generator, clamp to [0, 1], crop back.

    Images are RGB in [0, 1], B×3×H×W, on any device; results come back on the
    interpolator's device.

    For large frames: `flow_scale` < 1 estimates the flows on frames scaled by that factor
    and scales the flows back up (the usual UHD mode); `tile` runs the generator in
    overlapping `tile`×`tile` windows (overlap `tile_overlap`) blended smoothly, so its
    memory is bounded by the tile (see `pervfi.tiling`).
    """

    def __init__(self, flow: FlowEstimator, generator: nn.Module, device: str | torch.device = "auto",
                 flow_scale: float = 1.0, tile: int | None = None, tile_overlap: int | None = None) -> None:
        if not 0.0 < flow_scale <= 1.0:
            raise ValueError(f"flow_scale must lie in (0, 1], got {flow_scale}")
        self.device = resolve_device(device)
        self.flow = flow.to(self.device).eval()
        self.generator = generator.to(self.device).eval()
        self.flow_scale = flow_scale
        self.tile = tile
        self.tile_overlap = default_overlap(tile) if tile is not None and tile_overlap is None else tile_overlap

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
        `options` (`flow_scale`, `tile`, `tile_overlap`) go to the constructor.
        """
        from .checkpoints import load_model, require_checkpoints

        spec = parse_method(method)
        # Fetch (or, offline, report) every missing file at once before building either model.
        require_checkpoints([(spec.flow, "flow"), (spec.generator, "generator")], checkpoint_dir, download=download)
        flow = load_model(spec.flow, "flow", checkpoint_dir, download=download)
        generator = load_model(spec.generator, "generator", checkpoint_dir, download=download,
                               options=generator_options)
        return cls(flow, generator, device=device, **options)

    @torch.no_grad()
    def interpolate(self, img0: Tensor, img1: Tensor, time: float = 0.5,
                    zs: list[Tensor] | None = None, rng: torch.Generator | None = None) -> Tensor:
        """The frame at `time` in (0, 1) between img0 and img1, clamped to [0, 1].

        `zs` (v00 only) is the noise for the padded frame; without it, noise is drawn with
        the generator's heat from `rng` (a `torch.Generator`) if given.
        """
        return self.interpolate_times(img0, img1, [time], zs=zs, rng=rng)[0]

    @torch.no_grad()
    def interpolate_times(self, img0: Tensor, img1: Tensor, times: Sequence[float],
                          zs: list[Tensor] | None = None,
                          rng: torch.Generator | None = None) -> list[Tensor]:
        """Frames at several times between one pair; the flows are computed once."""
        for time in times:
            if not 0.0 < time < 1.0:
                raise ValueError(f"time must lie strictly between 0 and 1, got {time}")
        padder, img0, img1, flow01, flow10 = self.padded_flows(img0, img1)
        frames = []
        for time in times:
            if self.tile is None:
                pred = self.generator.interpolate(img0, img1, flow01, flow10, time=time, zs=zs, rng=rng)
            else:
                pred = tiled_interpolate(self.generator, img0, img1, flow01, flow10, time, self.tile,
                                         self.tile_overlap, zs=zs, rng=rng)
            frames.append(padder.crop(pred.clamp(0.0, 1.0))[0])
        return frames

    @torch.no_grad()
    def padded_flows(self, img0: Tensor, img1: Tensor) -> tuple[Padder, Tensor, Tensor, Tensor, Tensor]:
        """The generator's inputs: (padder, padded img0, padded img1, flow01, flow10), the
        frames on the interpolator's device padded right/bottom to a multiple of 8."""
        check_pair(img0, img1)
        padder = Padder(*img0.shape[-2:], multiple=GENERATOR_MULTIPLE, mode="corner")
        img0, img1 = padder.apply(img0.to(self.device).float(), img1.to(self.device).float())
        flow01, flow10 = self._flows(img0, img1)
        return padder, img0, img1, flow01, flow10

    def _flows(self, img0: Tensor, img1: Tensor) -> tuple[Tensor, Tensor]:
        """Both flows at full size, estimated at `flow_scale` of it."""
        if self.flow_scale == 1.0:
            return self.flow.estimate_bidirectional(img0, img1)
        height, width = img0.shape[-2:]
        small = (max(1, round(height * self.flow_scale)), max(1, round(width * self.flow_scale)))
        flows = self.flow.estimate_bidirectional(*(resize(x, small) for x in (img0, img1)))
        factors = torch.tensor([width / small[1], height / small[0]], device=img0.device).view(1, 2, 1, 1)
        return tuple(resize(flow, (height, width)) * factors for flow in flows)


def default_overlap(tile: int) -> int:
    """A quarter of the tile, at least 32 pixels, a multiple of 8."""
    return max(32, tile // 4 // 8 * 8)
