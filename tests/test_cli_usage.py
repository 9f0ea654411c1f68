"""What a new user meets on the command line (issues 13 and 14): errors with their reason,
inputs never ignored without a word, outputs that do not collide or delete, stop signals,
truncated videos, the summary, and --help without PyTorch. Runs in-process with the
weight-free dis+splat unless a real process is the point."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from pervfi.cli import main
from pervfi.core.errors import OutputError
from pervfi.media.writers import Encoding, VideoWriter
from tests.media import moving_frames, read_png, video_frames, write_frames, write_video
from tests.test_scenes import smooth_then_grainy

ROOT = Path(__file__).resolve().parents[1]
METHOD = "dis+splat"


def cli(capsys, *args: str | Path) -> tuple[int, list[str]]:
    """main() with `args`; its exit status and its non-empty stderr lines (progress bars left out)."""
    status = main([str(arg) for arg in args])
    lines = [line.strip() for line in capsys.readouterr().err.replace("\r", "\n").splitlines()]
    return status, [line for line in lines if line and "frame/s]" not in line]


def one_error(status: int, lines: list[str]) -> str:
    """The one error line, which ends the output (after at most the line naming the device)."""
    assert status == 2 and lines and lines[-1].startswith("error: "), lines
    assert len(lines) == 1 or (len(lines) == 2 and lines[0].endswith("1 sequence(s)")), lines
    return lines[-1]


@pytest.fixture
def seq(tmp_path) -> Path:
    write_frames(tmp_path / "in" / "seq", moving_frames(3, 24, 32))
    return tmp_path / "in" / "seq"


# 13.2: ffmpeg's reason in the one error line; codec/container pairs checked before any work


def test_webm_with_libx264_is_refused_with_ffmpegs_reason_before_any_work(capsys, tmp_path, seq):
    line = one_error(*cli(capsys, "-m", METHOD, "-data", seq, "-s", tmp_path / "out", "--ext", "webm",
                          "--codec", "libx264"))
    assert "Only VP8 or VP9 or AV1" in line and "libx264" in line
    assert not (tmp_path / "out").exists()


def test_an_encoder_that_fails_reports_ffmpegs_reason():
    with pytest.raises(OutputError) as caught:  # sysfs refuses new files, even to root
        writer = VideoWriter(Path("/sys/pervfi-test.mp4"), 32, 24, Fraction(10), Encoding())
        writer.write(np.zeros((24, 32, 3), np.uint8))
        writer.finish()
    message = str(caught.value)
    assert "Permission denied" in message and "pervfi-test.mp4" in message and "\n" not in message


def test_an_unreadable_video_gives_ffmpegs_reason(capsys, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", moving_frames(6, 24, 32))  # its index (moov) comes last
    clip.write_bytes(clip.read_bytes()[:2000])
    line = one_error(*cli(capsys, "-m", METHOD, "-data", clip, "-s", tmp_path / "out"))
    assert line == f"error: cannot read video {clip}: moov atom not found"


@pytest.mark.parametrize("codec, crf, ok", [("libx264", 51, True), ("libx264", 52, False),
                                            ("libvpx-vp9", 63, True)])
def test_crf_range_follows_the_codec(capsys, tmp_path, seq, codec, crf, ok):
    ext = "webm" if codec == "libvpx-vp9" else "mp4"
    if ok:
        assert Encoding(ext=ext, codec=codec, crf=crf).crf == crf
        return
    line = one_error(*cli(capsys, "-m", METHOD, "-data", seq, "-s", tmp_path / "out", "--codec", codec,
                          "--crf", crf))
    assert "crf 52 is out of range for libx264: use 0..51" in line


# 13.5: a truncated video: what decodes is interpolated, with one warning giving the counts


def test_truncated_video_is_interpolated_with_one_warning(capsys, tmp_path):
    clip = tmp_path / "clip.mp4"
    writer = imageio_ffmpeg.write_frames(str(clip), (32, 24), fps=24, macro_block_size=1, pix_fmt_out="yuv444p",
                                         output_params=["-crf", "0", "-g", "1", "-movflags", "+faststart"],
                                         ffmpeg_log_level="error")
    writer.send(None)
    for frame in moving_frames(30, 24, 32):
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    data = clip.read_bytes()
    clip.write_bytes(data[:len(data) // 2])  # the header (in front) still announces 30 frames
    decoded = len(video_frames(clip)[1])
    assert 2 <= decoded < 27
    status, lines = cli(capsys, "-m", METHOD, "-data", clip, "-s", tmp_path / "out")
    assert status == 0, lines
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == 1 and f"{decoded} frames decode of the 30" in warnings[0], lines
    _, video = video_frames(tmp_path / "out" / "clip" / f"clip-{METHOD}.mp4")
    assert len(video) == 2 * decoded - 1


# 13.6: SIGTERM handled like Ctrl-C; nothing left behind, no empty folders


@pytest.mark.parametrize("signum, status, word", [(signal.SIGINT, 130, "interrupted"),
                                                  (signal.SIGTERM, 143, "terminated")])
def test_stop_signals_remove_every_unfinished_output(tmp_path, signum, status, word):
    write_frames(tmp_path / "seq", moving_frames(40, 120, 160))
    command = [sys.executable, "infer_video.py", "-m", METHOD, "-data", str(tmp_path / "seq"), "-s",
               str(tmp_path / "out"), "--png", "--montage"]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not list((tmp_path / "out").rglob("00000002.png")) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status, stderr
    assert word in stderr and "Traceback" not in stderr
    assert not (tmp_path / "out").exists(), list((tmp_path / "out").rglob("*"))  # no .partial, no empty folder


def test_failure_mid_run_leaves_no_empty_output_folder(capsys, tmp_path):
    paths = write_frames(tmp_path / "seq", moving_frames(4, 24, 32))
    paths[2].write_bytes(paths[2].read_bytes()[:60])  # the header is intact: the run starts, then fails
    (tmp_path / "out").mkdir()
    line = one_error(*cli(capsys, "-m", METHOD, "-data", tmp_path / "seq", "-s", tmp_path / "out", "--png"))
    assert paths[2].name in line
    assert list((tmp_path / "out").iterdir()) == []  # the folder given is kept, ours is gone


# 13.7: nothing ignored without a word


def test_several_inputs_are_all_interpolated(capsys, tmp_path):
    write_frames(tmp_path / "a", moving_frames(3, 24, 32))
    write_frames(tmp_path / "b", moving_frames(2, 24, 32, seed=1))
    status, lines = cli(capsys, "-m", METHOD, "-data", tmp_path / "a", "-data", tmp_path / "b", "-s", tmp_path / "out")
    assert status == 0, lines
    assert len(video_frames(tmp_path / "out" / "a" / f"a-{METHOD}.mp4")[1]) == 5
    assert len(video_frames(tmp_path / "out" / "b" / f"b-{METHOD}.mp4")[1]) == 3
    assert any(line.startswith("all 2 sequences: 8 frames in") for line in lines), lines


def test_a_video_inside_a_folder_of_frames_is_named_as_ignored(capsys, tmp_path, seq):
    (seq / "clip.mp4").write_bytes(b"")
    status, lines = cli(capsys, "-m", METHOD, "-data", seq, "-s", tmp_path / "out")
    assert status == 0, lines
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == 1 and "clip.mp4 ignored" in warnings[0] and "-data" in warnings[0]


def test_seed_with_a_method_that_draws_no_noise_is_warned_about(capsys, tmp_path, seq):
    status, lines = cli(capsys, "-m", METHOD, "-data", seq, "-s", tmp_path / "out", "--seed", "3", "--heat", "0.5")
    assert status == 0, lines
    warnings = [line for line in lines if line.startswith("warning:")]
    assert [w.split()[1] for w in warnings] == ["--heat", "--seed"] and all("draws no noise" in w for w in warnings)


# 13.8: outputs that neither collide nor surprise


def test_two_methods_into_one_folder_keep_their_own_frames(capsys, tmp_path, seq):
    for method, scale in ((METHOD, "2"), ("farneback+splat", "3")):
        status, lines = cli(capsys, "-m", method, "-data", seq, "-s", tmp_path / "out", "--png", "-scale", scale)
        assert status == 0, lines
    out = tmp_path / "out" / "seq"
    assert sorted(p.name for p in out.iterdir()) == [f"seq-{METHOD}-frames", f"seq-{METHOD}.mp4",
                                                      "seq-farneback+splat-frames", "seq-farneback+splat.mp4"]
    assert len(list((out / f"seq-{METHOD}-frames").iterdir())) == 5
    assert len(list((out / "seq-farneback+splat-frames").iterdir())) == 7


@pytest.mark.parametrize("where", ["same", "inside", "above"])
def test_output_folder_in_the_input_is_refused(capsys, tmp_path, seq, where):
    data, save = {"same": (seq.parent, seq.parent), "inside": (seq.parent, seq.parent / "out"),
                  "above": (seq, seq.parent)}[where]  # above: -s in/ would put seq's outputs into in/seq/
    before = sorted(seq.parent.rglob("*"))
    line = one_error(*cli(capsys, "-m", METHOD, "-data", data, "-s", save))
    assert "inside the input" in line and str(save) in line
    assert sorted(seq.parent.rglob("*")) == before


def test_rerun_says_what_it_replaced(capsys, tmp_path, seq):
    args = ("-m", METHOD, "-data", seq, "-s", tmp_path / "out", "--png", "-scale", "3")
    status, first = cli(capsys, *args)
    assert status == 0 and not any("replaced" in line for line in first), first
    status, again = cli(capsys, *args[:-1], "2")
    assert status == 0, again
    assert any(f"replaced an earlier run's seq-{METHOD}.mp4, seq-{METHOD}-frames" in line for line in again), again
    assert len(list((tmp_path / "out" / "seq" / f"seq-{METHOD}-frames").iterdir())) == 5  # not 7: swapped whole


# 13.9: a cut between a smooth and a grainy shot of one mean colour


def test_cut_between_smooth_and_grainy_shots_is_held_not_mixed(capsys, tmp_path):
    frames = smooth_then_grainy()
    write_frames(tmp_path / "seq", frames)
    status, lines = cli(capsys, "-m", METHOD, "-data", tmp_path / "seq", "-s", tmp_path / "out", "--png")
    assert status == 0 and "(1 scene cut(s))" in lines[-1], lines
    pngs = sorted((tmp_path / "out" / "seq" / f"seq-{METHOD}-frames").iterdir())
    assert len(pngs) == 11
    np.testing.assert_array_equal(read_png(pngs[5]), frames[2])  # the earlier shot held (repeat)


# 13.10: wording and the summary


def test_save_naming_a_file_says_it_is_a_file(capsys, tmp_path, seq):
    (tmp_path / "taken").write_text("x")
    line = one_error(*cli(capsys, "-m", METHOD, "-data", seq, "-s", tmp_path / "taken"))
    assert line == f"error: output folder {tmp_path / 'taken'} is a file"


def test_zero_byte_png_says_it_is_empty(capsys, tmp_path, seq):
    (seq / "00001.png").write_bytes(b"")
    line = one_error(*cli(capsys, "-m", METHOD, "-data", seq, "-s", tmp_path / "out"))
    assert "00001.png" in line and "is empty" in line


def test_summary_gives_time_pace_and_every_output(capsys, tmp_path, seq):
    status, lines = cli(capsys, "-m", METHOD, "-data", seq, "-s", tmp_path / "out", "--png", "--montage")
    assert status == 0, lines
    out = tmp_path / "out" / "seq"
    (line,) = [line for line in lines if line.startswith("seq: ")]
    assert line.startswith("seq: 5 frames in ") and " s (" in line and "frames/s)" in line
    for path in (f"{out}/seq-{METHOD}.mp4", f"montage {out}/seq-{METHOD}-montage.mp4",
                 f"PNG frames {out}/seq-{METHOD}-frames/"):
        assert path in line, line
    for path in (out / f"seq-{METHOD}.mp4", out / f"seq-{METHOD}-montage.mp4"):
        assert path.is_file()


# Issue 14: a user's files are never deleted; --help and argument errors without PyTorch


def test_png_frames_never_delete_a_users_files(capsys, tmp_path, seq):
    out = tmp_path / "out" / "seq"
    mine = write_frames(out / f"seq-{METHOD}-frames", moving_frames(1, 8, 8), ["00000000.png"])[0]
    notes = out / f"seq-{METHOD}-frames" / "notes.txt"
    notes.write_text("mine")
    legacy = write_frames(out / "frames", moving_frames(1, 8, 8))[0]  # where older versions wrote frames
    status, lines = cli(capsys, "-m", METHOD, "-data", seq, "-s", tmp_path / "out", "--png")
    assert status == 2 and len(lines) == 1 and "did not write (notes.txt)" in lines[0], lines  # before the models
    assert notes.read_text() == "mine" and read_png(mine).shape == (8, 8, 3)
    assert sorted(p.name for p in out.iterdir()) == ["frames", f"seq-{METHOD}-frames"]  # nothing half-written
    notes.unlink()
    status, lines = cli(capsys, "-m", METHOD, "-data", seq, "-s", tmp_path / "out", "--png")
    assert status == 0, lines
    assert len(list((out / f"seq-{METHOD}-frames").iterdir())) == 5 and read_png(legacy).shape == (8, 8, 3)


@pytest.mark.parametrize("args", [["--help"], ["--crf", "x"], ["-data", "nowhere"],
                                  ["-data", "input", "--ext", "webm", "--codec", "libx264"]])
def test_help_and_argument_errors_do_not_import_torch(args):
    probe = ("import sys\nfrom pervfi.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print('torch' in sys.modules, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", probe, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.stderr.splitlines()[-1] == "False", result.stderr


# Issue 26: --shard with --merge refused; rates from the whole command's time; a merge has none


def test_shard_with_merge_is_refused_in_one_line(capsys, tmp_path, seq):
    line = one_error(*cli(capsys, "-m", METHOD, "-data", seq, "-s", tmp_path / "out", "--shard", "0/1", "--merge"))
    assert line == "error: --merge joins the segments of every shard: run it without --shard"
    assert not (tmp_path / "out").exists()


def test_after_a_merge_the_summary_gives_the_join_time_and_no_rate(capsys, tmp_path, seq):
    job = ["-m", METHOD, "-data", seq, "-s", tmp_path / "out", "--segment-frames", "2"]
    assert cli(capsys, *job, "--shard", "0/1")[0] == 0
    status, lines = cli(capsys, *job, "--merge")
    assert status == 0, lines
    (line,) = [line for line in lines if line.startswith("seq: ")]
    assert re.match(r"seq: 5 frames joined in \d+\.\d s -> ", line) and "frames/s" not in line, line


def test_the_command_start_is_the_launchers_under_torchrun():
    """A launched rank times the whole command from its launcher's (its parent's) start."""
    from pervfi.runtime.launch import command_started

    code = "import time; from pervfi.runtime.launch import command_started as c; print(time.time() - c(0.0))"
    alone = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    launched = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                              env={**os.environ, "RANK": "1", "WORLD_SIZE": "2"})
    ours = time.time() - command_started(0.0)  # this test process: the launched child's parent
    assert 0 < float(alone.stdout) < ours
    assert float(launched.stdout) == pytest.approx(ours, abs=max(1.0, float(alone.stdout) + 0.5))
