"""Animated GIF output (`--ext gif`): frame count, timing, palette quality, temporary names, errors."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pervfi.core.errors import OutputError
from pervfi.media.gif import encode_gif
from pervfi.media.sources import frame_sequence, video_sequence
from pervfi.media.writers import Encoding
from pervfi.runtime.interpolator import Interpolator
from pervfi.runtime.sequence import SequenceRun, Settings
from tests.doubles import Blend, CountingZeroFlow
from tests.media import moving_frames, read_png, write_frames, write_video
from tests.test_audio import source as video_with_audio
from tests.test_cli_usage import cli
from tests.test_infer_video import error_lines, run_cli


def gif_frames(path: Path) -> tuple[list[np.ndarray], list[int], dict]:
    """A GIF's frames as RGB, each frame's delay in milliseconds, and its header info."""
    with Image.open(path) as image:
        info = dict(image.info)
        frames, delays = [], []
        for index in range(image.n_frames):
            image.seek(index)
            frames.append(np.asarray(image.convert("RGB")))
            delays.append(image.info["duration"])
    return frames, delays, info


def _interpolate(folder: Path, out: Path, encoding: Encoding, fps: Fraction) -> Path:
    sequence = frame_sequence(folder, "seq")
    settings = Settings(fps=fps, png=True, montage=True, encoding=encoding, quiet=True)
    return SequenceRun(Interpolator(CountingZeroFlow(), Blend(), device="cpu"), sequence, out, "m", settings).run().video


def test_gif_has_every_frame_at_the_output_rate_with_a_close_palette(tmp_path):
    write_frames(tmp_path / "seq", moving_frames(5, 36, 50))
    video = _interpolate(tmp_path / "seq", tmp_path / "out", Encoding(ext="gif"), Fraction(10))
    assert video == tmp_path / "out" / "seq" / "seq-m.gif"
    frames, delays, info = gif_frames(video)
    exact = [read_png(p) for p in sorted((tmp_path / "out" / "seq" / "seq-m-frames").iterdir())]
    assert len(frames) == len(exact) == 9
    assert delays == [100] * 9 and info["loop"] == 0  # 10 frames/s, looping
    for frame, truth in zip(frames, exact):
        assert frame.shape == truth.shape
        error = np.abs(frame.astype(int) - truth.astype(int))
        assert error.mean() < 4 and np.percentile(error, 99) < 24  # one optimised 256-colour palette, dithered
    montage, _, _ = gif_frames(video.with_name("seq-m-montage.gif"))
    assert len(montage) == 9 and montage[0].shape == (36, 100, 3)
    assert sorted(p.name for p in video.parent.iterdir()) == ["seq-m-frames", "seq-m-montage.gif", "seq-m.gif"]


def test_gif_keeps_a_fractional_rate_over_the_clip(tmp_path):
    """24 frames/s cannot be one delay in hundredths of a second; the delays add up to the duration."""
    source = write_video(tmp_path / "clip.mp4", moving_frames(24, 24, 32), fps=24)
    encode_gif(source, tmp_path / "clip.gif")
    frames, delays, _ = gif_frames(tmp_path / "clip.gif")
    assert len(frames) == 24
    assert set(delays) <= {40, 50} and abs(sum(delays) - 1000) <= 10


def test_max_side_shrinks_keeping_the_aspect_ratio(tmp_path):
    source = write_video(tmp_path / "clip.mp4", moving_frames(3, 60, 90), fps=10)
    encode_gif(source, tmp_path / "small.gif", max_side=45)
    frames, _, _ = gif_frames(tmp_path / "small.gif")
    assert frames[0].shape == (30, 45, 3)


def test_cli_writes_a_gif_and_warns_when_viewers_cannot_keep_up(capsys, tmp_path):
    write_frames(tmp_path / "seq", moving_frames(3, 24, 32))
    status, lines = cli(capsys, "-m", "dis+splat", "-data", tmp_path / "seq", "-s", tmp_path / "out", "-fps", "60",
                        "--ext", "gif")
    assert status == 0, lines
    frames, _, _ = gif_frames(tmp_path / "out" / "seq" / "seq-dis+splat.gif")
    assert len(frames) == 5
    assert any("a GIF shows at most 50 frames/s" in line for line in lines), lines
    assert not list((tmp_path / "out").rglob("*partial*")) and not list((tmp_path / "out").rglob("*.mkv"))


def test_a_video_with_sound_gives_a_silent_gif(tmp_path):
    clip = video_with_audio(tmp_path, "tone.mp4", 2, ["-c:a", "aac"])  # 48 frames at 24 frames/s
    settings = Settings(encoding=Encoding(ext="gif"), quiet=True)
    report = SequenceRun(Interpolator(CountingZeroFlow(), Blend(), device="cpu"), video_sequence(clip), tmp_path,
                         "m", settings).run()
    frames, delays, _ = gif_frames(report.video)
    assert len(frames) == report.frames_written == 95 and abs(sum(delays) - 95 * 1000 / 48) <= 10


def test_a_gif_takes_no_other_codec(tmp_path):
    with pytest.raises(OutputError, match="gif encoder, not 'libx264'"):
        Encoding(ext="gif", codec="libx264")
    write_frames(tmp_path / "seq", moving_frames(2, 16, 16))
    result = run_cli("-m", "dis+splat", "-data", tmp_path / "seq", "-s", tmp_path / "out", "--ext", "gif",
                     "--codec", "libx264")
    assert result.returncode == 2 and error_lines(result)[-1].startswith("error: a GIF is encoded")


def test_failed_gif_encoding_leaves_nothing(tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(OutputError, match="cannot encode"):
        encode_gif(tmp_path / "broken.mp4", tmp_path / "broken.gif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]
