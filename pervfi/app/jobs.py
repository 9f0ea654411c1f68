"""One job of the demo: take the input (an example, a video, or images), check it against the
limits, run the library's streaming pipeline, and package what the page shows and offers:
the video, the input | output comparison, a GIF and the frames as a zip.

Nothing here knows about Gradio, so the same jobs run from tests or another front end.
"""
from __future__ import annotations

import logging
import os
import time
import zipfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from pervfi.core.errors import InputError, PerVFIError
from pervfi.media.frame_files import list_frames
from pervfi.media.gif import encode_gif
from pervfi.media.scenes import SCENE_CUT_MODES
from pervfi.media.sources import Sequence
from pervfi.media.sources import discover as discover_sequences
from pervfi.models import registry
from pervfi.models.method_names import parse_method
from pervfi.runtime.device import resolve_device
from pervfi.runtime.interpolator import Interpolator
from pervfi.runtime.sequence import SequenceRun, Settings
from pervfi.runtime.sequence import video_rate as output_video_rate

from .limits import Limits
from .methods import WEIGHT_FREE_METHOD

log = logging.getLogger("pervfi.app")

INPUT_KINDS = ("example", "video", "images")
SCALES = (2, 4, 8)
GIF_SIDE = 480  # the GIF is for sharing: its larger side is shrunk to this
IMAGES_NAME = "images"  # the sequence name (and file stem) of uploaded images


@dataclass(frozen=True)
class Request:
    """What the user asked for: the input and the controls of the page."""

    kind: str  # one of INPUT_KINDS
    example: str | None = None
    video: Path | None = None
    images: tuple[Path, ...] = ()
    method: str = WEIGHT_FREE_METHOD
    scale: int = 2
    target_fps: Fraction | None = None  # instead of `scale`: resample to this rate
    image_fps: Fraction = Fraction(5)  # the rate at which the images were taken
    scene_cut: str = "repeat"
    heat: float = 0.3
    seed: int | None = 0
    flow_scale: float = 1.0
    tile: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.kind not in INPUT_KINDS:
            problems.append(f"input kind {self.kind!r} is not one of {', '.join(INPUT_KINDS)}")
        if self.scale not in SCALES:
            problems.append(f"×{self.scale} is not one of {', '.join(f'×{s}' for s in SCALES)}")
        if self.target_fps is not None and self.target_fps <= 0:
            problems.append(f"the target frame rate must be positive, got {self.target_fps}")
        if self.image_fps <= 0:
            problems.append(f"the frame rate of the images must be positive, got {self.image_fps}")
        if self.scene_cut not in SCENE_CUT_MODES:
            problems.append(f"scene-cut handling {self.scene_cut!r} is not one of {', '.join(SCENE_CUT_MODES)}")
        if self.heat < 0:
            problems.append(f"the heat must not be negative, got {self.heat}")
        if not 0 < self.flow_scale <= 1:
            problems.append(f"the flow scale must lie in (0, 1], got {self.flow_scale}")
        if self.tile is not None and (self.tile < 64 or self.tile % 8):
            problems.append(f"tiles must be a multiple of 8 of at least 64 pixels, got {self.tile}")
        if problems:
            raise InputError("; ".join(problems))


@dataclass(frozen=True)
class Result:
    """What a job made, and how it went."""

    video: Path  # H.264 mp4 that plays in browsers
    montage: Path  # input (held) | output, side by side
    gif: Path
    frames_zip: Path
    frames: int
    rate: Fraction
    scene_cuts: int
    seconds: float  # wall time of the job

    @property
    def duration(self) -> float:
        return float(self.frames / self.rate)

    def summary(self) -> str:
        cuts = f", {self.scene_cuts} scene cut(s)" if self.scene_cuts else ""
        return (f"{self.frames} frames at {float(self.rate):.4g} frames/s ({self.duration:.2f} s){cuts}; "
                f"made in {self.seconds:.1f} s ({self.frames / max(self.seconds, 1e-9):.2f} frames/s)")


class Studio:
    """Runs jobs one at a time on one device, keeping the last model loaded for the next job."""

    def __init__(self, checkpoint_dir: str | Path, device: str, limits: Limits, examples: Path | None) -> None:
        self.checkpoint_dir = Path(checkpoint_dir)
        self.device = device
        self.limits = limits
        self.examples_dir = examples
        self._model: tuple[tuple, Interpolator] | None = None

    def examples(self) -> list[str]:
        """The bundled examples: the sequences under the examples folder, by name."""
        if self.examples_dir is None or not self.examples_dir.is_dir():
            return []
        return [sequence.name for sequence in discover_sequences(self.examples_dir)]

    def plan(self, request: Request, folder: Path) -> tuple[Sequence, Settings]:
        """The request's input sequence and pipeline settings, checked against the limits."""
        sequence = self._sequence(request, folder)
        settings = Settings(scale=request.scale, target_fps=request.target_fps,
                            input_fps=None if sequence.fps else request.image_fps, scene_cut=request.scene_cut,
                            png=True, montage=True, seed=request.seed)
        self.limits.check(sequence, settings)
        return sequence, settings

    def run(self, request: Request, folder: Path) -> Result:
        """Interpolate the request's input into `folder` (which the caller owns and removes)."""
        started = time.perf_counter()
        sequence, settings = self.plan(request, folder)
        interpolator = self._interpolator(request)
        log.info("%s on %s: %s, %d×%d", request.method, interpolator.device, sequence.name, sequence.width,
                 sequence.height)
        run = SequenceRun(interpolator, sequence, folder / "output", request.method, settings)
        report = run.run()
        gif = report.video.with_suffix(".gif")
        encode_gif(report.video, gif, max_side=GIF_SIDE)
        return Result(video=report.video, montage=run.montage_path, gif=gif,
                      frames_zip=_zip_frames(run.folder, report.video.with_name(f"{report.video.stem}-frames.zip")),
                      frames=report.frames_written, rate=output_video_rate(sequence, settings),
                      scene_cuts=report.scene_cuts, seconds=time.perf_counter() - started)

    def public_message(self, err: PerVFIError, request: Request | None, folder: Path) -> str:
        """The error's first line, with server paths replaced by the names the user knows."""
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        private = {f"{folder / 'input' / IMAGES_NAME}/": "", f"{folder}/": "", f"{self.checkpoint_dir}/": ""}
        if self.examples_dir is not None:
            private[f"{self.examples_dir}/"] = ""
        if request is not None:
            private.update({str(upload): upload.name for upload in (request.video, *request.images) if upload})
        for path, shown in sorted(private.items(), key=lambda item: -len(item[0])):
            message = message.replace(path, shown)
        return message

    def _sequence(self, request: Request, folder: Path) -> Sequence:
        """The one sequence of the request's input, checked by the library."""
        if request.kind == "example":
            names = self.examples()
            if request.example not in names:
                raise InputError(f"no example named {request.example!r}; choose one of {', '.join(names) or 'none'}")
            path = self.examples_dir / request.example
        elif request.kind == "video":
            if request.video is None:
                raise InputError("no video uploaded")
            path = request.video
        else:
            path = _gather_images(request.images, folder / "input" / IMAGES_NAME)
        (sequence,) = discover_sequences(path)
        return sequence

    def _interpolator(self, request: Request) -> Interpolator:
        """The request's model on the device, reused while the settings that shape it stay the same."""
        method = parse_method(request.method)
        options = {"heat": request.heat} if registry.get_entry(method.generator, "generator").accepts("heat") else {}
        device = resolve_device(self.device)  # per job: a Space's GPU exists only while a job runs
        key = (method, tuple(options.items()), request.flow_scale, request.tile, device)
        if self._model is None or self._model[0] != key:
            self._model = None  # free the old model before loading the next
            self._model = key, Interpolator.from_method(method.name, checkpoint_dir=str(self.checkpoint_dir),
                                                        device=device, generator_options=options,
                                                        flow_scale=request.flow_scale, tile=request.tile)
        return self._model[1]


def _gather_images(images: tuple[Path, ...], folder: Path) -> Path:
    """The uploaded images linked into one folder under their own names (their order is the
    names' natural order, as for any frame folder)."""
    if len(images) < 2:
        raise InputError(f"{'one image' if images else 'no image'} uploaded; interpolation needs at least two")
    names = [image.name for image in images]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"several images are named {', '.join(repeated)}; give each frame its own name")
    folder.mkdir(parents=True, exist_ok=True)
    for image in images:
        target = folder / image.name
        if not target.is_symlink():
            os.symlink(image.resolve(), target)
    frames = {path.name for path in list_frames(folder)}
    others = [image.name for image in images if image.name not in frames]
    if others:
        raise InputError(f"{', '.join(others)}: not an image file (png, jpg, bmp, tif or webp)")
    return folder


def _zip_frames(folder: Path, target: Path) -> Path:
    """The PNG frames written under `folder`, in a zip (stored: PNG is compressed already)."""
    frames = sorted(folder.rglob("*.png"))
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for frame in frames:
            archive.write(frame, f"{target.stem}/{frame.name}")
    return target
