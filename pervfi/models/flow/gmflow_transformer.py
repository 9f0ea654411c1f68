"""GMFlow's feature transformer (Xu et al., CVPR 2022): self- and cross-attention within
windows of the 1/8-resolution features (2×2 of them in PerVFI), shifted every other layer
(Swin-style), and the self-attention that propagates flow along similar features."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Fused attention kernels on GPUs want value widths that are multiples of 8.
VALUE_MULTIPLE = 8
# The most bytes the window attention's scores take at once (see `window_attention`).
ATTENTION_BYTES = 256 * 2**20


def split_windows(x: Tensor, splits: int) -> Tensor:
    """B×H×W×C → (B·splits²)×(H/splits)×(W/splits)×C, windows row-major per image."""
    b, h, w, c = x.shape
    x = x.view(b, splits, h // splits, splits, w // splits, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b * splits * splits, h // splits, w // splits, c)


def merge_windows(x: Tensor, splits: int) -> Tensor:
    """The inverse of `split_windows`."""
    b, h, w, c = x.shape
    x = x.view(b // (splits * splits), splits, splits, h, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b // (splits * splits), splits * h, splits * w, c)


def sine_position(height: int, width: int, channels: int, device: torch.device) -> Tensor:
    """DETR's normalised sine position embedding of an H×W map: channels×H×W (y then x halves)."""
    features = channels // 2
    scale = 2 * math.pi
    ys = torch.arange(1, height + 1, device=device, dtype=torch.float32) / (height + 1e-6) * scale
    xs = torch.arange(1, width + 1, device=device, dtype=torch.float32) / (width + 1e-6) * scale
    index = torch.arange(features, device=device, dtype=torch.float32)
    frequencies = 10000 ** (2 * torch.div(index, 2, rounding_mode="floor") / features)

    def embed(positions: Tensor) -> Tensor:  # L → L×features, sin and cos interleaved
        angles = positions[:, None] / frequencies
        return torch.stack([angles[:, 0::2].sin(), angles[:, 1::2].cos()], dim=2).flatten(1)

    pos_y = embed(ys)[:, None, :].expand(height, width, features)
    pos_x = embed(xs)[None, :, :].expand(height, width, features)
    return torch.cat([pos_y, pos_x], dim=2).permute(2, 0, 1)


def add_window_position(feature: Tensor, splits: int) -> Tensor:
    """Add the position embedding of one window to every window of a B×C×H×W map."""
    _, channels, height, width = feature.shape
    position = sine_position(height // splits, width // splits, channels, feature.device)
    return feature + position.repeat(1, splits, splits)


def window_regions(height: int, width: int, splits: int, device: torch.device) -> Tensor:
    """For shifted windows (Swin Transformer): per window, the region of each of its pixels
    after the cyclic shift by half a window, pixels of different regions having been brought
    together from opposite edges of the map. (splits²)×L, L the pixels of one window."""
    window_h, window_w = height // splits, width // splits
    # After rolling, the last half-window of rows (columns) holds the wrapped-around ones.
    wrapped_rows = torch.arange(height, device=device) >= height - window_h // 2
    wrapped_cols = torch.arange(width, device=device) >= width - window_w // 2
    region = (2 * wrapped_rows[:, None] + wrapped_cols[None, :]).float()
    return split_windows(region[None, :, :, None], splits).view(splits * splits, -1)


def shift_bias(query_regions: Tensor, key_regions: Tensor) -> Tensor:
    """The attention bias of shifted windows: −100 between pixels of different regions
    (see `window_regions`), else 0; (splits²)×Lq×Lk."""
    apart = query_regions[:, :, None] != key_regions[:, None, :]
    return torch.zeros(apart.shape, device=apart.device).masked_fill(apart, -100.0)


def window_attention(query: Tensor, key: Tensor, value: Tensor, height: int, width: int, splits: int,
                     regions: Tensor | None) -> Tensor:
    """Single-head attention within `splits`×`splits` windows (shifted by half a window
    when the pixels' `regions` are given). Inputs and output B×(H·W)×C.

    The scores of one window grow with the square of its pixels: on large maps they are
    computed for a block of query rows at a time (at most `ATTENTION_BYTES`), each row's
    softmax being its own.
    """
    b, _, c = query.shape
    window_h, window_w = height // splits, width // splits
    shift = (-(window_h // 2), -(window_w // 2))

    def windows(x: Tensor) -> Tensor:
        x = x.view(b, height, width, c)
        if regions is not None:
            x = torch.roll(x, shifts=shift, dims=(1, 2))
        return split_windows(x, splits).view(b * splits * splits, -1, c)

    query, key, value = windows(query), windows(key), windows(value)
    length = query.shape[1]
    rows = max(1, ATTENTION_BYTES // (4 * query.shape[0] * length))
    out = torch.empty_like(query) if rows < length else None
    for start in range(0, length, rows):
        scores = torch.matmul(query[:, start:start + rows], key.transpose(1, 2)) / math.sqrt(c)
        if regions is not None:  # the same bias for every image's windows
            bias = shift_bias(regions[:, start:start + rows], regions)
            scores = (scores.view(b, -1, *scores.shape[1:]) + bias).view_as(scores)
        block = torch.matmul(torch.softmax(scores, dim=-1), value)
        if out is None:
            out = block
        else:
            out[:, start:start + rows] = block
    out = merge_windows(out.view(b * splits * splits, window_h, window_w, c), splits)
    if regions is not None:
        out = torch.roll(out, shifts=(-shift[0], -shift[1]), dims=(1, 2))
    return out.reshape(b, -1, c)


class TransformerLayer(nn.Module):
    """Attention of `source` to `target` (self-attention when they are the same), merged
    and normalised, optionally followed by a feed-forward network; residual."""

    def __init__(self, dim: int, ffn_expansion: int, with_ffn: bool) -> None:
        super().__init__()
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.merge = nn.Linear(dim, dim, bias=False)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = None
        if with_ffn:
            self.mlp = nn.Sequential(
                nn.Linear(dim * 2, dim * 2 * ffn_expansion, bias=False),
                nn.GELU(),
                nn.Linear(dim * 2 * ffn_expansion, dim, bias=False),
            )
            self.norm2 = nn.LayerNorm(dim)

    def forward(self, source: Tensor, target: Tensor, height: int, width: int, splits: int,
                regions: Tensor | None) -> Tensor:
        message = window_attention(self.q_proj(source), self.k_proj(target), self.v_proj(target),
                                   height, width, splits, regions)
        message = self.norm1(self.merge(message))
        if self.mlp is not None:
            message = self.norm2(self.mlp(torch.cat([source, message], dim=-1)))
        return source + message


class TransformerBlock(nn.Module):
    """Self-attention, then cross-attention with a feed-forward network."""

    def __init__(self, dim: int, ffn_expansion: int, shifted: bool) -> None:
        super().__init__()
        self.shifted = shifted
        self.self_attn = TransformerLayer(dim, ffn_expansion, with_ffn=False)
        self.cross_attn_ffn = TransformerLayer(dim, ffn_expansion, with_ffn=True)

    def forward(self, source: Tensor, target: Tensor, height: int, width: int, splits: int,
                regions: Tensor | None) -> Tensor:
        regions = regions if self.shifted else None
        source = self.self_attn(source, source, height, width, splits, regions)
        return self.cross_attn_ffn(source, target, height, width, splits, regions)


class FeatureTransformer(nn.Module):
    """Both frames' features attend to themselves and to each other, layer by layer; the
    windows of every other layer are shifted."""

    def __init__(self, layers: int, dim: int, ffn_expansion: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TransformerBlock(dim, ffn_expansion, shifted=i % 2 == 1) for i in range(layers))

    def forward(self, feature0: Tensor, feature1: Tensor, splits: int) -> tuple[Tensor, Tensor]:
        b, c, h, w = feature0.shape
        # One window per side is plain full attention, with nothing to shift.
        regions = window_regions(h, w, splits, feature0.device) if splits > 1 else None
        # Both frames as one batch; each attends to the other, which is the batch swapped.
        source = torch.cat([feature0, feature1]).flatten(2).transpose(1, 2)
        for layer in self.layers:
            target = torch.cat(source.chunk(2)[::-1])
            source = layer(source, target, h, w, splits, regions)
        out0, out1 = source.transpose(1, 2).reshape(2 * b, c, h, w).chunk(2)
        return out0, out1


class FeatureFlowAttention(nn.Module):
    """Propagates flow by global self-attention on the (first frame's) features."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)

    def forward(self, feature: Tensor, flow: Tensor) -> Tensor:
        b, c, h, w = feature.shape
        query = self.q_proj(feature.flatten(2).transpose(1, 2))
        # As in the official code, the key projects the projected query (an equivalent
        # parametrisation that the checkpoints were trained with).
        key = self.k_proj(query)
        out = global_attention(query, key, flow.flatten(2).transpose(1, 2))
        return out.transpose(1, 2).reshape(b, 2, h, w)


def global_attention(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """softmax(query · keyᵀ / √C) · value for B×N×C queries and keys and B×N×D values,
    without the N×N matrix in memory: fused attention, with the value zero-padded to a
    width the fused kernels take (the query's width on the CPU, whose kernel needs it;
    a multiple of 8 elsewhere)."""
    width = value.shape[-1]
    target = query.shape[-1] if query.device.type == "cpu" else -(-width // VALUE_MULTIPLE) * VALUE_MULTIPLE
    padded = F.pad(value, (0, target - width)).to(query.dtype)
    out = F.scaled_dot_product_attention(query.unsqueeze(1), key.unsqueeze(1), padded.unsqueeze(1))
    return out.squeeze(1)[..., :width]
