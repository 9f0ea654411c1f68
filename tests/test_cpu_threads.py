"""The CPU thread budget (issue 26): a default that follows the free cores and is shared by the
processes launched together, OMP_NUM_THREADS as the user's choice, one figure for PyTorch,
OpenCV and ffmpeg, and `--threads N` on every tool."""
from __future__ import annotations

import cv2
import pytest
import torch

from pervfi.core import cpu_threads
from pervfi.media import ffmpeg


@pytest.fixture
def restore_threads():
    torch_threads, cv2_threads, chosen = torch.get_num_threads(), cv2.getNumThreads(), cpu_threads._chosen
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)
    cpu_threads._chosen = chosen


@pytest.fixture
def four_cores(monkeypatch):
    """A machine of 4 usable cores whose idle time the test sets: (all, idle) jiffies, twice."""
    monkeypatch.setattr(cpu_threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(cpu_threads.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(cpu_threads, "SAMPLE_SECONDS", 0.0)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)

    def idle(share: float) -> None:
        samples = iter([(1000, 500), (1400, 500 + round(400 * share))])
        monkeypatch.setattr(cpu_threads, "_cpu_times", lambda: next(samples))

    return idle


@pytest.mark.parametrize("idle_share, threads", [(1.0, 4), (0.5, 2), (0.25, 1), (0.0, 1)])
def test_the_default_is_the_free_cores(four_cores, idle_share, threads):
    four_cores(idle_share)
    assert cpu_threads.default_threads() == threads


def test_the_default_is_shared_by_the_processes_launched_together(four_cores, monkeypatch):
    four_cores(1.0)
    assert cpu_threads.default_threads(workers=2) == 2  # --devices cpu,cpu
    four_cores(1.0)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun --nproc-per-node 4
    assert cpu_threads.default_threads() == 1
    four_cores(1.0)
    assert cpu_threads.default_threads(workers=8) == 1  # never 0


def test_omp_num_threads_is_the_users_choice(four_cores, monkeypatch):
    four_cores(0.0)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads.default_threads(workers=2) == 3


def test_without_proc_stat_every_usable_core(four_cores, monkeypatch):
    monkeypatch.setattr(cpu_threads, "_cpu_times", lambda: None)
    assert cpu_threads.free_cores() == 4


def test_one_figure_for_pytorch_opencv_and_ffmpeg(restore_threads, tmp_path):
    assert cpu_threads.use_threads(1) == 1
    assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1
    assert torch.get_num_interop_threads() == 1
    target = tmp_path / "out.mp4"
    encoder = ffmpeg.Encoder(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "16x16", "-i", "-", "-c:v", "libx264"],
                             target, target)
    encoder.kill()
    assert encoder._process.args[-3:] == ["-threads", "1", str(target)]  # the encoder's option, after the input


@pytest.mark.parametrize("tool", ["cli", "app", "train", "train.flows", "evaluate"])
def test_every_tool_takes_threads(tool, capsys):
    from pervfi import cli
    from pervfi.app import __main__ as app
    from pervfi.app.limits import Limits
    from pervfi.evaluate import __main__ as evaluate
    from pervfi.train import __main__ as train
    from pervfi.train import flows

    parsers = {"cli": cli.build_parser, "app": lambda: app.build_parser(Limits()), "train": train.build_parser,
               "evaluate": evaluate.build_parser}
    required = {"cli": [], "app": [], "train": ["--config", "vb"], "evaluate": ["-m", "dis+splat"],
                "train.flows": ["--root", ".", "--estimator", "dis"]}[tool]
    with pytest.raises(SystemExit) as stopped:
        if tool == "train.flows":
            flows.main([*required, "--threads", "0"])
        else:
            parsers[tool]().parse_args([*required, "--threads", "0"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().endswith("error: argument --threads: must be at least 1, got 0")
    if tool != "train.flows":
        assert parsers[tool]().parse_args([*required, "--threads", "3"]).threads == 3
