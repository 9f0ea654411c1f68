"""Every benchmark script runs (in its --smoke mode: tiny frames, one run), as the README cites them."""
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("bench_*.py"))


def test_every_benchmark_is_covered():
    assert [path.name for path in SCRIPTS] == [
        "bench_compile.py",
        "bench_flow.py",
        "bench_generators.py",
        "bench_learning.py",
        "bench_long_film.py",
        "bench_memory.py",
        "bench_parallel.py",
        "bench_pipeline.py",
        "bench_precision_cpu.py",
        "bench_precision_e2e.py",
        "bench_splat.py",
        "bench_tiles.py",
        "bench_train.py",
    ]


@pytest.fixture
def torch_settings():
    """Each script starts as in a fresh process (gradients on, whatever ran before) and may set
    PyTorch's threads and turn gradients off: put both back afterwards."""
    threads, grad = torch.get_num_threads(), torch.is_grad_enabled()
    torch.set_grad_enabled(True)
    yield
    torch.set_num_threads(threads)
    torch.set_grad_enabled(grad)


# bench_parallel and bench_precision_e2e start tool processes (each loading PyTorch), bench_precision_cpu
# runs bf16, emulated on CPUs without it, bench_compile waits for inductor: slow
SLOW = {"bench_compile.py", "bench_learning.py", "bench_long_film.py", "bench_parallel.py", "bench_precision_cpu.py", "bench_precision_e2e.py"}

# compiling with inductor, and bf16/fp16 emulated on a CPU without them, take many minutes on 2 cores
HEAVY = {"bench_compile.py", "bench_learning.py", "bench_precision_cpu.py", "bench_precision_e2e.py"}


@pytest.mark.parametrize("script", [
    pytest.param(path, marks=(pytest.mark.slow, pytest.mark.heavy) if path.name in HEAVY else pytest.mark.slow)
    if path.name in SLOW else path for path in SCRIPTS
], ids=lambda path: path.stem)
def test_benchmark_runs_in_smoke_mode(script, monkeypatch, capsys, torch_settings):
    monkeypatch.setattr(sys, "argv", [str(script), "--smoke"])
    runpy.run_path(str(script), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 2 and any(size in lines[0] for size in ("64×96", "96×64", "64×64")), lines  # the smoke size, said


def test_the_readmes_benchmark_command_runs_from_any_folder(tmp_path):
    script = ROOT / "benchmarks" / "bench_splat.py"
    result = subprocess.run([sys.executable, str(script), "--smoke"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "frames/s" in result.stdout


def test_bench_memory_says_when_the_reference_is_not_the_authors_checkout(tmp_path, monkeypatch, torch_settings):
    script = ROOT / "benchmarks" / "bench_memory.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--sizes", "64x96", "--reference", str(tmp_path)])
    with pytest.raises(SystemExit, match=f"--reference: {tmp_path} is not a checkout of github.com/mulns/PerVFI"):
        runpy.run_path(str(script), run_name="__main__")
