"""Video-tool features: target rates, scene cuts, duplicates, audio, montage, large frames, flags."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pervfi.media.audio import has_audio, stream_duration
from pervfi.media.ffmpeg import run as run_ffmpeg
from pervfi.media.sources import frame_sequence
from pervfi.runtime.interpolator import Interpolator
from pervfi.runtime.sequence import SequenceRun, Settings
from tests.doubles import Blend, CountingZeroFlow
from tests.media import moving_frames, read_png, texture, video_frames, write_frames, write_video
from tests.test_cli_usage import cli
from tests.test_infer_video import error_lines, run_cli

METHOD = "dis+pervfi-vb"


def _run(folder: Path, out: Path, **settings) -> tuple[list[np.ndarray], CountingZeroFlow, object]:
    """Interpolate a frame folder in-process with zero flow and a blend generator; the PNG frames."""
    flow = CountingZeroFlow()
    options = {"quiet": True, "png": True, **settings}
    report = SequenceRun(Interpolator(flow, Blend(), device="cpu"), frame_sequence(folder, "seq"), out, "m",
                         Settings(**options)).run()
    frames = [read_png(p) for p in sorted((out / "seq" / "seq-m-frames").iterdir())]
    return frames, flow, report


def _blend(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """The blend of two frames as the pipeline computes it (in [0, 1], rounded to 8 bits)."""
    mixed = torch.lerp(torch.from_numpy(a).float().div(255), torch.from_numpy(b).float().div(255), t)
    return mixed.clamp(0, 1).mul(255).round().to(torch.uint8).numpy()


def _shapes(index: int) -> np.ndarray:
    """A second, unrelated scene: a disc moving over a smooth gradient."""
    ys, xs = np.mgrid[0:48, 0:64].astype(np.float32)
    image = np.stack([40 + 150 * ys / 48, 200 - 100 * xs / 64, 90 + 0 * xs], -1).astype(np.uint8)
    cv2.circle(image, (10 + 4 * index, 20), 9, (250, 240, 30), -1)
    return image


def _two_scenes(count: int = 4) -> list[np.ndarray]:
    return moving_frames(count, 48, 64, seed=1) + [_shapes(i) for i in range(count)]


def test_24_to_60_counts_times_and_reuses_coinciding_source_frames(tmp_path):
    frames = moving_frames(12, 32, 48)
    write_frames(tmp_path / "seq", frames)
    out, flow, report = _run(tmp_path / "seq", tmp_path / "out", target_fps=Fraction(60), input_fps=Fraction(24))
    assert len(out) == 30 and report.frames_written == 30  # 12 frames at 24 fps = 0.5 s = 30 frames at 60
    for m, frame in enumerate(out):
        time = Fraction(m, 60) * 24  # in source frames
        k = int(time)
        if time == k:
            np.testing.assert_array_equal(frame, frames[k])
        elif k + 1 < len(frames):
            np.testing.assert_array_equal(frame, _blend(frames[k], frames[k + 1], float(time - k)))
        else:  # after the last source frame: held
            np.testing.assert_array_equal(frame, frames[-1])
    assert flow.pairs == 11


def test_24_to_60_through_the_cli_on_a_video(capsys, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", moving_frames(24, 32, 48), fps=24)
    _, source = video_frames(clip)
    status, lines = cli(capsys, "-m", "dis+splat", "-data", clip, "-s", tmp_path / "out", "--target-fps", "60",
                        "--png")
    assert status == 0, lines
    meta, video = video_frames(tmp_path / "out" / "clip" / "clip-dis+splat.mp4")
    assert len(video) == 60 and meta["fps"] == 60
    pngs = sorted((tmp_path / "out" / "clip" / "clip-dis+splat-frames").iterdir())
    for m in range(0, 60, 5):  # 60 fps frame m falls on 24 fps frame 2m/5
        np.testing.assert_array_equal(read_png(pngs[m]), source[2 * m // 5])


@pytest.mark.parametrize("mode", ["repeat", "blend", "off"])
def test_scene_cuts_are_not_interpolated_across(tmp_path, mode):
    frames = _two_scenes()
    write_frames(tmp_path / "seq", frames)
    out, flow, report = _run(tmp_path / "seq", tmp_path / "out", scale=4, scene_cut=mode)
    assert len(out) == 29
    cut = out[12:16]  # the output between source frames 3 and 4, where the scene changes
    if mode == "repeat":
        assert report.scene_cuts == 1 and flow.pairs == 6
        assert all(np.array_equal(frame, frames[3]) for frame in cut)
    elif mode == "blend":
        assert report.scene_cuts == 1 and flow.pairs == 6
        for k, frame in enumerate(cut[1:], 1):
            np.testing.assert_array_equal(frame, _blend(frames[3], frames[4], k / 4))
    else:
        assert report.scene_cuts == 0 and flow.pairs == 7
    # Within each scene frames are interpolated as usual.
    np.testing.assert_array_equal(out[2], _blend(frames[0], frames[1], 0.5))


def test_cut_count_is_logged_by_the_cli(capsys, tmp_path):
    write_frames(tmp_path / "seq", _two_scenes(3) + moving_frames(3, 48, 64, seed=1))
    status, lines = cli(capsys, "-m", "dis+splat", "-data", tmp_path / "seq", "-s", tmp_path / "out")
    assert status == 0, lines
    assert "(2 scene cut(s))" in lines[-1], lines


def test_duplicates_are_replaced_by_frames_at_their_true_times(tmp_path):
    frames = moving_frames(7, 32, 48, step=3)
    shown = list(frames)
    shown[2] = frames[1].copy()  # a repeated frame, as telecine or anime would have
    shown[5] = frames[4].copy()
    write_frames(tmp_path / "seq", shown)
    out, flow, report = _run(tmp_path / "seq", tmp_path / "out", scale=2, dedup=True, scene_cut="off")
    assert report.duplicates == 2 and len(out) == 13  # the duration is kept
    np.testing.assert_array_equal(out[4], _blend(frames[1], frames[3], 0.5))  # source frame 2's time
    np.testing.assert_array_equal(out[3], _blend(frames[1], frames[3], 0.25))
    np.testing.assert_array_equal(out[10], _blend(frames[4], frames[6], 0.5))  # source frame 5's time
    np.testing.assert_array_equal(out[6], frames[3])
    assert flow.pairs == 4


def _clip_with_tone(path: Path, seconds: float = 1, fps: int = 24) -> Path:
    result = run_ffmpeg(["-y", "-v", "error", "-f", "lavfi", "-i", f"testsrc=size=64x48:rate={fps}",
                         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
                         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)])
    assert result.returncode == 0, result.stderr
    return path


@pytest.mark.parametrize("timing", [["-scale", "2"], ["--target-fps", "60"]])
def test_audio_is_kept_in_sync(capsys, tmp_path, timing):
    clip = _clip_with_tone(tmp_path / "tone.mp4")  # 1 s at 24 frames/s; the method does not matter here
    status, lines = cli(capsys, "-m", "dis+splat", "-data", clip, "-s", tmp_path / "out", *timing)
    assert status == 0, lines
    output = tmp_path / "out" / "tone" / "tone-dis+splat.mp4"
    meta, video = video_frames(output)
    assert has_audio(output)
    frame = 1 / meta["fps"]
    assert abs(stream_duration(output, "audio") - stream_duration(output, "video")) <= frame + 1e-3
    assert len(video) == (47 if timing[0] == "-scale" else 60)


def test_slow_motion_leaves_the_audio_out_with_a_warning_that_quiet_keeps(capsys, tmp_path):
    clip = _clip_with_tone(tmp_path / "tone.mp4")
    status, lines = cli(capsys, "-m", "dis+splat", "-data", clip, "-s", tmp_path / "out", "-fps", "24", "--quiet")
    assert status == 0, lines
    assert len(lines) == 1 and lines[0].startswith("warning: tone: audio left out: -fps 24"), lines  # no summary
    meta, video = video_frames(tmp_path / "out" / "tone" / "tone-dis+splat.mp4")
    assert not has_audio(tmp_path / "out" / "tone" / "tone-dis+splat.mp4")
    assert meta["fps"] == 24 and len(video) == 47  # twice as long: slow motion


def test_silent_video_stays_silent_and_montage_is_twice_as_wide(capsys, tmp_path):
    clip = write_video(tmp_path / "quiet.mp4", moving_frames(3, 32, 48), fps=12)
    status, lines = cli(capsys, "-m", "dis+splat", "-data", clip, "-s", tmp_path / "out", "--montage")
    assert status == 0, lines
    folder = tmp_path / "out" / "quiet"
    assert not has_audio(folder / "quiet-dis+splat.mp4")
    meta, montage = video_frames(folder / "quiet-dis+splat-montage.mp4")
    assert meta["size"] == (96, 32) and len(montage) == 5


def test_montage_shows_the_held_input_beside_the_output(tmp_path):
    frames = moving_frames(3, 32, 48)
    write_frames(tmp_path / "seq", frames)
    _run(tmp_path / "seq", tmp_path / "out", montage=True, scene_cut="off")
    flow = CountingZeroFlow()
    report = SequenceRun(Interpolator(flow, Blend(), device="cpu"), frame_sequence(tmp_path / "seq", "seq"),
                         tmp_path / "out", "m", Settings(quiet=True, montage=True,
                                                         encoding=_lossless())).run()
    _, montage = video_frames(report.video.with_name(report.video.stem + "-montage.mkv"))
    left, right = montage[1][:, :48], montage[1][:, 48:]
    assert np.abs(left.astype(int) - frames[0]).mean() < 2  # input held at the output rate
    assert np.abs(right.astype(int) - _blend(frames[0], frames[1], 0.5)).mean() < 2


def _lossless():
    from pervfi.media.writers import Encoding

    return Encoding(ext="mkv", codec="libx264rgb", crf=0, pix_fmt="rgb24")


def test_encoding_options_reach_the_file(capsys, tmp_path):
    write_frames(tmp_path / "seq", moving_frames(2, 32, 48))
    status, lines = cli(capsys, "-m", "dis+splat", "-data", tmp_path / "seq", "-s", tmp_path / "out", "--ext", "webm",
                        "--crf", "30")
    assert status == 0, lines
    meta, video = video_frames(tmp_path / "out" / "seq" / "seq-dis+splat.webm")
    assert meta["codec"] == "vp9" and len(video) == 3


def test_flow_scale_and_tile_flags_run(capsys, tmp_path, ckpt_dir):
    write_frames(tmp_path / "seq", [texture(96, 136, seed) for seed in range(2)])
    status, lines = cli(capsys, "-m", METHOD, "-data", tmp_path / "seq", "-s", tmp_path / "out", "--flow-scale", "0.5",
                        "--tile", "96", "--png", "--ckpt-dir", ckpt_dir)
    assert status == 0, lines
    assert read_png(tmp_path / "out" / "seq" / f"seq-{METHOD}-frames" / "00000001.png").shape == (96, 136, 3)


@pytest.mark.parametrize("flag", [
    ["--target-fps", "0"], ["--target-fps", "fast"], ["--input-fps", "-24"], ["--cut-threshold", "2"],
    ["--dup-threshold", "-1"], ["--flow-scale", "0"], ["--flow-scale", "1.5"], ["--tile", "30"], ["--tile", "100"],
    ["--max-memory", "lots"], ["--max-memory", "8GB", "--tile", "512"],
    ["--crf", "99"], ["--ext", "avi"], ["--codec", "nosuch"], ["--pix-fmt", "nosuch"], ["--scene-cut", "cut"],
    ["-scale", "3", "--target-fps", "60"], ["--target-fps", "60", "-fps", "30"], ["--target-fps", "60"],
])
def test_bad_flag_values_are_one_line_with_exit_2(tmp_path, flag):
    write_frames(tmp_path / "seq", moving_frames(2, 24, 32))
    result = run_cli("-data", tmp_path / "seq", "-s", tmp_path / "out", *flag)
    lines = error_lines(result)
    assert result.returncode == 2 and len(lines) == 1 and "error" in lines[0], result.stderr
    name = flag[-2] if flag[-2].startswith("-") else flag[0]
    assert name.lstrip("-").split("-")[0] in lines[0] or flag[-1] in lines[0], lines[0]
