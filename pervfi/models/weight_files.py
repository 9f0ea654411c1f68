"""Registered weight files that come from their authors' site rather than the Hub (softmax
splatting's ``network-lf.pytorch``): fetched into the checkpoint folder on first use.

The transfer goes to a temporary sibling and is renamed into place only once complete and of
the announced length (`core.files.written_whole`); the file is then checked like a checkpoint
(its sha256 when the registry records one, and that it reads as a state dict) and removed if it
fails. Offline (HF_HUB_OFFLINE, the project's one switch) or when the site cannot be reached,
the error is one line naming the file, its address and where to save it by hand.
"""
from __future__ import annotations

import logging
from pathlib import Path

from huggingface_hub import constants, is_offline_mode
from huggingface_hub.utils import get_session, httpx

from pervfi.core.errors import CheckpointError
from pervfi.core.files import written_whole

from . import registry
from .checkpoints import DEFAULT_CHECKPOINT_DIR, read_state_dict, verify_checksum

log = logging.getLogger(__name__)

CHUNK = 1 << 20


def weight_file_path(name: str, checkpoint_dir: str | Path = DEFAULT_CHECKPOINT_DIR) -> Path:
    """Where the registered weight file `name` belongs under `checkpoint_dir`."""
    return Path(checkpoint_dir) / registry.get_file(name).path


def fetch_weight_file(name: str, checkpoint_dir: str | Path = DEFAULT_CHECKPOINT_DIR, download: bool = True) -> Path:
    """The local path of the registered weight file `name`, downloaded first when missing."""
    entry = registry.get_file(name)
    target = weight_file_path(name, checkpoint_dir)
    if target.is_file():
        return target
    if not download:
        raise _cannot(entry, target, "downloading is turned off")
    if is_offline_mode():
        raise _cannot(entry, target, "HF_HUB_OFFLINE is set")
    log.info("downloading %s (%s) to %s", entry.url, name, target)
    try:
        with written_whole(target) as partial:
            _transfer(entry.url, partial)
    except (httpx.HTTPError, OSError) as err:  # status, transport, short transfer and disk errors
        raise _cannot(entry, target, _first_line(err)) from err
    verify_checksum(target, entry.sha256, name, entry.url)
    try:
        read_state_dict(target)
    except CheckpointError as err:
        target.unlink()
        raise CheckpointError(f"{err}; it was just downloaded from {entry.url} and has been removed") from err
    return target


def _transfer(url: str, path: Path) -> None:
    """GET `url` into `path`; OSError when fewer bytes arrive than announced."""
    timeout = httpx.Timeout(constants.HF_HUB_DOWNLOAD_TIMEOUT, connect=constants.HF_HUB_ETAG_TIMEOUT)
    with get_session().stream("GET", url, follow_redirects=True, timeout=timeout) as response:
        response.raise_for_status()
        announced = response.headers.get("Content-Length")
        received = 0
        with path.open("wb") as stream:
            for block in response.iter_bytes(CHUNK):
                stream.write(block)
                received += len(block)
    if announced is not None and received != int(announced):
        raise OSError(f"the transfer stopped after {received} of {announced} bytes")


def _cannot(entry: registry.FileEntry, target: Path, reason: str) -> CheckpointError:
    return CheckpointError(f"{target} is missing and cannot be downloaded ({reason}): download {entry.url} "
                           f"and save it as {target}")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
