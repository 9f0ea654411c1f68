"""Audio detection, stream durations and muxing, on tiny videos made with the bundled ffmpeg."""
import re
import subprocess
from pathlib import Path

import imageio
import imageio_ffmpeg
import numpy as np
import pytest

from pervfi.core.errors import InputError, OutputError
from pervfi.media.audio import has_audio, mux_audio, stream_duration

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-v", "error", "-y", *args], check=True)


def audio_codec(path: Path) -> str:
    header = subprocess.run([FFMPEG, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    return re.search(r"Audio: (\w+)", header).group(1)


def source(folder: Path, name: str, seconds_audio: float, audio_codec_args: list[str]) -> Path:
    """2 s of a 24 fps test pattern with a 440 Hz tone of the given length."""
    path = folder / name
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=64x48:rate=24:duration=2",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds_audio}",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", *audio_codec_args, str(path),
    )
    return path


def silent_video(path: Path, fps: float, frames: int, codec: str = "libx264") -> Path:
    """A video-only file written with imageio, as the pipeline writes its output."""
    writer = imageio.get_writer(path, fps=fps, codec=codec, macro_block_size=1, ffmpeg_log_level="error")
    for i in range(frames):
        writer.append_data(np.full((48, 64, 3), (i * 7) % 256, np.uint8))
    writer.close()
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    return {
        "aac": source(folder, "aac.mp4", 2, ["-c:a", "aac"]),
        "aac_long": source(folder, "aac_long.mp4", 3, ["-c:a", "aac"]),
        "pcm_long": source(folder, "pcm_long.mkv", 3, ["-c:a", "pcm_s16le"]),
        "silent": silent_video(folder / "silent.mp4", 24, 48),
        "x2": silent_video(folder / "x2.mp4", 48, 96),
        "60": silent_video(folder / "60.mp4", 60, 120),
        "short": silent_video(folder / "short.mp4", 24, 47),
        # 1.75 s ends 0.97 of an AAC packet (1024 samples) past a packet start: a copy cut
        # there would overrun by 20.7 ms, more than a 60 fps frame
        "cut60": silent_video(folder / "cut60.mp4", 60, 105),
        "vp9_60": silent_video(folder / "vp9_60.webm", 60, 120, codec="libvpx-vp9"),
    }


def test_has_audio(media) -> None:
    assert has_audio(media["aac"]) and has_audio(media["pcm_long"])
    assert not has_audio(media["silent"]) and not has_audio(media["x2"])


def test_stream_durations(media) -> None:
    assert stream_duration(media["aac"], "video") == pytest.approx(2.0, abs=1e-6)
    assert stream_duration(media["aac"], "audio") == pytest.approx(2.0, abs=1e-3)
    assert stream_duration(media["aac_long"], "audio") == pytest.approx(3.0, abs=1e-3)
    assert stream_duration(media["short"], "video") == pytest.approx(47 / 24, abs=1e-3)
    assert stream_duration(media["60"], "video") == pytest.approx(2.0, abs=1e-3)
    with pytest.raises(InputError, match="silent.mp4"):
        stream_duration(media["silent"], "audio")
    with pytest.raises(ValueError, match="kind"):
        stream_duration(media["aac"], "subtitles")


CASES = [  # video, its rate, audio source, container, expected audio codec (copy or not)
    ("x2", 48, "aac", "mp4", "aac"),
    ("60", 60, "aac", "mp4", "aac"),
    ("short", 24, "aac", "mp4", "aac"),
    ("cut60", 60, "aac_long", "mp4", "aac"),  # a cut of AAC at 60 fps: re-encoded
    ("x2", 48, "aac_long", "mkv", "aac"),
    ("short", 24, "pcm_long", "mkv", "pcm_s16le"),  # mkv takes PCM as a copy, cut at a packet
    ("60", 60, "pcm_long", "mp4", "aac"),  # mp4 does not take PCM: re-encoded
    ("vp9_60", 60, "aac", "webm", "opus"),
    ("vp9_60", 60, "aac_long", "webm", "opus"),
]


@pytest.mark.parametrize("video, fps, audio, container, codec", CASES)
def test_mux_keeps_audio_within_one_frame(media, tmp_path, video, fps, audio, container, codec) -> None:
    output = tmp_path / f"out.{container}"
    mux_audio(media[video], media[audio], output)
    assert has_audio(output) and audio_codec(output) == codec
    video_seconds = stream_duration(media[video], "video")
    assert stream_duration(output, "video") == pytest.approx(video_seconds, abs=1e-3)
    audio_seconds = stream_duration(output, "audio")
    source_seconds = stream_duration(media[audio], "audio")
    # cut to the video, or whole when the source audio is shorter
    assert abs(audio_seconds - min(video_seconds, source_seconds)) <= 1 / fps
    assert sorted(p.name for p in tmp_path.iterdir()) == [output.name]


def test_silent_source_stays_silent(media, tmp_path) -> None:
    output = tmp_path / "out.mkv"
    mux_audio(media["x2"], media["silent"], output)
    assert not has_audio(output)
    assert stream_duration(output, "video") == pytest.approx(2.0, abs=1e-3)


def test_failing_ffmpeg_leaves_no_file(media, tmp_path) -> None:
    output = tmp_path / "out.webm"  # webm cannot hold the H.264 video
    with pytest.raises(OutputError, match=r"out\.webm.*\S") as error:
        mux_audio(media["x2"], media["aac"], output)
    assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []
    output.write_bytes(b"earlier file")  # an existing output is only replaced on success
    with pytest.raises(OutputError):
        mux_audio(media["x2"], media["aac"], output)
    assert output.read_bytes() == b"earlier file" and len(list(tmp_path.iterdir())) == 1


def test_bad_inputs_are_named(media, tmp_path) -> None:
    with pytest.raises(OutputError, match=r"out\.avi.*mp4, mkv, mov, webm"):
        mux_audio(media["x2"], media["aac"], tmp_path / "out.avi")
    missing = tmp_path / "missing.mp4"
    with pytest.raises(InputError, match="missing.mp4"):
        has_audio(missing)
    with pytest.raises(InputError, match="missing.mp4"):
        mux_audio(media["x2"], missing, tmp_path / "out.mp4")
    assert list(tmp_path.iterdir()) == []
