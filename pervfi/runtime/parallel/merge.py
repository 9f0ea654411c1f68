"""Joining a sequence's finished segments into its final outputs, without re-encoding.

The segments' videos are concatenated with ffmpeg's concat demuxer as stream copies, then
the source's audio is muxed in (as a one-device run does); their PNG frames, already
numbered as in the whole output, are linked into the final ``frames`` folder. Everything
is built under hidden names and renamed at the end; the job folder is then removed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

from pervfi.core.errors import OutputError
from pervfi.media.audio import mux_audio
from pervfi.media.ffmpeg import executable as ffmpeg_executable
from pervfi.media.sources import Sequence
from pervfi.media.writers import OutputPaths, check_frame_folder

from ..sequence import Report, Settings, keeps_audio, keeps_frame_times, timeline_for
from .jobs import Segment, check_made_alike, segment_counts

# ffmpeg muxer names by container (the formats `--ext` offers that can be stream-copied)
CONCAT_MUXERS = {"mp4": "mp4", "mkv": "matroska", "mov": "mov", "webm": "webm"}


def join_sequence(sequence: Sequence, segments: list[Segment], save: Path, method: str,
                  settings: Settings) -> Report:
    """The final video (and montage, PNG frames) of `sequence` from its done segments (refused
    when they were made with different precisions or device kinds)."""
    check_made_alike(segments)
    sequence = segments[0].sequence  # with the frame times of the plan
    ext = settings.encoding.ext
    final = OutputPaths.of(save, sequence.name, method, ext)
    parts = [OutputPaths.of(segment.folder, sequence.name, method, ext) for segment in segments]
    videos = [(final.video, [part.video for part in parts])]
    if settings.montage:
        videos.append((final.montage, [part.montage for part in parts]))
    audio = keeps_audio(sequence, settings)
    durations = segment_durations(sequence, settings, segments)
    for target, pieces in videos:
        joined = target.with_name(f".{target.name}.joined.partial")
        try:
            concat_videos(pieces, joined, ext, durations)
            if audio:
                mux_audio(joined, sequence.path, target)
            else:
                os.replace(joined, target)
        finally:
            joined.unlink(missing_ok=True)
    if settings.png:
        link_frames([part.frames for part in parts], final.frames)
    counts = [segment_counts(segment) for segment in segments]
    report = Report(video=final.video, frames_written=sum(c["frames_written"] for c in counts),
                    scene_cuts=sum(c["scene_cuts"] for c in counts), duplicates=sum(c["duplicates"] for c in counts),
                    montage=final.montage if settings.montage else None,
                    frames=final.frames if settings.png else None,
                    variable_rate=sequence.times is not None and sequence.times.variable)
    shutil.rmtree(segments[0].job, ignore_errors=True)
    return report


def segment_durations(sequence: Sequence, settings: Settings, segments: list[Segment]) -> list[Fraction] | None:
    """How long each segment's video lasts when its frames keep their own times (×N of a
    variable-rate video): from its first frame's time to the next segment's. None otherwise
    (constant-rate parts follow one another by their frame counts)."""
    if not keeps_frame_times(sequence, settings):
        return None
    timeline = timeline_for(sequence, settings)
    return [timeline.source_time(segment.span.stop) - timeline.source_time(segment.span.start)
            for segment in segments[:-1]]


def concat_videos(parts: list[Path], output: Path, ext: str, durations: list[Fraction] | None = None) -> None:
    """Stream-copy `parts` one after another into `output` (container `ext`); `durations`: where
    each part but the last ends, when not where its last frame does."""
    listing = output.with_name(f"{output.name}.txt")
    lines = [f"file '{_quoted(part.resolve())}'\n" for part in parts]
    for number, duration in enumerate(durations or []):
        lines[number] += f"duration {float(duration):.6f}\n"
    listing.write_text("".join(lines))
    command = [ffmpeg_executable(), "-hide_banner", "-v", "error", "-y", "-f", "concat", "-safe", "0",
               "-i", str(listing), "-map", "0:v:0", "-c", "copy"]
    if ext in ("mp4", "mov"):
        command += ["-movflags", "+faststart"]
    try:
        result = subprocess.run([*command, "-f", CONCAT_MUXERS[ext], str(output)], capture_output=True, text=True,
                                errors="replace")
    finally:
        listing.unlink(missing_ok=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise OutputError(f"cannot join the segments into {output}: {lines[-1] if lines else 'ffmpeg failed'}")


def link_frames(folders: list[Path], final: Path) -> None:
    """Hard-link (or copy) the PNG files of `folders` into a fresh folder renamed to `final`."""
    partial = final.with_name(f".{final.name}.joined.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        for folder in folders:
            for path in sorted(folder.iterdir()):
                try:
                    os.link(path, partial / path.name)
                except OSError:
                    shutil.copy2(path, partial / path.name)
        check_frame_folder(final)  # an earlier run's frames may be replaced, a user's files never
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
    except OSError as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise OutputError(f"cannot write {final}: {err.strerror or err}") from None


def _quoted(path: Path) -> str:
    """A path inside single quotes of ffmpeg's concat list."""
    return str(path).replace("'", "'\\''")
