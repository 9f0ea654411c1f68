"""The run's log: one row per logged step in ``log.csv`` (training) and ``val.csv`` (validation),
every row also in ``log.jsonl``, and TensorBoard scalars when the `tensorboard` package is installed.

A resumed run first drops the rows written after the state it resumes from, so the log reads
as if the run had never stopped.
"""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FILES = {"train": "log.csv", "val": "val.csv"}


class RunLog:
    """Appends rows to the run folder's logs (only the first process writes)."""

    def __init__(self, folder: Path, resume_step: int | None = None, tensorboard: bool = True) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        if resume_step is not None:
            self._truncate(resume_step)
        else:
            for name in (*FILES.values(), "log.jsonl"):
                (folder / name).unlink(missing_ok=True)
        self.writer = _tensorboard(folder / "tensorboard") if tensorboard else None

    def write(self, kind: str, row: dict[str, Any]) -> None:
        """Append `row` (with its "step") to the `kind` ("train" or "val") log."""
        path = self.folder / FILES[kind]
        new = not path.exists()
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        with (self.folder / "log.jsonl").open("a") as handle:
            handle.write(json.dumps({"kind": kind, **row}) + "\n")
        if self.writer is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(f"{kind}/{key}", value, row["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def _truncate(self, step: int) -> None:
        for name in FILES.values():
            path = self.folder / name
            if path.exists():
                with path.open(newline="") as handle:
                    rows = list(csv.DictReader(handle))
                kept = [row for row in rows if int(row["step"]) <= step]
                with path.open("w", newline="") as handle:
                    if rows:
                        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                        writer.writeheader()
                        writer.writerows(kept)
        path = self.folder / "log.jsonl"
        if path.exists():
            lines = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
            path.write_text("".join(line + "\n" for line in lines))


def read_rows(folder: Path, kind: str = "train") -> list[dict[str, Any]]:
    """The rows of a run's `kind` log, numbers parsed."""
    rows = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "kind"} for row in rows if row["kind"] == kind]


def _tensorboard(folder: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("TensorBoard logs off (pip install tensorboard to get them)")
        return None
    return SummaryWriter(str(folder))
