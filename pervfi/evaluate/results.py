"""Scores on disk and their summary: the per-sample CSV, run.json (what was run, so a
re-run resumes only the same evaluation), summary.json, and the markdown table."""
from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pervfi.core.errors import OutputError
from pervfi.metrics.suite import METRIC_LABELS

log = logging.getLogger(__name__)

SAMPLES_CSV = "samples.csv"
RUN_JSON = "run.json"
SUMMARY_JSON = "summary.json"
ID_COLUMNS = ("sample", "group", "time")
DECIMALS = {"psnr": 2, "ie": 2}  # others (similarities, perceptual distances): 4

Row = dict[str, Any]


class ResultsStore:
    """Per-sample scores, kept in memory and, with a folder, in its samples.csv.

    A folder that already holds scores of the same run (same run.json) is resumed: its
    samples count as scored. Scores of another run there are an error, not overwritten.
    """

    def __init__(self, folder: str | Path | None, run: Mapping[str, Any], metrics: Sequence[str]) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.columns = [*ID_COLUMNS, *metrics]
        self.rows: dict[str, Row] = {}
        if self.folder is not None:
            self._open(dict(run))

    def _open(self, run: dict[str, Any]) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(f"cannot create output folder {self.folder}: {error.strerror}") from None
        run_file = self.folder / RUN_JSON
        if run_file.is_file():
            previous = json.loads(run_file.read_text())
            if previous != run:
                changed = sorted(key for key in {*previous, *run} if previous.get(key) != run.get(key))
                raise OutputError(f"{self.folder} holds scores of another run (differs in {', '.join(changed)}); "
                                  "choose another --out")
        else:
            run_file.write_text(json.dumps(run, indent=2) + "\n")
        csv_file = self.folder / SAMPLES_CSV
        if csv_file.is_file():
            with csv_file.open(newline="") as stream:
                for row in csv.DictReader(stream):
                    self.rows[row["sample"]] = _parse_row(row)
            if self.rows:
                log.info("resuming: %d samples already scored in %s", len(self.rows), csv_file)

    def has(self, sample_ids: Iterable[str]) -> bool:
        return all(sample_id in self.rows for sample_id in sample_ids)

    def add(self, rows: Sequence[Row]) -> None:
        for row in rows:
            self.rows[row["sample"]] = row
        if self.folder is None:
            return
        csv_file = self.folder / SAMPLES_CSV
        new_file = not csv_file.is_file()
        with csv_file.open("a", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=self.columns)
            if new_file:
                writer.writeheader()
            writer.writerows({key: _cell(row.get(key)) for key in self.columns} for row in rows)

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        if self.folder is not None:
            (self.folder / SUMMARY_JSON).write_text(json.dumps(summary, indent=2) + "\n")


def summarize(rows: Sequence[Row], metrics: Sequence[str], by_sequence: bool) -> dict[str, Any]:
    """Means per group and overall. Video datasets (`by_sequence`) average each sequence,
    then the sequences, as the authors' benchmark does; others average the samples."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row["group"], []).append(row)
    group_means = {name: {"samples": len(members), **_means(members, metrics)} for name, members in groups.items()}
    overall = _means(list(group_means.values()), metrics) if by_sequence else _means(rows, metrics)
    return {"samples": len(rows), **overall, "groups": group_means}


def _means(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> dict[str, float | None]:
    means: dict[str, float | None] = {}
    for name in metrics:
        values = [row[name] for row in rows if row.get(name) is not None]
        means[name] = math.fsum(values) / len(values) if values else None
    return means


def markdown_table(summary: Mapping[str, Any], metrics: Sequence[str], by_group: bool = False) -> str:
    """A markdown table of the means: one row for the run, or one per group and then the
    run; metrics that could not be loaded read n/a, with the reasons below the table."""
    unavailable: Mapping[str, str] = summary.get("unavailable", {})
    header = ["method", "dataset", "samples", *(METRIC_LABELS[name] for name in metrics)]
    label = summary["dataset"] + (f" ×{summary['scale']}" if summary.get("video") else "")
    rows = [(f"{label} {group}", means) for group, means in summary["groups"].items()] if by_group else []
    rows.append((label, summary))
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for dataset, means in rows:
        cells = [summary["method"], dataset, str(means["samples"]), *(_format(name, means[name]) for name in metrics)]
        lines.append("| " + " | ".join(cells) + " |")
    if unavailable:
        lines.append("")
        lines += [f"n/a {name}: {reason}" for name, reason in unavailable.items()]
    return "\n".join(lines)


def _format(name: str, value: float | None) -> str:
    return "n/a" if value is None else f"{value:.{DECIMALS.get(name, 4)}f}"


def _cell(value: Any) -> Any:
    return "" if value is None else value


def _parse_row(row: Mapping[str, str]) -> Row:
    parsed: Row = {"sample": row["sample"], "group": row["group"], "time": float(row["time"])}
    for key, value in row.items():
        if key not in ID_COLUMNS:
            parsed[key] = float(value) if value not in ("", None) else None
    return parsed
