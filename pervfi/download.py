"""Fetch official checkpoints ahead of time: ``python -m pervfi.download [--ckpt-dir DIR] NAME... | all``.

NAME is a registered model with a checkpoint (v00, vb, raft, raft_small, gma, gmflow, or an
alias such as pervfi). Files already present are left alone. Prints the path of each
checkpoint on stdout; progress and errors go to stderr, and errors exit with status 2.
"""
from __future__ import annotations

import argparse
import sys

from . import DEFAULT_CHECKPOINT_DIR, PerVFIError, UnknownNameError, checkpoint_names, fetch_checkpoints, registry
from .console import EXIT_INTERRUPTED, EXIT_USAGE, ArgumentParser, configure_logging, program_name
from .registry import ModelEntry

ALL = "all"


def resolve_names(names: list[str]) -> list[ModelEntry]:
    """The entries for NAME... (``all``: every model with a checkpoint), each once, in order."""
    if ALL in names:
        names = checkpoint_names()
    entries: dict[str, ModelEntry] = {}
    for name in names:
        try:
            entry = registry.get_entry(name)
        except UnknownNameError:
            entry = None
        if entry is None or entry.checkpoint is None:
            raise UnknownNameError(
                f"no checkpoint named {name!r}; choose from: {', '.join(checkpoint_names())}, or {ALL}"
            )
        entries.setdefault(entry.name, entry)
    return list(entries.values())


def _with_aliases(name: str) -> str:
    """``v00 (alias pervfi)``: a name as the help lists it."""
    aliases = registry.get_entry(name).aliases
    return f"{name} (alias {', '.join(aliases)})" if aliases else name


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=program_name("python -m pervfi.download"),
        description="Download the official PerVFI and optical-flow checkpoints from the Hugging Face Hub.",
    )
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help=f"{', '.join(map(_with_aliases, checkpoint_names()))}, or {ALL}")
    parser.add_argument("--ckpt-dir", default=DEFAULT_CHECKPOINT_DIR,
                        help=f"checkpoint folder (default: {DEFAULT_CHECKPOINT_DIR})")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        # offline, the message says what to download by hand, not to run this command again
        paths = fetch_checkpoints(resolve_names(args.names), args.ckpt_dir, suggest_download_command=False)
    except PerVFIError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # the Hub client has removed its partial file by now
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
