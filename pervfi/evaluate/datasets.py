"""Benchmark datasets in their published layouts, as lists of frame pairs to interpolate.

Two kinds:
- triplet datasets (Middlebury, Vimeo90K, UCF101, SNU-FILM, a folder of triplets): the
  middle frame of each triplet is predicted at t = 0.5 from its neighbours;
- video datasets (Xiph, DAVIS, Adobe240, a folder of frame sequences), the paper's
  protocol: of each sequence keep every `scale`-th frame, interpolate the dropped frames
  at t = k/scale between the kept ones, and score only the dropped frames.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pervfi.core.errors import InputError, UnknownNameError
from pervfi.media.frame_files import list_frames, natural_key, read_frame

log = logging.getLogger(__name__)

SCALES = (2, 4, 8)
SNU_FILM_SPLITS = ("easy", "medium", "hard", "extreme")


@dataclass(frozen=True)
class Target:
    """A ground-truth frame to predict: its sample id, its time between the pair, its file."""

    sample_id: str
    time: float
    path: Path


@dataclass(frozen=True)
class Item:
    """Two input frames and the ground-truth frames between them, in time order."""

    group: str  # the sequence (video datasets) or split (SNU-FILM); "" otherwise
    frame0: Path
    frame1: Path
    targets: tuple[Target, ...]


FrameTransform = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Dataset:
    """The items of one benchmark and how its frames are read.

    `video`: the video protocol; its summary averages each sequence, then the sequences
    (as the authors' benchmark does). `report_groups`: the table shows each group (split).
    """

    name: str
    items: list[Item]
    transform: FrameTransform | None = None
    video: bool = False
    report_groups: bool = False

    def read(self, path: Path) -> np.ndarray:
        """One frame, H×W×3 uint8 RGB, after the dataset's resize or crop."""
        frame = read_frame(path)
        return self.transform(frame) if self.transform else frame


def resize_to(width: int, height: int) -> FrameTransform:
    """Area-resample frames to width×height (the benchmark's 2K and 1080p versions)."""

    def resize(frame: np.ndarray) -> np.ndarray:
        if frame.shape[:2] == (height, width):
            return frame
        return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)

    return resize


def center_crop(width: int, height: int) -> FrameTransform:
    """The centre width×height of each frame (Xiph-4K: 2048×1080 out of 4096×2160)."""

    def crop(frame: np.ndarray) -> np.ndarray:
        rows, cols = frame.shape[:2]
        if rows < height or cols < width:
            raise InputError(f"frame of {cols}×{rows} is smaller than the {width}×{height} crop")
        top, left = (rows - height) // 2, (cols - width) // 2
        return frame[top:top + height, left:left + width]

    return crop


# ----------------------------------------------------------------------------- triplets

def _triplet(sample_id: str, frame0: Path, gt: Path, frame1: Path, group: str = "") -> Item:
    return Item(group=group, frame0=frame0, frame1=frame1, targets=(Target(sample_id, 0.5, gt),))


def middlebury_items(root: Path) -> list[Item]:
    """other-data/NAME/frame10.png, frame11.png; other-gt-interp/NAME/frame10i11.png."""
    items = []
    for folder in _subfolders(root / "other-data"):
        gt = root / "other-gt-interp" / folder.name / "frame10i11.png"
        if gt.is_file():
            items.append(_triplet(folder.name, folder / "frame10.png", gt, folder / "frame11.png"))
    return items


def vimeo90k_items(root: Path) -> list[Item]:
    """tri_testlist.txt naming folders NNNNN/NNNN under sequences/ (or target/), each
    holding im1.png, im2.png (ground truth), im3.png."""
    listing = root / "tri_testlist.txt"
    if not listing.is_file():
        return []
    frames = next((root / name for name in ("sequences", "target") if (root / name).is_dir()), root / "sequences")
    items = []
    for name in listing.read_text().split():
        folder = frames / name
        items.append(_triplet(name, folder / "im1.png", folder / "im2.png", folder / "im3.png"))
    return items


def ucf101_items(root: Path) -> list[Item]:
    """One folder per sample holding frame_00.png, frame_01_gt.png, frame_02.png."""
    return [
        _triplet(folder.name, folder / "frame_00.png", folder / "frame_01_gt.png", folder / "frame_02.png")
        for folder in _subfolders(root)
        if (folder / "frame_01_gt.png").is_file()
    ]


def snu_film_items(root: Path) -> list[Item]:
    """test-{easy,medium,hard,extreme}.txt (in the root or eval_modes/), each line three
    frame paths, the middle one the ground truth. Paths are as published (prefixed with
    the authors' data folder); they are looked up under the root from their ``test/`` part."""
    items = []
    for split in SNU_FILM_SPLITS:
        listing = next((path for path in (root / f"test-{split}.txt", root / "eval_modes" / f"test-{split}.txt")
                        if path.is_file()), None)
        if listing is None:
            continue
        for line in listing.read_text().splitlines():
            if not line.strip():
                continue
            paths = line.split()
            if len(paths) != 3:
                raise InputError(f"{listing}: expected three frame paths per line, got {line!r}")
            frame0, gt, frame1 = (_resolve_listed(root, text, listing) for text in paths)
            sample_id = f"{split}/{gt.relative_to(root).as_posix()}"
            items.append(_triplet(sample_id, frame0, gt, frame1, group=split))
    return items


def _resolve_listed(root: Path, text: str, listing: Path) -> Path:
    parts = Path(text).parts
    candidates = [Path(text) if Path(text).is_absolute() else root / text]
    if "test" in parts:
        start = len(parts) - 1 - parts[::-1].index("test")
        candidates.append(root.joinpath(*parts[start:]))
    candidates.append(root.joinpath("test", *parts[-3:]))
    for path in candidates:
        if path.is_file():
            return path
    raise InputError(f"{listing}: frame {text} not found under {root}")


def folder_triplet_items(root: Path) -> list[Item]:
    """A folder of folders of three frames each (sorted by name); the middle one is the
    ground truth. Folders with another number of frames are skipped."""
    items = []
    for folder in _subfolders(root):
        frames = list_frames(folder)
        if len(frames) != 3:
            log.info("skipping %s: %d frames, not a triplet", folder, len(frames))
            continue
        items.append(_triplet(folder.name, *frames))
    return items


# ------------------------------------------------------------------------------ videos

def sequence_items(group: str, frames: list[Path], scale: int) -> list[Item]:
    """The video protocol for one sequence: keep frames 0, scale, 2·scale, …; each pair of
    kept frames gets the dropped ones between them as targets at t = k/scale.

    A sequence of a length other than 1 + n·scale is cut to its longest such prefix.
    """
    usable = (len(frames) - 1) // scale * scale + 1
    if usable < 1 + scale:
        log.warning("skipping sequence %s: %d frames, fewer than %d", group, len(frames), 1 + scale)
        return []
    if usable < len(frames):
        log.info("sequence %s: using the first %d of %d frames (1 + n·%d)", group, usable, len(frames), scale)
    items = []
    for start in range(0, usable - 1, scale):
        targets = tuple(
            Target(f"{group}/{frames[start + k].name}", k / scale, frames[start + k]) for k in range(1, scale)
        )
        items.append(Item(group=group, frame0=frames[start], frame1=frames[start + scale], targets=targets))
    return items


def sequence_folders(root: Path) -> list[tuple[str, list[Path]]]:
    """A folder of frames (one sequence), or a folder of such folders; frames in natural
    name order (frame_2 before frame_10)."""
    direct = list_frames(root)
    if direct:
        return [(root.name, direct)]
    return [(folder.name, frames) for folder in _subfolders(root) if (frames := list_frames(folder))]


def _the_root(root: Path) -> Path:
    return root


def _davis_folder(resolution: str) -> Callable[[Path], Path]:
    """DAVIS: the root of the release (JPEGImages/<resolution>/) or that folder itself."""
    return lambda root: root / "JPEGImages" / resolution if (root / "JPEGImages" / resolution).is_dir() else root


def _adobe240_folder(root: Path) -> Path:
    """Adobe240: the release's test_frames/ folder, or a folder of sequences."""
    return root / "test_frames" if (root / "test_frames").is_dir() else root


# ---------------------------------------------------------------------------- registry

@dataclass(frozen=True)
class DatasetSpec:
    """How to find one benchmark's samples under its root."""

    layout: str  # for messages
    triplets: Callable[[Path], list[Item]] | None = None
    video_folder: Callable[[Path], Path] | None = None  # video datasets: root → folder of sequences
    transform: FrameTransform | None = None
    report_groups: bool = False


DATASETS: dict[str, DatasetSpec] = {
    "middlebury": DatasetSpec("other-data/NAME/frame10.png, frame11.png and other-gt-interp/NAME/frame10i11.png",
                              triplets=middlebury_items),
    "vimeo90k": DatasetSpec("tri_testlist.txt and sequences/ (or target/) NNNNN/NNNN/im1.png, im2.png, im3.png",
                            triplets=vimeo90k_items),
    "ucf101": DatasetSpec("SAMPLE/frame_00.png, frame_01_gt.png, frame_02.png", triplets=ucf101_items),
    "snu-film": DatasetSpec("test-{easy,medium,hard,extreme}.txt (or eval_modes/) and test/...",
                            triplets=snu_film_items, report_groups=True),
    "triplets": DatasetSpec("SAMPLE/ folders of three frames, the middle one the ground truth",
                            triplets=folder_triplet_items),
    "xiph-2k": DatasetSpec("SEQUENCE/ folders of 4K frames (resized to 2048×1080)",
                           video_folder=_the_root, transform=resize_to(2048, 1080)),
    "xiph-4k": DatasetSpec("SEQUENCE/ folders of 4K frames (centre 2048×1080 crop)",
                           video_folder=_the_root, transform=center_crop(2048, 1080)),
    "davis": DatasetSpec("JPEGImages/480p/SEQUENCE/ frames (or SEQUENCE/ folders)", video_folder=_davis_folder("480p")),
    "davis-1080p": DatasetSpec("JPEGImages/Full-Resolution/SEQUENCE/ frames (resized to 1920×1080)",
                               video_folder=_davis_folder("Full-Resolution"), transform=resize_to(1920, 1080)),
    "adobe240": DatasetSpec("test_frames/SEQUENCE/ frames (or SEQUENCE/ folders)", video_folder=_adobe240_folder),
    "sequence": DatasetSpec("a folder of frames, or a folder of such folders", video_folder=_the_root),
}


def load_dataset(name: str, root: str | Path, scale: int = 2) -> Dataset:
    """The items of dataset `name` under `root`; `scale` (2, 4 or 8) for video datasets."""
    spec = DATASETS.get(name.lower())
    if spec is None:
        raise UnknownNameError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    if scale not in SCALES:
        raise InputError(f"--scale must be one of {', '.join(map(str, SCALES))}, got {scale}")
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset root {root} is not a folder")
    if spec.triplets is not None:
        if scale != 2:
            raise InputError(f"{name} is a triplet dataset (one middle frame); --scale {scale} applies to videos only")
        items = spec.triplets(root)
    else:
        items = [item for group, frames in sequence_folders(spec.video_folder(root))
                 for item in sequence_items(group, frames, scale)]
    if not items:
        raise InputError(f"no {name} samples found in {root}; expected {spec.layout}")
    _check_items(items, name)
    return Dataset(name=name.lower(), items=items, transform=spec.transform, video=spec.video_folder is not None,
                   report_groups=spec.report_groups)


def _subfolders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted((path for path in folder.iterdir() if path.is_dir()), key=lambda path: natural_key(path.name))


def _check_items(items: list[Item], name: str) -> None:
    """Every frame exists and every sample id is unique, before any work starts."""
    seen: set[str] = set()
    for item in items:
        for path in (item.frame0, item.frame1, *(target.path for target in item.targets)):
            if not path.is_file():
                raise InputError(f"{name}: frame {path} is missing")
        for target in item.targets:
            if target.sample_id in seen:
                raise InputError(f"{name}: two samples share the id {target.sample_id!r}")
            seen.add(target.sample_id)
