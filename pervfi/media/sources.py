"""What to interpolate: the sequences found under the input path.

The input may be a folder of sequence folders (the reference layout), a single folder of
frames, a video file, or a folder of video files (mixed with sequence folders if need
be). Everything is checked before any model runs: unreadable headers, single frames and
frames of different sizes are reported with the culprit named.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from pervfi.core.errors import InputError

from .frame_files import IMAGE_SUFFIXES, image_size, list_frames, natural_key, read_image
from .timeline import FrameTimes
from .video import VIDEO_SUFFIXES, is_video, probe_video, read_video, scan_times

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sequence:
    """One input sequence: a folder of frames or a video file."""

    name: str
    path: Path
    width: int
    height: int
    frame_files: tuple[Path, ...] = ()  # empty for a video
    fps: Fraction | None = None  # the video's rate; None for frames
    frame_count: int = 0  # exact for frames, announced by the header for a video
    times: FrameTimes | None = None  # a video's frame times, once scanned (`with_times`)

    @property
    def is_video(self) -> bool:
        return not self.frame_files

    def with_times(self) -> Sequence:
        """This sequence with its video's frame times (read from the packets, nothing decoded)."""
        if not self.is_video or self.times is not None:
            return self
        times = scan_times(self.path, self.fps)
        return dataclasses.replace(self, times=times, frame_count=times.count)

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """The frames `start`..`stop` (inclusive; None: to the end) as H×W×3 uint8 RGB, in
        order; conversions are warned about once each. A video with its times reaches `start`
        by seeking."""
        end = None if stop is None else stop + 1
        if self.is_video:
            yield from read_video(self.path, start, stop, self.times)
            return
        warned: set[str] = set()
        for path in self.frame_files[start:end]:
            frame, note = read_image(path)
            if note and note not in warned:
                warned.add(note)
                log.warning("%s: %s frames (first: %s) converted to 8-bit RGB", self.name, note, path.name)
            yield frame


def discover(*roots: Path) -> list[Sequence]:
    """The sequences under each of `roots`, in order, checked; InputError naming the culprit
    otherwise (also when two would write to the same output folder)."""
    sequences = [sequence for root in roots for sequence in _discover_one(Path(root))]
    _check_unique_names(sequences)
    return sequences


def _discover_one(root: Path) -> list[Sequence]:
    """The sequences of one input: a video, a folder of frames, or a folder of both kinds."""
    if not root.exists():
        raise InputError(f"input {root} does not exist")
    if root.is_file():
        if not is_video(root):
            raise InputError(
                f"input {root} is neither a folder of frames nor a video ({', '.join(VIDEO_SUFFIXES)})"
            )
        return [video_sequence(root)]
    files = list_frames(root)
    if files:
        _warn_ignored_videos(root)
        return [frame_sequence(root, root.resolve().name, files)]
    entries = sorted(root.iterdir(), key=lambda p: natural_key(p.name))
    sequences = []
    for entry in entries:
        if entry.is_dir() and (files := list_frames(entry)):
            _warn_ignored_videos(entry)
            sequences.append(frame_sequence(entry, entry.name, files))
        elif is_video(entry):
            sequences.append(video_sequence(entry))
    if not sequences:
        raise InputError(
            f"no frames or videos found in {root} (frames: {', '.join(IMAGE_SUFFIXES)}; "
            f"videos: {', '.join(VIDEO_SUFFIXES)})"
        )
    return sequences


def _warn_ignored_videos(folder: Path) -> None:
    """A folder of frames is one sequence: say so when it also holds videos, which are not read."""
    videos = sorted((entry.name for entry in folder.iterdir() if is_video(entry)), key=natural_key)
    if videos:
        log.warning("%s: %s ignored: a folder with frames is read as one sequence of frames; give %s with -data",
                    folder, ", ".join(videos), "the video" if len(videos) == 1 else "the videos")


def _check_unique_names(sequences: list[Sequence]) -> None:
    """Each sequence gets the output folder of its name, so two of one name would collide."""
    seen: dict[str, Path] = {}
    for sequence in sequences:
        if sequence.name in seen:
            raise InputError(f"{seen[sequence.name]} and {sequence.path} would both write to the output "
                             f"folder {sequence.name!r}; rename one")
        seen[sequence.name] = sequence.path


def frame_sequence(folder: Path, name: str, files: list[Path] | None = None) -> Sequence:
    """A folder of frames (`files`, its frame files in order, when already listed), all of
    the first frame's size."""
    files = list_frames(folder) if files is None else files
    if len(files) < 2:
        raise InputError(f"{folder} holds {len(files)} frame; interpolation needs at least two")
    width, height = image_size(files[0])
    for path in files[1:]:
        size = image_size(path)
        if size != (width, height):
            raise InputError(
                f"frame {path} is {size[0]}×{size[1]} but {files[0].name} is {width}×{height}; "
                "all frames of a sequence must have one size"
            )
    return Sequence(name=name, path=folder, width=width, height=height, frame_files=tuple(files),
                    frame_count=len(files))


def video_sequence(path: Path) -> Sequence:
    info = probe_video(path)
    return Sequence(name=path.stem, path=path, width=info.width, height=info.height, fps=info.fps,
                    frame_count=info.expected_frames)
