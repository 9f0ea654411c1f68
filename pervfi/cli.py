"""``infer_video.py``: interpolate folders of frames and videos with any method.

Keeps the reference script's flags and defaults (-m, -data, -s, -scale, -fps) and adds
devices, seeds, PNG output and the video-tool features (target rates, scene cuts,
duplicates, large frames, montage, encoding). Problems the user can fix are reported in
one line on stderr with exit status 2; Ctrl-C stops cleanly with status 130.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

from . import (CONTAINERS, DEFAULT_CUT_THRESHOLD, DEFAULT_DUPLICATE_THRESHOLD, SCENE_CUT_MODES, Encoding,
               Interpolator, OutputError, PerVFIError, SequenceRun, Settings, check_cut_threshold,
               check_duplicate_threshold, discover_sequences, parse_method, registry, resolve_device,
               run_parallel, Report, Sequence)
from .console import EXIT_INTERRUPTED, EXIT_USAGE, ArgumentParser, configure_logging

log = logging.getLogger("pervfi")
MIN_TILE = 64


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


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="infer_video.py", description="Video frame interpolation with PerVFI (CVPR 2024).")
    parser.add_argument("-m", "--method", default="raft+pervfi",
                        help="FLOW+GENERATOR: FLOW raft, raft_small, gma, gmflow, dis, farneback or module:callable; "
                             "GENERATOR pervfi (v00), pervfi-vb or splat (default: %(default)s)")
    parser.add_argument("-data", "--dataroot", default="input", type=Path,
                        help="a folder of sequence folders, a folder of frames, a video, or a folder of videos "
                             "(default: %(default)s)")
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
    large.add_argument("--tile", type=_tile, help="run the generator in overlapping tiles of this size (pixels)")
    output = parser.add_argument_group("output video")
    output.add_argument("--montage", action="store_true",
                        help="also write a side-by-side video: input (held) | output")
    output.add_argument("--ext", choices=sorted(CONTAINERS), default="mp4", help="container (default: %(default)s)")
    output.add_argument("--codec", help="ffmpeg video encoder (default: libx264; libvpx-vp9 for webm)")
    output.add_argument("--crf", type=_bounded(int, 0, 63), default=18, help="constant quality (default: %(default)s)")
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
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    return args.devices is not None or args.shard is not None or args.merge or world > 1


def settings_from(args: argparse.Namespace) -> Settings:
    if args.target_fps is not None and args.fps is not None and args.fps != args.target_fps:
        raise PerVFIError(f"-fps {args.fps} contradicts --target-fps {args.target_fps}; give one of them")
    return Settings(
        scale=args.scale, target_fps=args.target_fps, fps=args.fps, input_fps=args.input_fps,
        scene_cut=args.scene_cut, cut_threshold=args.cut_threshold, dedup=args.dedup,
        duplicate_threshold=args.dup_threshold, png=args.png, montage=args.montage,
        encoding=Encoding(ext=args.ext, codec=args.codec, crf=args.crf, pix_fmt=args.pix_fmt),
        seed=args.seed, quiet=args.quiet,
    )


def check_writable(folder: Path) -> None:
    """OutputError naming `folder` unless files can be created in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise OutputError(f"cannot write to output folder {folder}: {err.strerror or err}") from None


def run(args: argparse.Namespace) -> None:
    settings = settings_from(args)
    method = parse_method(args.method)
    device = resolve_device(args.device)
    sequences = discover_sequences(args.dataroot)
    if settings.target_fps is not None:
        for sequence in sequences:
            if sequence.fps is None and settings.input_fps is None:
                raise PerVFIError(f"--target-fps needs --input-fps for the frame folder {sequence.path}")
    check_writable(args.save)
    generator_options = {}
    if args.heat is not None:
        if registry.get_entry(method.generator, "generator").accepts("heat"):
            generator_options["heat"] = args.heat
        else:
            log.warning("--heat applies to the v00 generator (pervfi); %s draws no noise", method.generator)
    model = {"method": method.name, "checkpoint_dir": str(args.ckpt_dir), "generator_options": generator_options,
             "flow_scale": args.flow_scale, "tile": args.tile}
    if _parallel(args):
        for sequence, report in run_parallel(sequences, args.save, args.method, settings, model, args.devices,
                                             args.shard, args.merge, args.segment_frames, args.device):
            _summarize(sequence, report, settings)
        return
    interpolator = Interpolator.from_method(**model, device=device)
    log.info("%s on %s: %d sequence(s)", args.method, interpolator.device, len(sequences))
    for sequence in sequences:
        _summarize(sequence, SequenceRun(interpolator, sequence, args.save, args.method, settings).run(), settings)


def _summarize(sequence: Sequence, report: Report, settings: Settings) -> None:
    """The summary line of one sequence."""
    extra = []
    if settings.scene_cut != "off":
        extra.append(f"{report.scene_cuts} scene cut(s)")
    if settings.dedup:
        extra.append(f"{report.duplicates} duplicate(s) replaced")
    log.info("%s: %d frames -> %s%s", sequence.name, report.frames_written, report.video,
             f" ({', '.join(extra)})" if extra else "")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.quiet)
    try:
        run(args)
    except PerVFIError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: unfinished outputs removed", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
