"""Row bands: a local computation over a large frame run one band of rows at a time, so
its full-frame intermediates never exist at once and its memory is bounded by the band."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor

# The bytes that one band's intermediates may take.
BAND_BYTES = 256 * 2**20
# Bands start at multiples of this many rows.
BAND_MULTIPLE = 8


def in_bands(function: Callable[[int, int], Sequence[Tensor]], height: int, halo: int, scales: Sequence[int],
             bytes_per_row: int) -> list[Tensor]:
    """The outputs of `function(0, height)` (maps of a frame `height` rows high, each
    at 1/`scale` of it) computed band by band when they would take more than `BAND_BYTES`
    at once (about `bytes_per_row` per row): `function(low, high)` computes rows
    [low, high) of the frame, a band extended by `halo` rows on both sides within the
    frame, and the halo is cropped from its outputs.

    Equal to the whole-frame result when every output row depends on the input rows
    within `halo` of it only (zero-padded convolutions, local resampling), and `halo` and
    `height` are multiples of every scale (at most `BAND_MULTIPLE`).
    """
    rows = max(BAND_MULTIPLE, BAND_BYTES // max(1, bytes_per_row) // BAND_MULTIPLE * BAND_MULTIPLE)
    if rows >= height:
        return list(function(0, height))
    outputs: list[Tensor] = []
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        low, high = max(0, top - halo), min(height, bottom + halo)
        parts = function(low, high)
        if not outputs:
            outputs = [part.new_empty(*part.shape[:-2], height // scale, part.shape[-1])
                       for part, scale in zip(parts, scales)]
        for out, part, scale in zip(outputs, parts, scales):
            out[..., top // scale:bottom // scale, :] = part[..., (top - low) // scale:(bottom - low) // scale, :]
    return outputs
