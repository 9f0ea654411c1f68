"""Long films split into shards: frames decoded by all shards together, and each shard's time
against the same frames as a clip of their own.

    python benchmarks/bench_long_film.py [--frames 20000] [--segments 40] [--size 48 64] [--gop 48]
                                         [--method dis+splat] [--decode-only] [--smoke]

A generated clip (ffmpeg's test pattern, H.264 ultrafast, a keyframe every `--gop` frames) is
cut into `--segments` segments and run as as many shards (``--shard i/N``, one segment each,
one after another in this process, then ``--merge``), as a job array would. Decoded frames are
counted by the reader (`pervfi.media.video.DecodeCount`): those of the plan (made once, by the
first shard) and those of all shards together, against the clip's length (goals: the clip once
for the plan; at most 1.1 × the clip for the shards). Each shard's wall time is set against
the same command on its segment's frames cut into a clip of their own, run right after it so
that both meet the same load (the ratio is the cost of reaching a segment inside a long film). `--decode-only`: each shard does what the tool does
before the model (finds the clip, its job and the plan, then reads its segment's frames), so
the decoding is measured at full length in seconds; the counts are the tool's. `--smoke`: 120
frames in 3 segments.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.timing import benchmark_parser, parse_benchmark_args  # noqa: E402
from pervfi.cli import main as cli  # noqa: E402
from pervfi.media.ffmpeg import executable  # noqa: E402
from pervfi.media.sources import discover  # noqa: E402
from pervfi.media.video import DecodeCount  # noqa: E402
from pervfi.runtime.parallel import jobs  # noqa: E402
from pervfi.runtime.sequence import Settings  # noqa: E402


def make_clip(path: Path, frames: int, height: int, width: int, gop: int, first: int = 0) -> Path:
    """`frames` frames of ffmpeg's moving test pattern from frame `first` on, 25 fps, H.264."""
    pattern = f"testsrc2=size={width}x{height}:rate=25"
    trim = ["-vf", f"trim=start_frame={first}:end_frame={first + frames},setpts=PTS-STARTPTS"]
    subprocess.run([executable(), "-v", "error", "-y", "-f", "lavfi", "-i", pattern, *trim, "-frames:v", str(frames),
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", str(gop), "-pix_fmt", "yuv420p", str(path)],
                   check=True)
    return path


def timed_run(arguments: list[str]) -> tuple[float, int]:
    """The tool in this process: its wall time and the frames it decoded."""
    decoded, started = DecodeCount.frames, time.perf_counter()
    status = cli(arguments)
    if status != 0:
        raise SystemExit(f"the command failed ({status}): {' '.join(arguments)}")
    return time.perf_counter() - started, DecodeCount.frames - decoded


def read_shard(clip: Path, save: Path, length: int, index: int) -> tuple[float, int]:
    """What a shard does but the model: discover the clip, find its job and plan, read its segment."""
    decoded, started = DecodeCount.frames, time.perf_counter()
    settings = Settings()
    sequence = discover(clip)[0]
    model = {"method": "none", "precision": None}
    job = jobs.job_folder(save, sequence, jobs.job_key(sequence, settings, model, length, "cpu"))
    segment = jobs.plan_segments(sequence, settings, job, length)[index]
    for _ in segment.sequence.frames(segment.span.start, segment.span.stop):
        pass
    return time.perf_counter() - started, DecodeCount.frames - decoded


def read_clip(clip: Path) -> float:
    """What a one-process run does but the model: discover the clip and read every frame."""
    started = time.perf_counter()
    for _ in discover(clip)[0].with_times().frames():
        pass
    return time.perf_counter() - started


def main() -> None:
    parser = benchmark_parser(__doc__, size=(48, 64), runs=1)
    parser.add_argument("--frames", type=int, default=20000, help="frames of the clip (20000)")
    parser.add_argument("--segments", type=int, default=40, help="segments, run as as many shards (40)")
    parser.add_argument("--gop", type=int, default=48, help="keyframe interval of the clip (48)")
    parser.add_argument("--method", default="dis+splat")
    parser.add_argument("--decode-only", action="store_true", help="shards without the model (see above)")
    args = parse_benchmark_args(parser)
    if args.smoke:
        args.frames, args.segments, args.gop = 120, 3, 12
    height, width = args.size
    length = -(-args.frames // args.segments)
    work = "decoding only" if args.decode_only else f"{args.method}, {args.threads} thread(s)"
    print(f"{args.frames} frames of {height}×{width} (H.264 ultrafast, keyframe every {args.gop}), "
          f"{args.segments} segments of {length} as {args.segments} shards, {work}")

    plan_decoded = []
    real_scan = jobs.scan

    def counted_scan(*scan_args):
        before = DecodeCount.frames
        found = real_scan(*scan_args)
        plan_decoded.append(DecodeCount.frames - before)
        return found

    jobs.scan = counted_scan
    with tempfile.TemporaryDirectory(prefix="pervfi-long-film-") as scratch:
        folder = Path(scratch)
        begun = time.perf_counter()
        clip = make_clip(folder / "film.mp4", args.frames, height, width, args.gop)
        print(f"  clip made ({time.perf_counter() - begun:.0f} s)", file=sys.stderr)
        common = ["-m", args.method, "-data", str(clip), "--quiet", "--ckpt-dir", str(folder / "ckpt")]
        split = [*common, "-s", str(folder / "split"), "--segment-frames", str(length)]
        shards, own = [], []
        for index in range(args.segments):  # each shard, then its frames as a clip of their own (same load)
            if args.decode_only:
                shards.append(read_shard(clip, folder / "split", length, index))
            else:
                shards.append(timed_run([*split, "--shard", f"{index}/{args.segments}"]))
            plan_file = next((folder / "split" / "film").glob(".parallel-*/plan.json"))
            start, stop = json.loads(plan_file.read_text())["spans"][index]
            count = (args.frames - 1 if stop is None else stop) - start + 1
            piece = make_clip(folder / f"piece{index}.mp4", count, height, width, args.gop, start)
            if args.decode_only:
                own.append(read_clip(piece))
            else:
                own.append(timed_run([*common[:2], "-data", str(piece), *common[4:], "-s",
                                      str(folder / f"own{index}")])[0])
        print(f"  shards and their own clips done ({time.perf_counter() - begun:.0f} s)", file=sys.stderr)
        merged = 0.0 if args.decode_only else timed_run([*split, "--merge"])[0]
    shard_decoded = sum(decoded for _, decoded in shards) - sum(plan_decoded)
    ratios = [seconds / alone for (seconds, _), alone in zip(shards, own)]
    print(f"plan: made {len(plan_decoded)} time(s), {sum(plan_decoded)} frames decoded "
          f"({sum(plan_decoded) / args.frames:.2f} × the clip; goal: once)")
    print(f"shards: {shard_decoded} frames decoded together ({shard_decoded / args.frames:.3f} × the clip; "
          "goal: ≤ 1.1)")
    print(f"shard wall time / own clip's: median {statistics.median(ratios):.2f}, "
          f"last {ratios[-1]:.2f}, worst {max(ratios[1:] or ratios):.2f} (the first shard also makes the plan: "
          f"{ratios[0]:.2f}); shard {statistics.median(s for s, _ in shards):.2f} s median, merge {merged:.1f} s")


if __name__ == "__main__":
    main()
