"""Official checkpoints: fetched from the Hugging Face Hub when missing, read safely, loaded strictly.

A registered model's weights live at ``<checkpoint_dir>/<spec.path>``, the reference layout
(``checkpoints/PerVFI/v00.pth``, ``checkpoints/RAFT/raft-sintel.pth``, ...). A missing file is
fetched with `huggingface_hub.hf_hub_download` into that folder, so the Hub's own settings
apply (HF_ENDPOINT, HF_HUB_OFFLINE, HF_HOME, HF_TOKEN, HF_HUB_DISABLE_PROGRESS_BARS, ...).
The library writes the transfer to a temporary file under ``<checkpoint_dir>/.cache/huggingface``
and renames it into place only once it is complete and of the announced size, so an interrupted
download leaves nothing under the final name; a downloaded file that then fails to read as a
state dict, or whose sha256 differs from the one the registry records, is removed again.
Downloads take the Hub commit the registry pins (`revision`; the main branch where none is).

Before the first download the Hub is asked once whether it answers at all: without a network
the missing files are reported at once, instead of after the client's retries, and a failed
download leaves no lock files or empty folders behind.

Files are read with ``torch.load(weights_only=True)``: tensors and plain containers only, never
arbitrary pickled objects.
"""
from __future__ import annotations

import hashlib
import logging
import pickle
import shlex
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import constants, hf_hub_download, hf_hub_url, is_offline_mode
from huggingface_hub.errors import LocalEntryNotFoundError
from huggingface_hub.utils import get_session, httpx
from torch import Tensor, nn

from pervfi.core.errors import CheckpointError

from . import registry
from .registry import ModelEntry

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_DIR = "checkpoints"
# The method that runs without any checkpoint, offered when weights are missing offline.
WEIGHT_FREE_METHOD = "dis+splat"
# What a missing-weights message offers instead, unless the caller (training) knows better.
WEIGHT_FREE_WAY_OUT = f"use `-m {WEIGHT_FREE_METHOD}`, which needs no weights"
# How many offending keys an error message names.
KEYS_SHOWN = 3


def load_model(name: str, kind: str, checkpoint_dir: str | Path = DEFAULT_CHECKPOINT_DIR,
               download: bool = True, options: Mapping[str, Any] | None = None,
               way_out: str = WEIGHT_FREE_WAY_OUT) -> nn.Module:
    """The registered model `name` of `kind` ("flow" or "generator") with its official weights, in eval mode.

    A missing checkpoint is fetched from the Hub first, unless `download` is false or
    HF_HUB_OFFLINE is set. Flow names with ":" are user estimators (``module:callable``),
    built by `build_flow_estimator` and used without a checkpoint. `options` go to the
    model's builder (settings such as v00's ``heat``; they do not change the weights).
    `way_out`: what the missing-weights message offers instead (the caller's own option).
    """
    options = dict(options or {})
    if kind == "flow" and ":" in name:
        from .flow import build_flow_estimator

        return build_flow_estimator(name, **options).eval()
    entry = registry.get_entry(name, kind)
    if entry.checkpoint is None:
        return entry.build(**options).eval()
    (path,) = fetch_checkpoints([entry], checkpoint_dir, download=download, way_out=way_out)
    try:
        state = read_state_dict(path, entry.checkpoint.state_key)
    except CheckpointError as err:
        raise CheckpointError(
            f"{err}; delete it and run `{fetch_command(entry, checkpoint_dir)}` to fetch it again"
        ) from err
    model = entry.build(**options)
    load_state(model, state, path, entry.name)
    return model.eval()


def require_checkpoints(models: Iterable[tuple[str, str]], checkpoint_dir: str | Path = DEFAULT_CHECKPOINT_DIR,
                        download: bool = True) -> None:
    """Make sure the checkpoints of the (name, kind) models are on disk, fetching the missing ones.

    Offline, one error lists every missing file at once (rather than one per run).
    User flow estimators (names with ":") need none.
    """
    entries = [registry.get_entry(name, kind) for name, kind in models if ":" not in name]
    fetch_checkpoints(entries, checkpoint_dir, download=download)


def fetch_checkpoints(entries: Iterable[ModelEntry | str], checkpoint_dir: str | Path = DEFAULT_CHECKPOINT_DIR,
                      download: bool = True, suggest_download_command: bool = True,
                      way_out: str = WEIGHT_FREE_WAY_OUT) -> list[Path]:
    """Local paths of the checkpoints of the entries (or registered names; those without
    weights are skipped), downloading
    those not on disk yet; a CheckpointError listing them when they cannot be downloaded (with
    the `pervfi.download` command for each unless `suggest_download_command` is false, as when
    that command is the one running), ending with `way_out`."""
    folder = Path(checkpoint_dir)
    entries = [registry.get_entry(entry) if isinstance(entry, str) else entry for entry in entries]
    wanted = [entry for entry in entries if entry.checkpoint is not None]
    missing = [entry for entry in wanted if not checkpoint_path(entry, folder).is_file()]

    def cannot(reason: str, entries_left: list[ModelEntry]) -> CheckpointError:
        return _missing_error(entries_left, folder, reason, suggest_download_command, way_out)

    if missing and not download:
        raise cannot("downloading is turned off", missing)
    if missing and is_offline_mode():
        raise cannot("HF_HUB_OFFLINE is set", missing)
    if missing:
        unreachable = hub_unreachable()
        if unreachable:
            raise cannot(f"the Hub cannot be reached ({unreachable})", missing)
    for index, entry in enumerate(missing):
        try:
            _download(entry, folder)
        except LocalEntryNotFoundError as err:  # what hf_hub_download raises when the Hub is unreachable
            reason = f"the Hub cannot be reached ({_first_line(err.__cause__ or err)})"
            raise cannot(reason, missing[index:]) from err
    return [checkpoint_path(entry, folder) for entry in wanted]


def hub_unreachable() -> str | None:
    """Why the Hub endpoint (``HF_ENDPOINT``) does not answer, or None when it does (a server
    error, e.g. from a proxy without upstream, counts as no answer). One request, no retries,
    the client's metadata timeout (``HF_HUB_ETAG_TIMEOUT``)."""
    try:
        response = get_session().head(f"{constants.ENDPOINT}/", timeout=constants.HF_HUB_ETAG_TIMEOUT,
                                      follow_redirects=False)
    except httpx.TransportError as err:  # refused, unresolvable, unroutable, timed out, proxy down
        return f"{constants.ENDPOINT}: {_first_line(err)}"
    return f"{constants.ENDPOINT}: HTTP {response.status_code}" if response.status_code >= 500 else None


def checkpoint_names() -> list[str]:
    """Registered models that have an official checkpoint."""
    return [name for name in registry.names() if registry.get_entry(name).checkpoint is not None]


def checkpoint_path(entry: ModelEntry, checkpoint_dir: str | Path = DEFAULT_CHECKPOINT_DIR) -> Path:
    """Where the entry's checkpoint belongs under `checkpoint_dir` (the reference layout)."""
    if entry.checkpoint is None:
        raise ValueError(f"model {entry.name!r} has no checkpoint")
    return Path(checkpoint_dir) / entry.checkpoint.path


def fetch_command(entry: ModelEntry, checkpoint_dir: str | Path = DEFAULT_CHECKPOINT_DIR) -> str:
    """The shell command that downloads the entry's checkpoint ahead of time."""
    folder = "" if Path(checkpoint_dir) == Path(DEFAULT_CHECKPOINT_DIR) else f" --ckpt-dir {shlex.quote(str(checkpoint_dir))}"
    return f"python -m pervfi.download{folder} {entry.name}"


def read_state_dict(path: str | Path, state_key: str | None = None) -> dict[str, Tensor]:
    """The parameter tensors in a checkpoint file, keys without DataParallel's ``module.`` prefix.

    `state_key` unwraps files that keep the state dict under a key (GMFlow's ``{"model": ...}``).
    Anything but a readable file of named tensors is a CheckpointError naming the file.
    """
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise _unusable(path, "it is corrupt or holds pickled Python objects, which are never loaded"
                              " (only tensors are)") from err
    except (RuntimeError, EOFError, KeyError, ValueError) as err:  # torch.load's errors for damaged files
        raise _unusable(path, "it is truncated or corrupt") from err
    except OSError as err:
        raise _unusable(path, f"it cannot be read ({err.strerror or err})") from err
    if state_key is not None and isinstance(content, Mapping) and state_key in content:
        content = content[state_key]
    problem = _state_dict_problem(content)
    if problem:
        raise _unusable(path, problem)
    return {key.removeprefix("module."): tensor for key, tensor in content.items()}


def load_state(model: nn.Module, state: Mapping[str, Tensor], path: str | Path, name: str) -> None:
    """Load `state` (read from `path`) into `model` strictly; a mismatch is one CheckpointError
    naming the file, the model, and the first missing, unexpected and wrongly shaped keys."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    misshaped = [
        f"{key} {_shape(state[key])} in the file, {_shape(expected[key])} in the model"
        for key in expected if key in state and state[key].shape != expected[key].shape
    ]
    problems = [
        f"{len(keys)} {what} ({_first(keys)})"
        for what, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                           ("wrongly shaped keys", misshaped)) if keys
    ]
    if problems:
        raise CheckpointError(
            f"{path} does not fit model {name!r}: {'; '.join(problems)}; is it the checkpoint of another model?"
        )
    model.load_state_dict(state, strict=True)


def _download(entry: ModelEntry, folder: Path) -> None:
    """Fetch the entry's checkpoint from the Hub into `folder` and check it: its checksum (when
    the registry records one) and that it reads as a state dict. A failure leaves nothing behind."""
    spec = entry.checkpoint
    target = checkpoint_path(entry, folder)
    url = hf_hub_url(spec.repo_id, spec.filename, revision=spec.revision)
    log.info("downloading %s (%s) to %s", url, entry.name, target)
    new_folders = _missing_folders(target.parent, (folder / ".cache" / "huggingface" / "download" / spec.filename).parent)
    try:
        fetched = Path(hf_hub_download(spec.repo_id, spec.filename, revision=spec.revision, local_dir=folder))
    except LocalEntryNotFoundError:
        _remove_leftovers(folder, spec.filename, new_folders)
        raise
    except (httpx.HTTPError, OSError) as err:  # HTTP status, transport, size-check and disk errors
        _remove_leftovers(folder, spec.filename, new_folders)
        raise CheckpointError(f"cannot download {url} to {target}: {_first_line(err)}") from err
    except BaseException:  # Ctrl-C: the client has removed its partial file
        _remove_leftovers(folder, spec.filename, new_folders)
        raise
    if fetched.resolve() != target.resolve():  # the Hub file name differs from the local layout
        target.parent.mkdir(parents=True, exist_ok=True)
        fetched.replace(target)
    verify_checksum(target, spec.sha256, entry.name, url)
    try:
        read_state_dict(target, spec.state_key)
    except CheckpointError as err:
        target.unlink()
        raise CheckpointError(f"{err}; it was just downloaded from {url} and has been removed") from err


def verify_checksum(path: Path, expected: str | None, name: str, url: str) -> None:
    """Compare the sha256 of `path` (downloaded from `url`) with the one the registry records
    for `name`; remove the file when they differ."""
    if expected is None:
        log.warning("%s: no sha256 recorded for %s in the registry, so the download is not verified",
                    path, name)
        return
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected.lower():
        path.unlink()
        raise CheckpointError(f"{path} downloaded from {url} has sha256 {digest.hexdigest()}, but the registry"
                              f" records {expected} for {name}: it has been removed")


def _missing_folders(*folders: Path) -> list[Path]:
    """The folders (and their parents) that do not exist yet, deepest first."""
    missing = {parent for folder in folders for parent in (folder, *folder.parents) if not parent.exists()}
    return sorted(missing, key=lambda path: len(path.parts), reverse=True)


def _remove_leftovers(folder: Path, filename: str, new_folders: list[Path]) -> None:
    """After a failed download: the client's bookkeeping (its whole ``.cache`` folder when this
    attempt created it, else the lock file of `filename`), then the folders the attempt created,
    where they are empty."""
    cache = folder / ".cache"
    if cache in new_folders:
        shutil.rmtree(cache, ignore_errors=True)
    else:
        (cache / "huggingface" / "download" / f"{filename}.lock").unlink(missing_ok=True)
    for path in new_folders:
        try:
            path.rmdir()
        except OSError:  # not empty (another file's data) or already gone
            pass


def _missing_error(entries: list[ModelEntry], checkpoint_dir: Path, reason: str,
                   suggest_download_command: bool = True, way_out: str = WEIGHT_FREE_WAY_OUT) -> CheckpointError:
    """The offline message: each missing file, how to fetch it, where a manual download goes,
    and `way_out` (by default the method that needs no weights)."""
    paths = [checkpoint_path(entry, checkpoint_dir) for entry in entries]
    plural = "s" if len(paths) > 1 else ""
    lines = [f"missing checkpoint{plural} {', '.join(map(str, paths))} cannot be downloaded: {reason}"]
    for entry, path in zip(entries, paths):
        spec = entry.checkpoint
        url = hf_hub_url(spec.repo_id, spec.filename, revision=spec.revision)
        command = f"run `{fetch_command(entry, checkpoint_dir)}` when online, or " if suggest_download_command else ""
        lines.append(f"  {entry.name}: {command}download {url} and save it as {path}")
    lines.append(f"  or {way_out}")
    return CheckpointError("\n".join(lines))


def _state_dict_problem(content: Any) -> str | None:
    """Why `content` is not a state dict (names mapped to tensors), or None if it is one."""
    if not isinstance(content, Mapping):
        return f"it holds a {type(content).__name__}, not a state dict (parameter names mapped to tensors)"
    if not content:
        return "it holds an empty dict, not a state dict"
    for key, value in content.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            return (f"it holds a dict whose entry {key!r} is a {type(value).__name__}, not a tensor,"
                    " so it is not a state dict")
    return None


def _unusable(path: str | Path, reason: str) -> CheckpointError:
    return CheckpointError(f"{path} is not a usable checkpoint: {reason}")


def _first(keys: list[str]) -> str:
    shown = ", ".join(keys[:KEYS_SHOWN])
    return shown + (", ..." if len(keys) > KEYS_SHOWN else "")


def _shape(tensor: Tensor) -> str:
    return "x".join(map(str, tensor.shape)) or "scalar"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
