"""The command line: counts, order, pass-through, sizes, and bad input. A real subprocess
where the process is the point (a whole run, exit statuses, one-line errors); in-process
(one PyTorch import) for what the outputs hold."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conformance import DATA
from tests.media import moving_frames, read_png, video_frames, write_frames, write_video
from tests.test_cli_usage import cli

ROOT = Path(__file__).resolve().parents[1]
METHOD = "dis+pervfi-vb"


def run_cli(*args: str | Path, ckpt: Path | None = None, env: dict | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "infer_video.py", *map(str, args)]
    if ckpt is not None:
        command += ["--ckpt-dir", str(ckpt)]
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=full_env)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_frame_folder_counts_order_and_pass_through(tmp_path, ckpt_dir):
    frames = moving_frames(4, 40, 56)
    # Natural order: f1 < f2 < f3 < f10, whatever the lexicographic order says.
    write_frames(tmp_path / "in" / "seq", frames, ["f1.png", "f2.png", "f3.png", "f10.png"])
    before = tree_digest(tmp_path / "in")
    result = run_cli("-m", METHOD, "-data", tmp_path / "in", "-s", tmp_path / "out", "-scale", 3, "--png",
                     ckpt=ckpt_dir)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out" / "seq"
    pngs = sorted((out / f"seq-{METHOD}-frames").iterdir())
    assert [p.name for p in pngs] == [f"{i:08d}.png" for i in range(10)]  # (4 − 1)·3 + 1
    for index, frame in enumerate(frames):
        np.testing.assert_array_equal(read_png(pngs[3 * index]), frame)
    for index in (1, 2, 4):  # interpolated frames lie between their neighbours, not copies
        assert not np.array_equal(read_png(pngs[index]), read_png(pngs[3 * (index // 3)]))
    meta, video = video_frames(out / f"seq-{METHOD}.mp4")
    assert len(video) == 10 and meta["size"] == (56, 40) and meta["fps"] == 10
    assert tree_digest(tmp_path / "in") == before
    assert not [p for p in out.rglob(".*")], "temporary files left behind"


def test_odd_size_keeps_exact_frames_and_pads_the_video(capsys, tmp_path, ckpt_dir):
    write_frames(tmp_path / "seq", moving_frames(2, 33, 47))
    status, lines = cli(capsys, "-m", METHOD, "-data", tmp_path / "seq", "-s", tmp_path / "out", "--png",
                        "--ckpt-dir", ckpt_dir)
    assert status == 0, lines
    pngs = sorted((tmp_path / "out" / "seq" / f"seq-{METHOD}-frames").iterdir())
    assert len(pngs) == 3 and all(read_png(p).shape == (33, 47, 3) for p in pngs)
    meta, video = video_frames(tmp_path / "out" / "seq" / f"seq-{METHOD}.mp4")
    assert meta["size"] == (48, 34) and len(video) == 3


def test_video_input_rate_and_folder_of_videos(capsys, tmp_path, ckpt_dir):
    data = tmp_path / "in"
    data.mkdir()
    write_video(data / "clip.mp4", moving_frames(5, 32, 48), fps=12)
    write_frames(data / "frames", moving_frames(3, 32, 48, seed=1))
    status, lines = cli(capsys, "-m", METHOD, "-data", data, "-s", tmp_path / "out", "--ckpt-dir", ckpt_dir)
    assert status == 0, lines
    meta, video = video_frames(tmp_path / "out" / "clip" / f"clip-{METHOD}.mp4")
    assert len(video) == 9 and meta["fps"] == 24  # the video's rate × scale when -fps is not given
    meta, video = video_frames(tmp_path / "out" / "frames" / f"frames-{METHOD}.mp4")
    assert len(video) == 5 and meta["fps"] == 10  # frame folders: the reference default


def test_grey_alpha_and_16_bit_frames_are_converted_with_a_warning(capsys, tmp_path, ckpt_dir):
    import cv2

    frames = moving_frames(3, 32, 40)
    folder = tmp_path / "seq"
    folder.mkdir()
    cv2.imwrite(str(folder / "0.png"), cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY))
    cv2.imwrite(str(folder / "1.png"), np.dstack([frames[1][..., ::-1], np.full((32, 40), 255, np.uint8)]))
    cv2.imwrite(str(folder / "2.png"), frames[2][..., ::-1].astype(np.uint16) * 257)
    status, lines = cli(capsys, "-m", METHOD, "-data", folder, "-s", tmp_path / "out", "--png", "--ckpt-dir", ckpt_dir)
    assert status == 0, lines
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == 3 and all("converted to 8-bit RGB" in w for w in warnings)
    pngs = sorted((tmp_path / "out" / "seq" / f"seq-{METHOD}-frames").iterdir())
    np.testing.assert_array_equal(read_png(pngs[2]), frames[1])  # alpha dropped
    np.testing.assert_array_equal(read_png(pngs[4]), frames[2])  # 16 → 8 bits exactly


def _truncated(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _bad_inputs(tmp: Path) -> dict[str, tuple[list, str]]:
    """name → (CLI arguments, text the single error line must contain)."""
    frames = moving_frames(3, 24, 32)
    (tmp / "empty").mkdir()
    write_frames(tmp / "single", frames[:1])
    broken = write_frames(tmp / "unreadable", frames)
    broken[1].write_bytes(b"not an image")
    mixed = write_frames(tmp / "sizes", frames[:2] + [moving_frames(1, 16, 32)[0]])
    clip = _truncated(write_video(tmp / "clip.mp4", moving_frames(12, 24, 32)))
    (tmp / "file.txt").write_text("x")
    write_frames(tmp / "good", frames)
    write_frames(tmp / "clash" / "clip", frames)
    write_video(tmp / "clash" / "clip.mp4", frames)
    return {
        "missing path": (["-data", tmp / "nowhere"], "nowhere"),
        "empty folder": (["-data", tmp / "empty"], "empty"),
        "single frame": (["-data", tmp / "single"], "at least two"),
        "unreadable image": (["-data", tmp / "unreadable"], broken[1].name),
        "different sizes": (["-data", tmp / "sizes"], mixed[2].name),
        "truncated video": (["-data", clip], "clip.mp4"),
        "not a video": (["-data", tmp / "file.txt"], "file.txt"),
        "unknown method": (["-m", "raft+nosuch", "-data", tmp / "good"], "pervfi-vb"),
        "unknown flow": (["-m", "nosuch+pervfi", "-data", tmp / "good"], "raft_small"),
        "unwritable output": (["-data", tmp / "good", "-s", tmp / "file.txt" / "out"], "file.txt"),
        "bad scale": (["-data", tmp / "good", "-scale", "1"], "-scale"),
        "bad device": (["-data", tmp / "good", "--device", "tpu"], "tpu"),
        "name clash": (["-data", tmp / "clash"], "clip.mp4"),
    }


@pytest.mark.parametrize("case", ["missing path", "empty folder", "single frame", "unreadable image",
                                  "different sizes", "truncated video", "not a video", "unknown method",
                                  "unknown flow", "unwritable output", "bad scale", "bad device",
                                  "name clash"])
def test_bad_input_is_one_line_naming_the_culprit_with_exit_2(tmp_path, case):
    args, culprit = _bad_inputs(tmp_path)[case]
    result = run_cli(*args, "-s", tmp_path / "out") if "-s" not in args else run_cli(*args)
    lines = error_lines(result)
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "error" in lines[0] and culprit in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_missing_checkpoints_offline_say_what_to_do(tmp_path):
    write_frames(tmp_path / "seq", moving_frames(2, 24, 32))
    empty = tmp_path / "ckpt"
    result = run_cli("-m", "raft+pervfi", "-data", tmp_path / "seq", "-s", tmp_path / "out", ckpt=empty)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "RAFT/raft-sintel.pth" in result.stderr and "PerVFI/v00.pth" in result.stderr
    assert "python -m pervfi.download" in result.stderr and "dis+splat" in result.stderr
    assert not (tmp_path / "out" / "seq").exists()


def test_weight_free_flow_with_filled_generator_runs_offline(tmp_path, ckpt_dir):
    write_frames(tmp_path / "seq", moving_frames(3, 32, 48))
    result = run_cli("-m", "dis+pervfi-vb", "-data", tmp_path / "seq", "-s", tmp_path / "out", ckpt=ckpt_dir,
                     env={"HF_ENDPOINT": "http://127.0.0.1:9"})  # any download attempt would fail
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "seq" / "seq-dis+pervfi-vb.mp4").is_file()


def test_v00_noise_is_reproducible_with_a_seed_and_scaled_by_heat(capsys, tmp_path, ckpt_dir):
    from pervfi.cli import main

    write_frames(tmp_path / "seq", moving_frames(2, 32, 48))

    def middle(*flags: str) -> np.ndarray:  # in-process: six runs, one import of PyTorch
        out = tmp_path / "out" / "-".join(flags)
        status = main(["-m", "dis+pervfi", "-data", str(tmp_path / "seq"), "-s", str(out), "--png", *flags,
                       "--ckpt-dir", str(ckpt_dir)])
        assert status == 0, capsys.readouterr().err
        return read_png(out / "seq" / "seq-dis+pervfi-frames" / "00000001.png").astype(int)

    first, again, other = middle("--seed", "1"), middle("--seed", "1"), middle("--seed", "2")
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).mean() > 0.1
    np.testing.assert_array_equal(middle("--seed", "1", "--heat", "0"), middle("--seed", "2", "--heat", "0"))


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "sintel-market-10").is_dir(), reason="../shared/data/sintel-market-10 absent")
def test_sintel_end_to_end_with_png(tmp_path):
    source = DATA / "sintel-market-10"
    result = run_cli("-m", "dis+splat", "-data", source, "-s", tmp_path / "out", "--png")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out" / "sintel-market-10"
    pngs = sorted((out / "sintel-market-10-dis+splat-frames").iterdir())
    assert len(pngs) == 19
    np.testing.assert_array_equal(read_png(pngs[2]), read_png(sorted(source.iterdir())[1]))
    meta, video = video_frames(out / "sintel-market-10-dis+splat.mp4")
    assert len(video) == 19 and meta["size"] == (1024, 436)


def test_a_frame_beyond_the_numbers_range_is_exit_2_not_a_black_frame(capsys, tmp_path, ckpt_dir):
    """v00 sampled with absurd noise overflows float32 to infinity and NaN, as fp16 would at its
    own range: one line with the way out, exit status 2, no video left."""
    from pervfi.cli import main

    write_frames(tmp_path / "seq", moving_frames(2, 32, 48))
    status = main(["-m", "dis+pervfi", "-data", str(tmp_path / "seq"), "-s", str(tmp_path / "out"), "--png",
                   "--heat", "1e38", "--ckpt-dir", str(ckpt_dir), "--quiet"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "run with --precision fp32" in lines[0], lines
    assert not [path for path in (tmp_path / "out").rglob("*") if path.suffix in (".mp4", ".png")]
