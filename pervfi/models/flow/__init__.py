"""Flow estimators: RAFT, RAFT-small, GMA, GMFlow, classical DIS and Farneback, and user code."""
from __future__ import annotations

from typing import Any

from .. import registry
from .base import FlowEstimator


def build_flow_estimator(name: str, **options: Any) -> FlowEstimator:
    """Build a registered estimator (architecture only, no weights loaded) or a user one.

    `name` is a registered name (see `pervfi.models.registry.names("flow")`) or
    ``"package.module:callable"`` for a user estimator.
    """
    if ":" in name:
        from .custom import load_custom_estimator

        return load_custom_estimator(name, **options)
    return registry.get_entry(name, kind="flow").build(**options)


__all__ = ["FlowEstimator", "build_flow_estimator"]
