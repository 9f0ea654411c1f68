"""What the command-line tools share: one-line argument errors, plain log lines that stay
above progress bars, the exit statuses, and stopping on SIGTERM as on Ctrl-C."""
from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

from tqdm import tqdm

from pervfi.core.errors import PerVFIError

EXIT_USAGE = 2  # a problem the user can fix: one line on stderr
EXIT_INTERRUPTED = 130  # Ctrl-C, as the shell reports it
# kill, timeout, docker stop; a closed terminal (Windows has no SIGHUP)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP), raised where Ctrl-C would be, so the same clean-up
    runs; `exit_status` is 128 + the signal's number, as the shell reports a killed program."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.exit_status = 128 + signum


@contextlib.contextmanager
def stop_signals_as_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `Terminated` in the main thread (only the
    main thread can take signals; elsewhere this does nothing). The old handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> NoReturn:
        for other in STOP_SIGNALS:  # a second signal must not cut the clean-up short
            signal.signal(other, signal.SIG_IGN)
        raise Terminated(signum)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_command(work: Callable[[], int | None], stopped: str = "") -> int:
    """Run one command's `work` as every tool does and return its exit status: SIGTERM and SIGHUP
    stop it as Ctrl-C does; a PerVFIError is one ``error:`` line (status 2); Ctrl-C prints
    ``interrupted`` (130) and a stop signal ``terminated (SIGTERM)`` (128 + its number), each
    followed by `stopped`, what the stop kept or removed."""
    after = f": {stopped}" if stopped else ""
    try:
        with stop_signals_as_interrupts():
            return work() or 0
    except PerVFIError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except Terminated as stop:
        print(f"terminated ({stop}){after}", file=sys.stderr)
        return stop.exit_status
    except KeyboardInterrupt:
        print(f"interrupted{after}", file=sys.stderr)
        return EXIT_INTERRUPTED


def program_name(otherwise: str) -> str:
    """How the user ran the tool, for its usage line: the console script (``pervfi-download``)
    when that is what runs, else `otherwise` (``python -m pervfi.download``, ``infer_video.py``)."""
    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return script if script.startswith("pervfi") and not script.endswith(".py") else otherwise


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (no usage dump), exit status 2."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def add_threads_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The ``--threads N`` every tool takes (see `pervfi.core.cpu_threads`)."""
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="CPU threads of each process, for PyTorch, OpenCV and ffmpeg together (default: the "
                             "cores free at the start, shared by the processes; $OMP_NUM_THREADS when set)")


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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
