"""Files written whole or not at all: under a temporary name beside the final one, renamed
into place only when complete, so a crash, Ctrl-C or SIGTERM never leaves a half file under
the final name (nor, once the process unwinds, a temporary one)."""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


def temporary_sibling(path: Path, suffix: str = "") -> Path:
    """A hidden name beside `path`, unique to this call (several processes may write one file)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial{suffix}")


def remove(path: Path) -> None:
    """Remove a file or a folder tree, if there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def written_whole(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path to write `path`'s content to (a file or a folder); when the block
    ends normally it replaces `path`, otherwise it is removed. `suffix` keeps an extension that
    a writer needs (``.png`` for OpenCV)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = temporary_sibling(path, suffix)
    try:
        yield partial
        if path.is_dir() and partial.is_dir():
            shutil.rmtree(path)  # os.replace cannot replace a folder that holds files
        os.replace(partial, path)
    finally:
        remove(partial)


def write_text_whole(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all."""
    with written_whole(path) as partial:
        partial.write_text(text, encoding="utf-8")
