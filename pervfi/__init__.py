"""PerVFI: perception-oriented video frame interpolation via asymmetric blending (CVPR 2024).

Public API:
    build_generator(name)        "v00" | "vb" | "splat" -> generator module
    build_flow_estimator(name)   "raft" | "raft_small" | "gma" | "gmflow" | "dis" | "farneback"
                                 | "package.module:callable" -> flow estimator module
    Interpolator                 flow estimator + generator, any frame size
"""
from .errors import PerVFIError
from .flow import build_flow_estimator
from .generators import build_generator

__all__ = ["Interpolator", "PerVFIError", "build_flow_estimator", "build_generator"]


def __getattr__(name: str):
    # The interpolator pulls in the I/O stack; import it only when asked for.
    if name == "Interpolator":
        from .interpolator import Interpolator

        return Interpolator
    raise AttributeError(f"module 'pervfi' has no attribute {name!r}")
