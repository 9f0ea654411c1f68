"""Fetch official checkpoints ahead of time: ``python -m pervfi.download [--ckpt-dir DIR] NAME... | all``.

NAME is a registered model with a checkpoint (v00, vb, raft, raft_small, gma, gmflow, or an
alias such as pervfi). Files already present are left alone. Prints the path of each
checkpoint on stdout; progress and errors go to stderr, and errors exit with status 2.
"""
from __future__ import annotations

import argparse
import sys

from pervfi.core.errors import UnknownNameError
from pervfi.models import registry
from pervfi.models.checkpoints import DEFAULT_CHECKPOINT_DIR, checkpoint_names, fetch_checkpoints
from pervfi.models.registry import ModelEntry
from pervfi.runtime.console import ArgumentParser, configure_logging, program_name, run_command

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

    def work() -> None:
        # offline, the message says what to download by hand, not to run this command again
        for path in fetch_checkpoints(resolve_names(args.names), args.ckpt_dir, suggest_download_command=False):
            print(path)

    return run_command(work)  # on a stop, the Hub client has removed its partial file


if __name__ == "__main__":
    sys.exit(main())
