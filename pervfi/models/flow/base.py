"""The contract every flow estimator follows."""
from __future__ import annotations

from torch import Tensor, nn


class FlowEstimator(nn.Module):
    """Optical flow between two frames.

    Images are RGB in [0, 1], B×3×H×W, any H×W; the flow is B×2×H×W in pixels, x then y,
    and maps img0 to img1: ``img0[y, x]`` corresponds to ``img1[y + v, x + u]``.
    Subclasses implement `estimate`; those that can share work between the two
    directions override `estimate_bidirectional`. `traceable` says whether torch.compile can
    trace it (PyTorch operations only); the Interpolator compiles only those that are.
    """

    traceable = True

    def estimate(self, img0: Tensor, img1: Tensor) -> Tensor:
        raise NotImplementedError

    def estimate_bidirectional(self, img0: Tensor, img1: Tensor) -> tuple[Tensor, Tensor]:
        """Flows img0→img1 and img1→img0."""
        return self.estimate(img0, img1), self.estimate(img1, img0)

    def forward(self, img0: Tensor, img1: Tensor) -> Tensor:
        return self.estimate(img0, img1)


def check_pair(img0: Tensor, img1: Tensor) -> None:
    """Raise ValueError unless both images are B×3×H×W of the same shape."""
    if img0.dim() != 4 or img0.shape[1] != 3 or img0.shape != img1.shape:
        raise ValueError(
            f"expected two B×3×H×W images of the same shape, got {tuple(img0.shape)} and {tuple(img1.shape)}"
        )
