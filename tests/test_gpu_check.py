"""The device check's reduced mode runs on the CPU, so the script cannot rot; and a row that
raises is written with its error while the next row still runs, every row on disk at once."""
import json
import re

from benchmarks import gpu_check
from tests.conformance import CONFORMANCE, DATA


def _records(out):
    return [json.loads(line) for line in out.with_suffix(".jsonl").read_text().splitlines()]


def test_reduced_device_check_writes_a_report_with_every_part(tmp_path, capsys):
    out = tmp_path / "check.md"
    status = gpu_check.main(["--reduced", "--device", "cpu", "--out", str(out), "--budget", "100000"])
    text = out.read_text()
    assert status == 0, text  # every conformance vector passed on the device, no row raised
    assert "## Conformance" in text and "## Precision" in text and "## Determinism" in text and "## Speed" in text
    if CONFORMANCE.exists():
        assert re.search(r"\| raft_small_128x192_t05 \| .* \| pass \|", text)
    if DATA.exists():
        assert re.search(r"\| raft_small\+pervfi-vb \| bf16 \| yes \| \d+\.?\d* \| 2 \|", text)  # a pair of each sequence
        # runner mode, then plain: fp32 on the CPU repeats bit for bit
        assert text.count("| dis+pervfi-vb | fp32 | runner | identical | identical |") == 1
    rows = [line for line in text.splitlines() if line.startswith(("| raft_small+pervfi-vb | 64×96", "| dis+splat"))]
    assert len(rows) == 4 and not any("skipped" in row or "error" in row for row in rows)
    assert re.search(r"\| raft_small\+pervfi-vb \| 64×96 \| fp32 \| 2 \| no \| no \| \d+\.?\d* \|", text)
    assert re.search(r"\| raft_small\+pervfi-vb \| 64×96 \| bf16 \| 1 \| no \| no \| \d+\.?\d* \|", text)
    assert capsys.readouterr().out == text
    speed = [r for r in _records(out) if r["section"].startswith("Speed")]
    assert len(speed) == 4 and all(r["status"] == "ok" and r["ms/frame"] > 0 for r in speed)


def test_a_row_that_raises_is_recorded_and_the_next_row_runs_with_the_rows_on_disk(tmp_path, monkeypatch):
    out = tmp_path / "check.md"
    real = gpu_check.speed_row
    configs = tuple(gpu_check.Config("dis+splat", "64×96", "fp32", batch=b) for b in (1, 2, 1, 2, 1))  # batch 2 raises
    calls, seen_on_disk = [], []

    def speed_row(config, *args):
        calls.append(config)
        if config.batch == 2:
            raise RuntimeError("compiled kernel failed\nsecond line")
        if len(calls) == len(configs):  # the row after the failing ones: they are written already
            seen_on_disk.append(out.read_text().count("error: RuntimeError: compiled kernel failed |"))
            seen_on_disk.append(sum(r["status"].startswith("error") for r in _records(out)))
        return real(config, *args)

    monkeypatch.setattr(gpu_check, "speed_row", speed_row)
    mode = gpu_check.reduced_mode()
    monkeypatch.setattr(gpu_check, "reduced_mode", lambda: gpu_check.Mode((), (), (), None, None, (), mode.sizes,
                                                                          configs, runs=1))
    status = gpu_check.main(["--reduced", "--device", "cpu", "--out", str(out), "--budget", "100000"])
    assert status == 1  # a row raised
    assert seen_on_disk == [2, 2]
    records = _records(out)
    assert [r["status"] for r in records] == ["ok", "error: RuntimeError: compiled kernel failed"] * 2 + ["ok"]
    assert len(re.findall(r"\| dis\+splat \| 64×96 \| fp32 \| 1 \| no \| no \| \d", out.read_text())) == 3


def test_rows_past_the_budget_are_written_as_skipped(tmp_path, monkeypatch):
    out = tmp_path / "check.md"
    mode = gpu_check.reduced_mode()
    monkeypatch.setattr(gpu_check, "reduced_mode", lambda: gpu_check.Mode((), (), (), None, None, (), mode.sizes,
                                                                          mode.configs[:2], runs=1))
    assert gpu_check.main(["--reduced", "--device", "cpu", "--out", str(out), "--budget", "0"]) == 0
    assert [r["status"] for r in _records(out)] == ["skipped: time budget"] * 2
    assert out.read_text().count("| skipped: time budget |") == 2
