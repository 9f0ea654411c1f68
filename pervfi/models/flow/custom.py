"""User flow estimators given as ``package.module:attribute``.

The attribute may be
  * a `FlowEstimator` instance, or a class / factory that returns one when called with
    the options (no positional arguments);
  * any object with ``estimate(img0, img1)`` (an `nn.Module` is moved with the model),
    or a class / factory returning one;
  * a plain function ``f(img0, img1) -> flow``.
Images are RGB in [0, 1], B×3×H×W tensors; the flow is B×2×H×W in pixels (x then y),
img0→img1. The module must be importable (installed, or on PYTHONPATH).
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from pervfi.core.errors import PerVFIError

from .base import FlowEstimator, check_pair


class CustomEstimatorError(PerVFIError):
    """A user flow estimator that cannot be loaded or returns the wrong thing."""


class CallableFlow(FlowEstimator):
    """Adapts a function or an object with `estimate` to the FlowEstimator contract."""

    def __init__(self, name: str, estimate: Callable[[Tensor, Tensor], Tensor], owner: Any = None) -> None:
        super().__init__()
        self.name = name
        self._estimate = estimate
        # A module behind the callable moves with this one (.to(device), .eval()).
        self.wrapped = owner if isinstance(owner, nn.Module) else None

    def estimate(self, img0: Tensor, img1: Tensor) -> Tensor:
        check_pair(img0, img1)
        flow = self._estimate(img0, img1)
        expected = (img0.shape[0], 2, *img0.shape[-2:])
        if not isinstance(flow, Tensor) or tuple(flow.shape) != expected:
            got = tuple(flow.shape) if isinstance(flow, Tensor) else type(flow).__name__
            raise CustomEstimatorError(f"custom flow estimator {self.name!r} returned {got}; expected a tensor {expected}")
        return flow.to(device=img0.device).float()


def load_custom_estimator(spec: str, **options: Any) -> FlowEstimator:
    """Import ``package.module:attribute`` and make a FlowEstimator of it."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CustomEstimatorError(f"custom flow estimator {spec!r} must be given as package.module:attribute")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # any failure while importing user code is the user's to fix
        raise CustomEstimatorError(
            f"cannot import module {module_name!r} of custom flow estimator {spec!r}: {type(error).__name__}: {error}"
        ) from error
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise CustomEstimatorError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if _is_flow_function(target):
        if options:
            raise CustomEstimatorError(f"custom flow function {spec!r} takes no options, got {sorted(options)}")
        return CallableFlow(spec, target)
    if inspect.isclass(target) or (callable(target) and not hasattr(target, "estimate")):  # class or factory
        target = target(**options)
    if isinstance(target, FlowEstimator):
        return target
    if hasattr(target, "estimate") and callable(target.estimate):
        return CallableFlow(spec, target.estimate, owner=target)
    raise CustomEstimatorError(
        f"custom flow estimator {spec!r} is neither a flow function f(img0, img1) nor an object with estimate()"
    )


def _is_flow_function(target: Any) -> bool:
    """A plain function (not a class) taking exactly two required positional arguments."""
    if inspect.isclass(target) or not callable(target) or hasattr(target, "estimate"):
        return False
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.default is p.empty]
    return len(positional) == 2
