"""The device check's reduced mode runs on the CPU, so the script cannot rot."""
import re

from benchmarks import gpu_check
from tests.conformance import CONFORMANCE


def test_reduced_device_check_writes_a_report_with_every_part(tmp_path, capsys):
    out = tmp_path / "check.md"
    status = gpu_check.main(["--reduced", "--device", "cpu", "--out", str(out), "--budget", "600"])
    text = out.read_text()
    assert status == 0, text  # every conformance vector passed on the device
    assert "## Conformance" in text and "## Precision" in text and "## Speed" in text
    if CONFORMANCE.exists():
        assert re.search(r"\| raft_small_128x192_t05 \| .* \| pass \|", text)
    rows = [line for line in text.splitlines() if line.startswith(("| raft_small+pervfi-vb | 64×96", "| dis+splat"))]
    assert len(rows) == 5 and not any("skipped" in row for row in rows)
    assert re.search(r"\| raft_small\+pervfi-vb \| 64×96 \| bf16 \| 2 \| no \| \d+\.\d \|", text)
    assert capsys.readouterr().out == text + "\n"
