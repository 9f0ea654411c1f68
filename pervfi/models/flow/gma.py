"""GMA: RAFT with global motion aggregation (Jiang et al., ICCV 2021), as PerVFI runs it.

The context features attend to each other (one head); each update aggregates the motion
features of similar-looking pixels across the frame and feeds them to the GRU.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .alternate_correlation import FULL_VOLUME_BYTES
from .gmflow_transformer import global_attention
from .raft import RAFT
from .raft_parts import UpdateBlock

# The official configuration: one head of 128 channels, positions up to 160 (1/8 scale).
MAX_POSITIONS = 160


class RelativePositionEmbedding(nn.Module):
    """Relative position embeddings of the official checkpoint. The Sintel configuration
    PerVFI uses attends by content only, so they are stored but not used."""

    def __init__(self, max_positions: int, dim: int) -> None:
        super().__init__()
        self.rel_height = nn.Embedding(2 * max_positions - 1, dim)
        self.rel_width = nn.Embedding(2 * max_positions - 1, dim)
        deltas = torch.arange(max_positions).view(1, -1) - torch.arange(max_positions).view(-1, 1)
        self.register_buffer("rel_ind", deltas + max_positions - 1)


class ContextAttention(nn.Module):
    """Softmax attention of every context pixel over all others (B×(H·W)×(H·W) weights)."""

    def __init__(self, dim: int, max_positions: int = MAX_POSITIONS) -> None:
        super().__init__()
        self.scale = dim**-0.5
        self.to_qk = nn.Conv2d(dim, dim * 2, 1, bias=False)
        self.pos_emb = RelativePositionEmbedding(max_positions, dim)

    def forward(self, context: Tensor) -> Attention:
        query, key = (x.transpose(1, 2) for x in self.to_qk(context).flatten(2).chunk(2, dim=1))  # B×N×D each
        batch, positions, _ = query.shape
        if 4 * batch * positions**2 > FULL_VOLUME_BYTES:  # as RAFT's volume: too large to keep
            return Attention(None, query, key)
        return Attention(torch.matmul(self.scale * query, key.transpose(1, 2)).softmax(dim=-1), query, key)


class Attention(NamedTuple):
    """The context attention, applied to values each iteration: its weights when they
    were small enough to keep (`weights`), else recomputed from `query` and `key` by fused
    attention, block by block, never holding the N×N matrix."""

    weights: Tensor | None
    query: Tensor
    key: Tensor

    def apply(self, values: Tensor) -> Tensor:
        """softmax(query·keyᵀ/√D)·values for B×N×D values."""
        if self.weights is not None:
            return torch.matmul(self.weights, values)
        return global_attention(self.query, self.key, values)


class MotionAggregator(nn.Module):
    """Adds gamma × (attention-weighted sum of projected motion features) to the motion."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.to_v = nn.Conv2d(dim, dim, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, attention: Attention, motion: Tensor) -> Tensor:
        batch, channels, height, width = motion.shape
        values = self.to_v(motion).flatten(2).transpose(1, 2)  # B×N×D
        aggregated = attention.apply(values).transpose(1, 2).reshape(batch, channels, height, width)
        return motion + self.gamma * aggregated


class GMAUpdateBlock(UpdateBlock):
    """RAFT's update with the globally aggregated motion as an extra GRU input."""

    def __init__(self, corr_channels: int, hidden_dim: int, context_dim: int) -> None:
        super().__init__(corr_channels, hidden_dim, context_dim, small=False)
        self.aggregator = MotionAggregator(self.encoder.out_channels)

    def extra_input_channels(self, hidden_dim: int) -> int:
        return hidden_dim

    def gru_input(self, context: Tensor, motion: Tensor, attention: Attention | None) -> Tensor:
        return torch.cat([context, motion, self.aggregator(attention, motion)], 1)


class GMA(RAFT):
    """RAFT (large) + global motion aggregation; 20 iterations in PerVFI."""

    def __init__(self, iters: int = 20, mixed_precision: bool = False) -> None:
        super().__init__(small=False, iters=iters, mixed_precision=mixed_precision)
        self.att = ContextAttention(self.context_dim)

    def _update_block(self, corr_channels: int, small: bool) -> nn.Module:
        return GMAUpdateBlock(corr_channels, self.hidden_dim, self.context_dim)

    def context_attention(self, context: Tensor) -> Attention:
        return self.att(context)


def build_gma(iters: int = 20, mixed_precision: bool = False) -> GMA:
    """GMA with PerVFI's inference settings (architecture only)."""
    return GMA(iters=iters, mixed_precision=mixed_precision)
