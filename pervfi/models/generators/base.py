"""What PerVFI's two generators share: the conditioning path of asymmetric blending."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from pervfi.ops import Region

from .deformable_alignment import DeformableAlign
from .encoder import PYRAMID_CHANNELS
from .feature_pyramid import FeaturePyramid, PairFeatures
from .msfusion import MultiscaleFuse
from .soft_binary_masks import AttentionMerge, FrameWindow

# The generators need H and W divisible by 8 (three halvings in the pyramid and flow).
SIZE_MULTIPLE = 8


def check_inputs(img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor, time: float | None) -> None:
    """Raise ValueError with both values when the inputs do not fit the generators."""
    if img0.dim() != 4 or img0.shape[1] != 3 or img1.shape != img0.shape:
        raise ValueError(f"expected two B×3×H×W images of one shape, got {tuple(img0.shape)} and {tuple(img1.shape)}")
    batch, _, height, width = img0.shape
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise ValueError(f"expected H and W divisible by {SIZE_MULTIPLE}, got {height}×{width}")
    expected = (batch, 2, height, width)
    for name, flow in (("flow01", flow01), ("flow10", flow10)):
        if tuple(flow.shape) != expected:
            raise ValueError(f"expected {name} of shape {expected}, got {tuple(flow.shape)}")
    if time is not None and not 0.0 < time < 1.0:
        raise ValueError(f"expected time strictly between 0 and 1, got {time}")


class PerVFIGenerator(nn.Module):
    """Asymmetric blending (the paper's Sec. 3.2): the first frame's features are
    softmax-splatted to time t, the second frame's are aligned by deformable convolution
    guided by the flow t→1, soft-binary masks blend them, and an HRNet-style fusion turns
    the blend into three conditions (1/2, 1/4, 1/8) for the decoder of a subclass.

    Submodule names are those of the official checkpoints.
    """

    def __init__(self, dilate_size: int = 9) -> None:
        super().__init__()
        self.featurePyramid = FeaturePyramid()
        self.deformableAlign = DeformableAlign()
        self.attentionMerge = AttentionMerge(dilate_size=dilate_size)
        self.multiscaleFuse = MultiscaleFuse(PYRAMID_CHANNELS)

    def encode_pair(self, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor) -> PairFeatures:
        """The per-pair step (no time yet): both frames' pyramids and splatting metrics.

        Images are RGB in [0, 1]; the networks see them in [-1, 1].
        """
        check_inputs(img0, img1, flow01, flow10, None)
        return self.featurePyramid.encode(img0 * 2 - 1, img1 * 2 - 1, flow01, flow10)

    def _aligned(self, pair: PairFeatures, time: float | Tensor) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """Per level: the first frame's features splatted to `time`, the second's aligned
        to it, and the holes of the splat."""
        features, holes, flow_t1 = self.featurePyramid.at_time(pair, time)
        aligned = self.deformableAlign(features, holes, flow_t1)
        return [level[0] for level in features], aligned, holes

    def condition_at(self, pair: PairFeatures, time: float | Tensor, attentions: list[Tensor] | None = None,
                     mask_noise: list[Tensor] | None = None) -> tuple[list[Tensor], list[Tensor]]:
        """The per-time step up to the decoder: conditions (fine to coarse) and soft masks
        (coarse to fine). `time` is a number or a B×1×1×1 tensor, one time per pair row.
        `attentions` (from `attentions_from_sums`) replace the soft masks' channel attention;
        `mask_noise`: see `AttentionMerge` (training adds noise to the masks)."""
        warped0, aligned, holes = self._aligned(pair, time)
        blended, soft_masks = self.attentionMerge(warped0, aligned, holes, attentions, mask_noise)
        del warped0, aligned, holes  # freed before the fusion, the largest step
        return self.multiscaleFuse(blended), soft_masks

    def attention_sums(self, pair: PairFeatures, time: float, region: Region,
                       owned: tuple[tuple[int, int], tuple[int, int]]) -> list[Tensor]:
        """For tiles: what the soft masks' channel attention needs of the pixels of the
        window `region` that it `owns` (frame rows, frame columns), per level; the sums of
        windows that partition the frame add up to the whole frame's."""
        warped0, aligned, _ = self._aligned(pair, time)
        sums = []
        for level, (feature0, feature1) in enumerate(zip(warped0, aligned)):
            scale = 2**level
            window = FrameWindow(region.top // scale, region.left // scale, region.frame_height // scale,
                                 region.frame_width // scale, tuple(r // scale for r in owned[0]),
                                 tuple(c // scale for c in owned[1]))
            sums.append(self.attentionMerge.softbinary[str(level)].attention_sums(feature0, feature1, window))
        return sums

    def attentions_from_sums(self, sums: list[Tensor], height: int, width: int) -> list[Tensor]:
        """The soft masks' channel attention per level from a whole H×W frame's sums."""
        return [self.attentionMerge.softbinary[str(level)].attention(level_sums, (height >> level, width >> level))
                for level, level_sums in enumerate(sums)]

    def condition(self, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor, time: float,
                  attentions: list[Tensor] | None = None,
                  mask_noise: list[Tensor] | None = None) -> tuple[list[Tensor], list[Tensor]]:
        """Decoder conditions (fine to coarse) and the soft masks (coarse to fine)."""
        check_inputs(img0, img1, flow01, flow10, time)
        return self.condition_at(self.encode_pair(img0, img1, flow01, flow10), time, attentions, mask_noise)

    def decode(self, conds: list[Tensor], zs: list[Tensor] | None, rng: torch.Generator | None,
               region: Region | None) -> Tensor:
        """The frame in [-1, 1] space from the conditions; subclasses implement it."""
        raise NotImplementedError

    def interpolate_at(self, pair: PairFeatures, time: float | Tensor, zs: list[Tensor] | None = None,
                       rng: torch.Generator | None = None, region: Region | None = None,
                       attentions: list[Tensor] | None = None) -> Tensor:
        """The per-time step: the frame at `time` (a number or one time per row, B×1×1×1)
        from `encode_pair`'s result, before clamping, B×3×H×W in [0, 1] space; `region`
        and `attentions` as for `interpolate`."""
        conds, _ = self.condition_at(pair, time, attentions)
        return (self.decode(conds, zs, rng, region) + 1) / 2

    def interpolate(self, img0: Tensor, img1: Tensor, flow01: Tensor, flow10: Tensor, time: float = 0.5,
                    zs: list[Tensor] | None = None, return_soft_masks: bool = False,
                    rng: torch.Generator | None = None, region: Region | None = None,
                    attentions: list[Tensor] | None = None) -> Tensor | tuple[Tensor, list[Tensor]]:
        """The frame at `time` before clamping, B×3×H×W in [0, 1] space.

        Images RGB in [0, 1], flows in pixels (x then y), H and W multiples of 8.
        With `return_soft_masks`, also the three soft-binary masks, coarse to fine.
        `region` says where the inputs lie in a larger frame when it is processed in tiles,
        and `attentions` are then the whole frame's channel attention.
        """
        conds, soft_masks = self.condition(img0, img1, flow01, flow10, time, attentions)
        pred = (self.decode(conds, zs, rng, region) + 1) / 2
        return (pred, soft_masks) if return_soft_masks else pred
