"""A report that keeps every row: each row is appended to a markdown file and to a JSON-lines
file the moment it is measured, a row that raises is written with its error (and the run goes
on), and rows past the time budget are written as skipped. Device time is scarce: a compile
error, a NaN or a killed run must not lose what was already measured."""
from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def cell(value: Any) -> str:
    """A value as a markdown cell: floats to 4 significant digits, None as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def failure(error: BaseException) -> str:
    """One line naming an exception."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


class RowLog:
    """Sections of rows written as they come to `markdown` (and stdout) and to `markdown`
    with the suffix ``.jsonl`` (one JSON object per row, with its section)."""

    def __init__(self, markdown: Path, budget: float, echo: bool = True) -> None:
        self.markdown = markdown
        self.jsonl = markdown.with_suffix(".jsonl")
        self.budget = budget
        self.echo = echo
        self.began = time.perf_counter()
        self.title = ""
        self.columns: list[str] = []
        self.errors = 0
        for path in (self.markdown, self.jsonl):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")

    def elapsed(self) -> float:
        return time.perf_counter() - self.began

    def text(self, *lines: str) -> None:
        """Free lines of markdown."""
        self._append(self.markdown, "".join(line + "\n" for line in lines))
        if self.echo:
            print(*lines, sep="\n", flush=True)

    def section(self, title: str, columns: list[str]) -> None:
        """Start a table: its key columns and result columns, in order."""
        self.title, self.columns = title, columns
        self.text("", f"## {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns))

    def row(self, key: dict[str, Any], measure: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        """Measure one row and write it at once: the result of `measure` (a dict of the
        section's remaining columns), or its error, or "skipped" past the budget. Returns the
        result, None when there is none."""
        result: dict[str, Any] | None = None
        if self.elapsed() > self.budget:
            status = "skipped: time budget"
        else:
            started = time.perf_counter()
            try:
                result = measure()
                status = "ok"
            except Exception as error:  # noqa: BLE001 - recorded in the row, the run goes on
                status = "error: " + failure(error)
                self.errors += 1
                _free_device_memory()
            key = {**key, "seconds": round(time.perf_counter() - started, 2)}
        record = {"section": self.title, **key, "status": status, **(result or {})}
        self._append(self.jsonl, json.dumps(record, default=str) + "\n")
        values = {**key, **(result or {})}
        cells = [cell(values[name]) if name in values else "" for name in self.columns]
        if result is None:  # the status goes in the first column that has no value
            blank = next((i for i, name in enumerate(self.columns) if name not in values), len(cells) - 1)
            cells[blank] = status
        self.text("| " + " | ".join(cells) + " |")
        return result

    @staticmethod
    def _append(path: Path, text: str) -> None:
        with open(path, "a", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())


def _free_device_memory() -> None:
    """After a failed row (out of memory above all), give the device's cache back."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    sys.stdout.flush()
