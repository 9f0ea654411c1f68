"""Generators: PerVFI v00 (normalizing-flow decoder), vb (multi-scale decoder), and splat."""
from __future__ import annotations

from typing import Any

from torch import nn

from .. import registry


def build_generator(name: str, **options: Any) -> nn.Module:
    """Build a registered generator (architecture only, no weights loaded).

    The module has ``interpolate(img0, img1, flow01, flow10, time=0.5, zs=None,
    return_soft_masks=False, generator=None)``.
    """
    return registry.get_entry(name, kind="generator").build(**options)


__all__ = ["build_generator"]
