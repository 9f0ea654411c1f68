"""Fetch official checkpoints ahead of time: ``python -m pervfi.download [--ckpt-dir DIR] NAME... | all``.

NAME is a registered model with a checkpoint (v00, vb, raft, raft_small, gma, gmflow, or an
alias such as pervfi; `all`: every one of them) or a registered weight file that training
reads (network-lf: softmax splatting's pyramid, for `--init scratch`, from its authors' site).
Files already present are left alone. Prints the path of each
checkpoint on stdout; progress and errors go to stderr, and errors exit with status 2.
"""
from __future__ import annotations

import argparse
import sys

from pervfi.core.errors import UnknownNameError
from pervfi.models import registry
from pervfi.models.checkpoints import DEFAULT_CHECKPOINT_DIR, checkpoint_names, fetch_checkpoints
from pervfi.models.registry import ModelEntry
from pervfi.models.weight_files import fetch_weight_file
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
            raise UnknownNameError(f"no checkpoint named {name!r}; choose from: "
                                   f"{', '.join(checkpoint_names() + registry.file_names())}, or {ALL}")
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
                        help=f"{', '.join(map(_with_aliases, checkpoint_names()))}, or {ALL}; or a weight file:"
                             f" {', '.join(registry.file_names())}")
    parser.add_argument("--ckpt-dir", default=DEFAULT_CHECKPOINT_DIR,
                        help=f"checkpoint folder (default: {DEFAULT_CHECKPOINT_DIR})")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()

    def work() -> None:
        files = [name for name in dict.fromkeys(args.names) if name in registry.file_names()]
        models = [name for name in args.names if name not in files]
        # offline, the message says what to download by hand, not to run this command again
        entries = resolve_names(models) if models else []
        for path in fetch_checkpoints(entries, args.ckpt_dir, suggest_download_command=False):
            print(path)
        for name in files:
            print(fetch_weight_file(name, args.ckpt_dir))

    return run_command(work)  # on a stop, the Hub client has removed its partial file


if __name__ == "__main__":
    sys.exit(main())
