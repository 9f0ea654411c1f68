"""Variable-frame-rate video (issue 26): output times come from each source frame's own time,
so the duration, every source frame, the audio and the progress total stay right; videos made
here by ffmpeg, with audio."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pervfi.cli import main
from pervfi.media.audio import stream_duration
from pervfi.media.frame_files import list_frames
from pervfi.media.sources import video_sequence
from pervfi.runtime.sequence import Settings, output_frame_count
from tests.media import frame_times, moving_frames, read_png, write_vfr_video

METHOD = "dis+splat"
# The issue's clip: 10 frames in 0.75 s, intervals from 33 to 160 ms.
ISSUE_TIMES = [0, 40, 80, 200, 240, 400, 433, 500, 600, 700]
ISSUE_END = 750


def _run(capsys, clip: Path, out: Path, *args: str) -> tuple[Path, list[Path], str]:
    status = main(["-m", METHOD, "-data", str(clip), "-s", str(out), "--png", "--scene-cut", "off", *args])
    err = capsys.readouterr().err
    assert status == 0, err
    video = out / clip.stem / f"{clip.stem}-{METHOD}.mp4"
    return video, list_frames(out / clip.stem / f"{clip.stem}-{METHOD}-frames"), err


def _decoded(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


@pytest.fixture(scope="module")
def issue_clip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("vfr")
    return write_vfr_video(folder / "phone.mp4", moving_frames(10, 48, 64, step=3), ISSUE_TIMES, ISSUE_END)


def test_times_are_read_and_the_clip_is_variable_rate(issue_clip):
    sequence = video_sequence(issue_clip).with_times()
    assert sequence.times.variable and sequence.frame_count == 10
    assert [sequence.times.time(k) for k in range(10)] == [Fraction(ms, 1000) for ms in ISSUE_TIMES]
    assert sequence.times.end() == Fraction(ISSUE_END, 1000)  # the last frame lasts to the container's end
    assert output_frame_count(sequence, Settings(scale=2)) == 19


def test_times_two_puts_each_new_frame_between_its_pair_at_its_real_time(capsys, tmp_path, issue_clip):
    video, pngs, err = _run(capsys, issue_clip, tmp_path / "out")
    assert len(pngs) == 19 and "19 frames" in err and "variable frame rate" in err
    expected = []
    for a, b in zip(ISSUE_TIMES, ISSUE_TIMES[1:]):
        expected += [a / 1000, (a + b) / 2000]
    expected.append(ISSUE_TIMES[-1] / 1000)
    np.testing.assert_allclose(frame_times(video), expected, atol=1e-4)
    # every source frame appears once, at its place: output 2k is source frame k
    sources = _decoded(issue_clip)
    frames = [read_png(path) for path in pngs]
    for index, source in enumerate(sources):
        matches = [number for number, frame in enumerate(frames) if np.array_equal(frame, source)]
        assert matches == [2 * index], (index, matches)
    # the duration is kept within one output frame; the audio is cut to the video, not halfway
    last_frame = (ISSUE_END - ISSUE_TIMES[-1]) / 2000
    duration = stream_duration(video, "video")
    assert abs(duration - ISSUE_END / 1000) <= last_frame + 1e-3
    assert abs(stream_duration(video, "audio") - duration) <= last_frame


def test_a_target_rate_samples_the_real_timeline(capsys, tmp_path, issue_clip):
    video, pngs, _ = _run(capsys, issue_clip, tmp_path / "out", "--target-fps", "24")
    assert len(pngs) == 18  # ceil(0.75 s × 24)
    assert abs(stream_duration(video, "video") - 0.75) <= 1 / 24
    assert abs(stream_duration(video, "audio") - stream_duration(video, "video")) <= 1 / 24
    # output frame m at m/24 s: those that fall on a source frame's time are that frame
    sources = dict(zip(ISSUE_TIMES, _decoded(issue_clip)))
    for number, path in enumerate(pngs):
        time_ms = Fraction(number * 1000, 24)
        if time_ms.denominator == 1 and int(time_ms) in sources:
            np.testing.assert_array_equal(read_png(path), sources[int(time_ms)])


def test_a_phone_clip_with_dropped_frames_does_not_drift(capsys, tmp_path):
    # 30 fps with frames 10 and 21 dropped: 30 frames over 32 frame intervals (1.067 s)
    kept = [k for k in range(32) if k not in (10, 21)]
    clip = write_vfr_video(tmp_path / "dropped.mp4", moving_frames(30, 48, 64),
                           [round(k * 1000 / 30) for k in kept], round(32 * 1000 / 30))
    video, pngs, err = _run(capsys, clip, tmp_path / "out")
    assert len(pngs) == 59 and "variable frame rate" in err
    times = frame_times(video)
    np.testing.assert_allclose(times[::2], [round(k * 1000 / 30) / 1000 for k in kept], atol=1e-4)
    assert abs(stream_duration(video, "video") - 32 / 30) <= 1 / 60 + 1e-3  # no drift: the end is in place
