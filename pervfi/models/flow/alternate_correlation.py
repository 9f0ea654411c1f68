"""RAFT's correlation lookups with memory linear in the frame (the "alternate"
correlation of Teed & Deng), and the choice between it and the all-pairs pyramid."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .raft_parts import CorrelationPyramid

# The all-pairs pyramid (the fast path) is built while it takes at most this many bytes;
# beyond, the alternate correlation. 720p frames (14,400 positions at 1/8: 1.4 GB both
# ways) are past it, 432×1024 (0.3 GB) within.
FULL_VOLUME_BYTES = 512 * 2**20
# The alternate correlation takes the source positions in squares of BLOCK×BLOCK.
BLOCK = 16


def correlation_lookup(fmap0: Tensor, fmap1: Tensor, levels: int, radius: int,
                       bidirectional: bool) -> CorrelationPyramid | AlternateCorrelation:
    """The pyramid of img0→img1 correlations (and img1→img0 after them when
    `bidirectional`): all pairs when they fit `FULL_VOLUME_BYTES`, else computed at the
    lookup points."""
    batch, _, height, width = fmap0.shape
    # The volume, float32, and its pooled levels (a third of it per direction).
    full_bytes = 4 * batch * (height * width) ** 2 * (5 if bidirectional else 4) // 3
    kind = CorrelationPyramid if full_bytes <= FULL_VOLUME_BYTES else AlternateCorrelation
    build = kind.bidirectional if bidirectional else kind.forward_only
    return build(fmap0, fmap1, levels, radius)


class AlternateCorrelation:
    """The lookups of `CorrelationPyramid` without the all-pairs volume.

    Pooling the volume over the target image equals correlating with pooled target
    features, and sampling a correlation map bilinearly equals correlating with the
    bilinearly sampled features; so each lookup is computed where it is made. The source
    positions go in square blocks: a block is correlated (one matrix product) with the box
    of target features that its windows cover, and its windows are sampled from that. The
    work grows with the spread of the motion inside a block; the memory is at most one
    block's correlations with a whole target map, however large the frame.
    """

    def __init__(self, sources: Tensor, targets: Tensor, levels: int, radius: int) -> None:
        self.sources = sources / math.sqrt(sources.shape[1])
        self.targets = [targets]
        for _ in range(levels - 1):  # as the volume's pooling: an odd last row or column is dropped
            self.targets.append(F.avg_pool2d(self.targets[-1], 2, stride=2))
        self.radius = radius
        steps = torch.arange(-radius, radius + 1, device=sources.device, dtype=torch.float32)
        side = steps.numel()
        # The window's offsets (dx, dy) in pixels, dx the major index (as `window_offsets`).
        self.offsets = torch.stack([steps.view(side, 1).expand(side, side),
                                    steps.view(1, side).expand(side, side)], dim=-1).reshape(-1, 2)

    @classmethod
    def forward_only(cls, fmap0: Tensor, fmap1: Tensor, levels: int, radius: int) -> AlternateCorrelation:
        """img0→img1 for each batch row."""
        return cls(fmap0, fmap1, levels, radius)

    @classmethod
    def bidirectional(cls, fmap0: Tensor, fmap1: Tensor, levels: int, radius: int) -> AlternateCorrelation:
        """img0→img1 for each batch row, then img1→img0 for each."""
        return cls(torch.cat([fmap0, fmap1]), torch.cat([fmap1, fmap0]), levels, radius)

    @property
    def out_channels(self) -> int:
        return len(self.targets) * self.offsets.shape[0]

    def lookup(self, coords: Tensor) -> Tensor:
        """As `CorrelationPyramid.lookup`: B×(levels·(2r+1)²)×H×W, float32."""
        batch, _, height, width = coords.shape
        out = coords.new_zeros(batch, len(self.targets), self.offsets.shape[0], height, width, dtype=torch.float32)
        for level, target in enumerate(self.targets):
            centres = coords.float() / 2**level
            boxes = _block_boxes(centres, BLOCK).tolist()  # one host synchronisation per level
            for row in range(batch):
                for i, top in enumerate(range(0, height, BLOCK)):
                    for j, left in enumerate(range(0, width, BLOCK)):
                        rows, cols = slice(top, top + BLOCK), slice(left, left + BLOCK)
                        out[row, level, :, rows, cols] = self._block(
                            self.sources[row, :, rows, cols], target[row], centres[row, :, rows, cols], boxes[row][i][j])
        return out.view(batch, -1, height, width)

    def _block(self, query: Tensor, target: Tensor, centres: Tensor, box: list[float]) -> Tensor:
        """The windows of one block of source positions: (2r+1)²×h×w."""
        channels, block_h, block_w = query.shape
        height, width = target.shape[-2:]
        x0 = max(0, math.floor(box[0]) - self.radius)
        y0 = max(0, math.floor(box[1]) - self.radius)
        x1 = min(width, math.floor(box[2]) + self.radius + 2)
        y1 = min(height, math.floor(box[3]) + self.radius + 2)
        windows = self.offsets.shape[0]
        if x0 >= x1 or y0 >= y1:  # every window lies outside the target map
            return centres.new_zeros(windows, block_h, block_w)
        patch = target[:, y0:y1, x0:x1]
        corr = torch.matmul(query.reshape(channels, -1).t(), patch.reshape(channels, -1)).float()
        # The window points in the box's pixels, normalised as `sample_pixels` does.
        points = centres.reshape(2, -1).t()[:, None, :] - centres.new_tensor([x0, y0]) + self.offsets
        x, y = points.unbind(-1)
        grid = torch.stack([(2 * x + 1) / (x1 - x0) - 1, (2 * y + 1) / (y1 - y0) - 1], dim=-1)
        sampled = F.grid_sample(corr.view(-1, 1, y1 - y0, x1 - x0), grid[:, None], mode="bilinear",
                                padding_mode="zeros", align_corners=False)
        return sampled.view(block_h, block_w, windows).permute(2, 0, 1)


def _block_boxes(centres: Tensor, block: int) -> Tensor:
    """Per block×block square of positions, the box of its centres (x min, y min, x max,
    y max): B×blocks down×blocks across×4 (the last blocks may be partial)."""
    batch, _, height, width = centres.shape
    pad_h, pad_w = -height % block, -width % block
    padded = F.pad(centres, (0, pad_w, 0, pad_h), mode="replicate")
    shaped = padded.view(batch, 2, (height + pad_h) // block, block, (width + pad_w) // block, block)
    return torch.cat([shaped.amin((3, 5)), shaped.amax((3, 5))], dim=1).permute(0, 2, 3, 1)
