"""``infer_video.py``: interpolate folders of frames and videos with any method.

Keeps the reference script's flags and defaults (-m, -data, -s, -scale, -fps) and adds
devices, seeds, PNG output and the video-tool features (target rates, scene cuts,
duplicates, large frames, montage, encoding). Problems the user can fix are reported in
one line on stderr with exit status 2; Ctrl-C stops cleanly with status 130, SIGTERM (kill,
timeout, docker stop) the same way with 143. The arguments, the inputs and the output
folder are checked before PyTorch and the models are imported, so ``--help`` and mistakes
are answered at once.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

# Only what parsing and checking need (no PyTorch); the models are imported in `interpolate`.
from pervfi.core.errors import OutputError, PerVFIError
from pervfi.media.ffmpeg import MUXERS as CONTAINERS
from pervfi.media.scenes import (
    DEFAULT_CUT_THRESHOLD,
    DEFAULT_DUPLICATE_THRESHOLD,
    SCENE_CUT_MODES,
    check_cut_threshold,
    check_duplicate_threshold,
)
from pervfi.media.sources import Sequence
from pervfi.media.sources import discover as discover_sequences
from pervfi.media.writers import Encoding, OutputPaths, check_frame_folder
from pervfi.models.method_names import parse_method
from pervfi.runtime.budget import parse_memory
from pervfi.runtime.console import (
    ArgumentParser,
    add_threads_option,
    configure_logging,
    program_name,
    run_command,
)
from pervfi.runtime.launch import command_started, launched

if TYPE_CHECKING:
    from pervfi.runtime.sequence import Report, Settings

log = logging.getLogger("pervfi")
MIN_TILE = 64
DEFAULT_INPUT = Path("input")


def _rate(text: str) -> Fraction:
    """A positive frame rate: 24, 59.94 or 60000/1001."""
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a frame rate (e.g. 24, 29.97 or 30000/1001)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"frame rate must be positive, got {text}")
    return value


def _bounded(kind: type, low: float | None = None, high: float | None = None, low_open: bool = False):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if low is not None and (value < low or (low_open and value == low)):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '≥'} {low}, got {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be ≤ {high}, got {text}")
        return value

    return parse


def _checked(check):
    """A float flag validated by `check` (which raises ValueError with the reason)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        try:
            return check(value)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return parse


def _tile(text: str) -> int:
    value = _bounded(int, MIN_TILE)(text)
    if value % 8:
        raise argparse.ArgumentTypeError(f"must be a multiple of 8, got {text}")
    return value


def _memory(text: str) -> int:
    try:
        return parse_memory(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog=program_name("infer_video.py"), description="Video frame interpolation with PerVFI (CVPR 2024).")
    parser.add_argument("-m", "--method", default="raft+pervfi",
                        help="FLOW+GENERATOR: FLOW raft, raft_small, gma, gmflow, dis, farneback or module:callable; "
                             "GENERATOR pervfi (v00), pervfi-vb or splat (default: %(default)s)")
    parser.add_argument("-data", "--dataroot", action="append", type=Path,
                        help="a folder of sequence folders, a folder of frames, a video, or a folder of videos; "
                             f"repeat it for several inputs (default: {DEFAULT_INPUT})")
    parser.add_argument("-s", "--save", default="output", type=Path, help="output folder (default: %(default)s)")
    timing = parser.add_mutually_exclusive_group()
    timing.add_argument("-scale", "--scale", type=_bounded(int, 2), default=2,
                        help="output scale× as many frames: scale−1 between each pair (default: %(default)s)")
    timing.add_argument("--target-fps", type=_rate, help="resample to this rate instead (e.g. 60 or 60000/1001)")
    parser.add_argument("-fps", "--fps", type=_rate,
                        help="output video rate with -scale (default: a video's rate × scale; 10 for frames)")
    parser.add_argument("--input-fps", type=_rate, help="the rate of frame folders (needed with --target-fps)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: %(default)s)")
    parser.add_argument("--seed", type=int, help="seed of v00's noise, for reproducible output")
    parser.add_argument("--heat", type=_bounded(float, 0.0), help="standard deviation of v00's noise (default 0.3)")
    parser.add_argument("--png", action="store_true", help="also write the frames as PNG files")
    parser.add_argument("--ckpt-dir", default="checkpoints", type=Path, help="checkpoint folder (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summaries, only warnings and errors")
    scenes = parser.add_argument_group("scene cuts and duplicates")
    scenes.add_argument("--scene-cut", choices=SCENE_CUT_MODES, default="repeat",
                        help="at a cut: hold the earlier frame (repeat), cross-fade (blend), or interpolate as "
                             "usual (off) (default: %(default)s)")
    scenes.add_argument("--cut-threshold", type=_checked(check_cut_threshold), default=DEFAULT_CUT_THRESHOLD,
                        help="scene-change score (0: same shot, 1: unrelated) above which a pair is a cut, "
                             "in (0, 1) (default: %(default)s)")
    scenes.add_argument("--dedup", action="store_true",
                        help="replace duplicate frames by frames interpolated at their times")
    scenes.add_argument("--dup-threshold", type=_checked(check_duplicate_threshold),
                        default=DEFAULT_DUPLICATE_THRESHOLD,
                        help="largest local grey-level difference (0-255) up to which a frame duplicates the "
                             "previous one; 0: exact copies only (default: %(default)s)")
    large = parser.add_argument_group("large frames")
    large.add_argument("--flow-scale", type=_bounded(float, 0.0, 1.0, low_open=True), default=1.0,
                       help="estimate flow at this fraction of the resolution, e.g. 0.5 for 4K (default: 1)")
    tiles = large.add_mutually_exclusive_group()
    tiles.add_argument("--tile", type=_tile, help="run the generator in overlapping tiles of this size (pixels)")
    tiles.add_argument("--max-memory", type=_memory, metavar="SIZE",
                       help="memory the run may take on the device, e.g. 8GB or 512MiB: the generator runs in "
                            "tiles sized to fit when a whole frame would not (default: what the device has free)")
    speed = parser.add_argument_group("speed")
    speed.add_argument("--precision", choices=("fp32", "bf16", "fp16"),
                       help="model arithmetic: fp32, bf16 or fp16 (default: fp32; bf16 on CUDA GPUs that have it)")
    speed.add_argument("--compile", action="store_true",
                       help="compile the models with torch.compile for the frame size (slow start, faster frames)")
    speed.add_argument("--batch", type=_bounded(int, 1), default=1,
                       help="frame pairs (and output frames) through the models at once (default: %(default)s)")
    add_threads_option(speed)
    output = parser.add_argument_group("output video")
    output.add_argument("--montage", action="store_true",
                        help="also write a side-by-side video: input (held) | output")
    output.add_argument("--ext", choices=sorted(CONTAINERS), default="mp4", help="container (default: %(default)s)")
    output.add_argument("--codec", help="ffmpeg video encoder (default: libx264; libvpx-vp9 for webm)")
    output.add_argument("--crf", type=_bounded(int, 0, 63), default=18,
                        help="constant quality, lower is better: 0-51 for libx264, 0-63 for VP9 (default: %(default)s)")
    output.add_argument("--pix-fmt", default="yuv420p", help="output pixel format (default: %(default)s)")
    many = parser.add_argument_group("many devices and machines (also under torchrun)")
    many.add_argument("--devices", help="one worker process per device: cuda:0,cuda:1, all (every GPU) or cpu,cpu")
    many.add_argument("--shard", metavar="I/N", help="a job-array task: write the I-th of N shares of the segments")
    many.add_argument("--merge", action="store_true", help="join the segments the shards wrote (and the audio)")
    many.add_argument("--segment-frames", type=_bounded(int, 2), default=500,
                      help="source frames per segment; scene cuts may end one earlier (default: %(default)s)")
    return parser


def _parallel(args: argparse.Namespace) -> bool:
    """Whether the run is split into segments: --devices, --shard, --merge or torchrun's ranks."""
    return args.devices is not None or args.shard is not None or args.merge or launched() is not None


def check_many(args: argparse.Namespace) -> None:
    """PerVFIError for --shard with --merge: a merge joins what every shard wrote."""
    if args.shard is not None and args.merge:
        raise PerVFIError("--merge joins the segments of every shard: run it without --shard")


def encoding_from(args: argparse.Namespace) -> Encoding:
    """The output encoding, checked (the container takes the codec, crf in the codec's range)."""
    if args.target_fps is not None and args.fps is not None and args.fps != args.target_fps:
        raise PerVFIError(f"-fps {args.fps} contradicts --target-fps {args.target_fps}; give one of them")
    return Encoding(ext=args.ext, codec=args.codec, crf=args.crf, pix_fmt=args.pix_fmt)


def check_output_outside_inputs(save: Path, roots: list[Path], sequences: list[Sequence]) -> None:
    """OutputError unless `save` and each sequence's ``<save>/<name>/`` lie outside every input
    folder: outputs written among the inputs would mix with them (and a later run would read
    them as input)."""
    inputs = [folder for folder in (*roots, *(sequence.path for sequence in sequences)) if folder.is_dir()]
    for target in (save, *(save / sequence.name for sequence in sequences)):
        for folder in inputs:
            if target.resolve() == folder.resolve() or folder.resolve() in target.resolve().parents:
                raise OutputError(f"output folder {target} lies inside the input {folder}; choose another -s")


def check_writable(folder: Path) -> bool:
    """OutputError naming `folder` unless files can be created in it; whether it was created."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"output folder {folder} is a file")
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise OutputError(f"cannot write to output folder {folder}: {err.strerror or err}") from None
    return created


def run(args: argparse.Namespace, started: float) -> None:
    """Check everything the user gave, then interpolate every sequence; `started`: when the
    command began (a time.time(); under torchrun, the launcher's start), for the summary's rates."""
    check_many(args)
    encoding = encoding_from(args)
    method = parse_method(args.method)
    roots = args.dataroot or [DEFAULT_INPUT]
    sequences = discover_sequences(*roots)
    if args.target_fps is not None:
        for sequence in sequences:
            if sequence.fps is None and args.input_fps is None:
                raise PerVFIError(f"--target-fps needs --input-fps for the frame folder {sequence.path}")
    check_output_outside_inputs(args.save, roots, sequences)
    if args.png:  # a frames folder holding a user's files is refused now, not after earlier sequences
        for sequence in sequences:
            check_frame_folder(OutputPaths.of(args.save, sequence.name, args.method, args.ext).frames)
    # Under torchrun a sibling rank may have made the folder a moment ago: made by this command too.
    fresh = launched() is not None and args.save.is_dir() and args.save.stat().st_mtime >= started
    created = check_writable(args.save) or fresh
    try:
        interpolate(args, method.generator, sequences, encoding, started)
    except BaseException:
        if created and not any(args.save.iterdir()):
            args.save.rmdir()  # nothing was finished: leave no empty output folder
        raise


def interpolate(args: argparse.Namespace, generator: str, sequences: list[Sequence], encoding: Encoding,
                started: float) -> None:
    """Load the models and run each sequence, one summary line each."""
    from pervfi.core.cpu_threads import use_threads
    from pervfi.models import registry
    from pervfi.runtime.device import resolve_device
    from pervfi.runtime.interpolator import Interpolator
    from pervfi.runtime.sequence import SequenceRun, Settings

    settings = Settings(
        scale=args.scale, target_fps=args.target_fps, fps=args.fps, input_fps=args.input_fps,
        scene_cut=args.scene_cut, cut_threshold=args.cut_threshold, dedup=args.dedup,
        duplicate_threshold=args.dup_threshold, png=args.png, montage=args.montage, encoding=encoding,
        seed=args.seed, quiet=args.quiet,
    )
    device = resolve_device(args.device)
    noisy = registry.get_entry(generator, "generator").accepts("heat")  # v00 draws noise; the others none
    for flag, value in (("--heat", args.heat), ("--seed", args.seed)):
        if value is not None and not noisy:
            log.warning("%s applies to the v00 generator (pervfi); %s draws no noise", flag, generator)
    options = {"heat": args.heat} if noisy and args.heat is not None else {}
    model = {"method": args.method, "checkpoint_dir": str(args.ckpt_dir), "generator_options": options,
             "flow_scale": args.flow_scale, "tile": args.tile, "max_memory": args.max_memory,
             "precision": args.precision, "compile": args.compile, "batch": args.batch}
    if _parallel(args):
        from pervfi.runtime.parallel import run_parallel

        if args.devices is None and not args.merge:  # this process interpolates: one rank or one shard
            use_threads(args.threads)
        joined = run_parallel(sequences, args.save, args.method, settings, model, args.devices, args.shard,
                              args.merge, args.segment_frames, args.device, args.threads)
        log_joined(joined, time.time() - started, settings, merged=args.merge)
        return
    threads = use_threads(args.threads)
    interpolator = Interpolator.from_method(**model, device=device)
    log.info("%s on %s (%s, %d CPU thread%s): %d sequence(s)", args.method, interpolator.device,
             interpolator.precision, threads, "s" if threads > 1 else "", len(sequences))
    begun_all = time.perf_counter()
    frames = 0
    for sequence in sequences:
        begun = time.perf_counter()
        report = SequenceRun(interpolator, sequence, args.save, args.method, settings).run()
        frames += report.frames_written
        log.info("%s: %s", sequence.name, summary(report, settings, pace(report.frames_written,
                                                                         time.perf_counter() - begun)))
    if len(sequences) > 1:
        log.info("all %d sequences: %s", len(sequences), pace(frames, time.perf_counter() - begun_all))


def log_joined(joined: list[tuple[Sequence, Report]], seconds: float, settings: Settings, merged: bool) -> None:
    """The summary of a split run, timed by the whole command's `seconds`. The segments of
    several sequences run side by side, so only their total has a rate; a merge only joins
    (each shard reported its own rate), so it gives its time and no rate."""

    def measured(frames: int) -> str:
        return f"{frames} frames joined in {seconds:.1f} s" if merged else pace(frames, seconds)

    if len(joined) == 1:
        (sequence, report), = joined
        log.info("%s: %s", sequence.name, summary(report, settings, measured(report.frames_written)))
        return
    for sequence, report in joined:
        log.info("%s: %s", sequence.name, summary(report, settings, f"{report.frames_written} frames"))
    if joined:
        log.info("all %d sequences: %s", len(joined), measured(sum(report.frames_written for _, report in joined)))


def pace(frames: int, seconds: float) -> str:
    """Frames, time and their rate, as "120 frames in 30.0 s (4.00 frames/s)"."""
    return f"{frames} frames in {seconds:.1f} s ({frames / max(seconds, 1e-9):.2f} frames/s)"


def summary(report: Report, settings: Settings, measured: str) -> str:
    """What one sequence gave: `measured` (its frames and pace), where each output is, what was found."""
    outputs = [f"-> {report.video}"]
    if report.montage is not None:
        outputs.append(f"montage {report.montage}")
    if report.frames is not None:
        outputs.append(f"PNG frames {report.frames}/")
    notes = []
    if settings.scene_cut != "off":
        notes.append(f"{report.scene_cuts} scene cut(s)")
    if settings.dedup:
        notes.append(f"{report.duplicates} duplicate(s) replaced")
    if report.variable_rate:
        notes.append("variable frame rate: the source's frame times kept")
    if report.replaced:
        notes.append(f"replaced an earlier run's {', '.join(path.name for path in report.replaced)}")
    text = f"{measured} {', '.join(outputs)}"
    return f"{text} ({'; '.join(notes)})" if notes else text


def main(argv: list[str] | None = None) -> int:
    started = command_started(fallback=time.time())
    args = build_parser().parse_args(argv)
    configure_logging(args.quiet)
    return run_command(lambda: run(args, started), stopped="unfinished outputs removed")


if __name__ == "__main__":
    sys.exit(main())
