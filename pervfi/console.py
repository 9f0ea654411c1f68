"""What the command-line tools share: one-line argument errors, plain log lines that stay
above progress bars, and the exit statuses."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import NoReturn

from tqdm import tqdm

EXIT_USAGE = 2  # a problem the user can fix: one line on stderr
EXIT_INTERRUPTED = 130  # Ctrl-C, as the shell reports it


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (no usage dump), exit status 2."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class _Formatter(logging.Formatter):
    """Plain messages; warnings and errors say what they are."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return f"{record.levelname.lower()}: {message}" if record.levelno >= logging.WARNING else message


class _TqdmHandler(logging.Handler):
    """Writes records to stderr above the progress bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record), file=sys.stderr)


def configure_logging(quiet: bool = False) -> None:
    """The package's log lines on stderr: information unless `quiet`, warnings and errors always."""
    handler = _TqdmHandler()
    handler.setFormatter(_Formatter())
    log = logging.getLogger("pervfi")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.WARNING if quiet else logging.INFO)
