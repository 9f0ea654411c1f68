"""Where training triplets come from: Vimeo90K with precomputed flows, or the user's frames and videos.

A source lists its training and validation triplets and loads one at full size as a `Triplet`
(frames in [0, 1], flows in pixels). Vimeo90K follows the published layout
(``tri_trainlist.txt``, ``tri_testlist.txt``, ``sequences/<seq>/<clip>/im1..im3.png``) with the
flows of the reference's ``prepare_optical_flow.py`` under ``optical_flows/<method>/<seq>/<clip>/``
(``fflow.png``, ``bflow.png``; see `flow_files`). Frames and videos become triplets
(i, i+g, i+2g) for each gap g, the last part of each sequence held out for validation; their
flows are estimated on the fly by a registered estimator, once per frame pair, and stored in
the same KITTI files under a cache folder (the run's ``flows/<estimator>/``), so a resumed run
reads them back and sees exactly the flows the first one used.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pervfi.core.errors import InputError
from pervfi.media.frame_files import read_frame
from pervfi.media.sources import discover as discover_sequences
from pervfi.media.tensors import to_tensor

from .augment import Triplet
from .flow_files import read_flow, write_flow

FlowFunction = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]  # 1×3×H×W pair -> flows 0→1, 1→0
VIMEO_LISTS = {"train": "tri_trainlist.txt", "val": "tri_testlist.txt"}


def frame_tensor(frame: np.ndarray) -> Tensor:
    """H×W×3 uint8 → 3×H×W float32 in [0, 1] (one sample of a batch)."""
    return to_tensor(frame)[0]


def frame_pixels(frame: np.ndarray) -> Tensor:
    """H×W×3 uint8 → 3×H×W uint8 (the augmentation works on 8-bit images, as the reference's)."""
    return torch.from_numpy(np.require(frame, requirements=["C", "W"])).permute(2, 0, 1)


class VimeoTriplets:
    """Vimeo90K triplets (im1, im3 in, im2 the target) with flows precomputed by `methods`."""

    def __init__(self, root: Path, methods: Sequence[str]) -> None:
        if not root.is_dir():
            raise InputError(f"dataset root {root} does not exist or is not a folder")
        missing = [name for name in (*VIMEO_LISTS.values(), "sequences") if not (root / name).exists()]
        if missing:
            raise InputError(f"{root} is not a Vimeo90K triplet folder: {', '.join(missing)} missing "
                             f"(expected tri_trainlist.txt, tri_testlist.txt and sequences/)")
        for method in methods:
            if not (root / "optical_flows" / method).is_dir():
                raise InputError(f"no precomputed {method} flows in {root / 'optical_flows' / method}; run "
                                 f"`python -m pervfi.train.flows --root {root} --estimator {method}`")
        self.root, self.methods = root, list(methods)
        self.clips = {split: _read_list(root / name) for split, name in VIMEO_LISTS.items()}

    def split(self, name: str) -> list[str]:
        """The clips (``<seq>/<clip>``) of split "train" or "val"."""
        return self.clips[name]

    def load(self, clip: str, method: int = 0) -> Triplet:
        """The clip's frames and its flows by `methods[method]`."""
        folder = self.root / "sequences" / clip
        img0, gt, img1 = (frame_pixels(read_frame(folder / f"im{i}.png")) for i in (1, 2, 3))
        flows = self.root / "optical_flows" / self.methods[method] / clip
        flow01, flow10 = (torch.from_numpy(read_flow(flows / name)).permute(2, 0, 1) for name in ("fflow.png", "bflow.png"))
        for name, flow in (("fflow.png", flow01), ("bflow.png", flow10)):
            if flow.shape[-2:] != img0.shape[-2:]:
                raise InputError(f"flow file {flows / name} is {flow.shape[-1]}×{flow.shape[-2]} but the frames of "
                                 f"{folder} are {img0.shape[-1]}×{img0.shape[-2]}")
        return Triplet(img0, img1, gt, flow01.contiguous(), flow10.contiguous())


@dataclass(frozen=True)
class FrameTriplet:
    """Frames `indices` (first, middle, last) of sequence `sequence`."""

    sequence: int
    indices: tuple[int, int, int]


class FootageTriplets:
    """Triplets of the user's footage: frame folders (`kind` "frames") or videos ("videos")."""

    def __init__(self, root: Path, kind: str, gaps: Sequence[int], val_fraction: float,
                 flows: Callable[[], FlowFunction], estimator: str, cache: Path) -> None:
        """`flows` makes the flow function (loading the estimator) once the footage has been checked;
        every triplet's flows are then estimated into `cache` (those not there yet) before this
        returns, so loading only reads files, in any worker process, and the estimator is freed."""
        if not root.exists():
            raise InputError(f"dataset root {root} does not exist")
        sequences = discover_sequences(root)
        wrong = [s for s in sequences if s.is_video != (kind == "videos")]
        if wrong:
            other = "frames" if kind == "videos" else "videos"
            raise InputError(f"{wrong[0].path} is not a {'video' if kind == 'videos' else 'folder of frames'}: "
                             f"--dataset {kind} reads only {kind} (use --dataset {other} for {other})")
        if any(gap < 1 for gap in gaps) or not 0.0 <= val_fraction < 1.0:
            raise InputError(f"gaps must be positive and val_fraction in [0, 1), got {list(gaps)} and {val_fraction}")
        self.sequences, self.methods = sequences, [estimator]
        self._frames: dict[int, list[np.ndarray]] = {}
        self.cache = cache
        self.triplets: dict[str, list[FrameTriplet]] = {"train": [], "val": []}
        for number, sequence in enumerate(sequences):
            count = sequence.frame_count if not sequence.is_video else len(self._video_frames(number))
            cut = count - round(count * val_fraction)
            for gap in gaps:
                for first in range(count - 2 * gap):
                    triplet = FrameTriplet(number, (first, first + gap, first + 2 * gap))
                    if first + 2 * gap < cut:
                        self.triplets["train"].append(triplet)
                    elif first >= cut:
                        self.triplets["val"].append(triplet)
        if not self.triplets["train"]:
            raise InputError(f"{root} has no training triplets: each sequence needs at least "
                             f"{2 * min(gaps) + 1} frames before its held-out part")
        self._estimate_flows(flows)

    def split(self, name: str) -> list[FrameTriplet]:
        return self.triplets[name]

    def load(self, triplet: FrameTriplet, method: int = 0) -> Triplet:
        """The triplet's frames (uint8), with the flows between its outer frames from the cache."""
        img0, gt, img1 = (self._frame(triplet.sequence, index) for index in triplet.indices)
        flow01, flow10 = (torch.from_numpy(read_flow(path)).permute(2, 0, 1).contiguous()
                          for path in self._flow_files(triplet))
        return Triplet(img0, img1, gt, flow01, flow10)

    def _flow_files(self, triplet: FrameTriplet) -> tuple[Path, Path]:
        first, last = triplet.indices[0], triplet.indices[2]
        folder = self.cache / self.sequences[triplet.sequence].name / f"{first:06d}-{last:06d}"
        return folder / "fflow.png", folder / "bflow.png"

    def _estimate_flows(self, flows: Callable[[], FlowFunction]) -> None:
        """Estimate the flows of every triplet whose files are not in the cache yet."""
        todo = [t for t in dict.fromkeys(self.triplets["train"] + self.triplets["val"])
                if not all(path.is_file() for path in self._flow_files(t))]
        if not todo:
            return
        estimate = flows()
        for triplet in todo:
            img0, img1 = (frame_tensor(self._frame(triplet.sequence, index).permute(1, 2, 0).numpy())
                          for index in (triplet.indices[0], triplet.indices[2]))
            with torch.no_grad():
                estimated = estimate(img0[None], img1[None])
            for path, flow in zip(self._flow_files(triplet), estimated):
                write_flow(path, flow[0].permute(1, 2, 0).float().cpu().numpy())

    def _frame(self, sequence: int, index: int) -> Tensor:
        if self.sequences[sequence].is_video:
            return frame_pixels(self._video_frames(sequence)[index])
        return frame_pixels(read_frame(self.sequences[sequence].frame_files[index]))

    def _video_frames(self, sequence: int) -> list[np.ndarray]:
        """A video's frames, decoded once (fine-tuning sets are small)."""
        if sequence not in self._frames:
            self._frames[sequence] = list(self.sequences[sequence].frames())
        return self._frames[sequence]


def _read_list(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read {path}: {err}") from None
    clips = [line.strip() for line in lines if line.strip()]
    if not clips:
        raise InputError(f"{path} lists no clips")
    return clips
