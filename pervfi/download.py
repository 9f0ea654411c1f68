"""Fetch official checkpoints ahead of time: ``python -m pervfi.download [--ckpt-dir DIR] NAME... | all``.

NAME is a registered model with a checkpoint (v00, vb, raft, raft_small, gma, gmflow, or an
alias such as pervfi). Files already present are left alone. Prints the path of each
checkpoint on stdout; progress and errors go to stderr, and errors exit with status 2.
"""
from __future__ import annotations

import argparse
import logging
import sys

from . import registry
from .checkpoints import DEFAULT_DIR, downloadable_names, fetch_missing
from .errors import PerVFIError, UnknownNameError
from .registry import ModelEntry

ALL = "all"


def resolve_names(names: list[str]) -> list[ModelEntry]:
    """The entries for NAME... (``all``: every model with a checkpoint), each once, in order."""
    if ALL in names:
        names = downloadable_names()
    entries: dict[str, ModelEntry] = {}
    for name in names:
        try:
            entry = registry.get_entry(name)
        except UnknownNameError:
            entry = None
        if entry is None or entry.checkpoint is None:
            raise UnknownNameError(
                f"no checkpoint named {name!r}; choose from: {', '.join(downloadable_names())}, or {ALL}"
            )
        entries.setdefault(entry.name, entry)
    return list(entries.values())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pervfi.download",
        description="Download the official PerVFI and optical-flow checkpoints from the Hugging Face Hub.",
    )
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help=f"{', '.join(downloadable_names())}, or {ALL}")
    parser.add_argument("--ckpt-dir", default=DEFAULT_DIR,
                        help=f"checkpoint folder (default: {DEFAULT_DIR})")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        paths = fetch_missing(resolve_names(args.names), args.ckpt_dir)
    except PerVFIError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the Hub client has removed its partial file by now
        print("interrupted", file=sys.stderr)
        return 130
    for path in paths:
        print(path)
    return 0


def _log_to_stderr() -> None:
    """Our progress messages on stderr. Only the package's logger: huggingface_hub prints its
    own warnings, and a handler on the root logger would print them twice."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("pervfi")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


if __name__ == "__main__":
    _log_to_stderr()
    sys.exit(main())
