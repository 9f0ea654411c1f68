"""Names of flow estimators and generators, mapped to builders and checkpoint specs.

The table lives in `models.yaml` beside this file. Each entry says what kind of model it
is (`flow` or `generator`), which function builds it (``module:function``), the options
that function takes, and where the official weights come from (if any).
"""
from __future__ import annotations

import functools
import importlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from pervfi.core.errors import RegistryError, UnknownNameError

_TABLE = Path(__file__).with_name("models.yaml")


@dataclass(frozen=True)
class CheckpointSpec:
    """Where a model's official weights live, locally and on the Hugging Face Hub."""

    path: str  # relative to the checkpoint folder, the reference layout
    repo_id: str
    filename: str  # inside the Hub repository
    state_key: str | None = None  # the file wraps the state dict under this key
    revision: str | None = None  # the Hub commit to download (None: the repository's main branch)
    sha256: str | None = None  # the file's checksum, verified after download (None: not verified)


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: how to build it and where its weights come from."""

    name: str
    kind: str  # "flow" or "generator"
    builder: str  # "package.module:function"
    options: dict[str, Any] = field(default_factory=dict)
    checkpoint: CheckpointSpec | None = None
    aliases: tuple[str, ...] = ()
    description: str = ""

    def build(self, **overrides: Any) -> Any:
        """Call the builder with the registered options, updated by `overrides`."""
        return resolve_callable(self.builder)(**{**self.options, **overrides})

    def accepts(self, option: str) -> bool:
        """Whether the builder takes the keyword `option` (e.g. v00's ``heat``)."""
        return option in inspect.signature(resolve_callable(self.builder)).parameters


@dataclass(frozen=True)
class FileEntry:
    """A weight file that is not a registered model's checkpoint but that training reads
    (softmax splatting's pretrained pyramid): where it lives locally and where it comes from."""

    name: str
    path: str  # relative to the checkpoint folder, the reference layout
    url: str  # fetched from there (not the Hub)
    sha256: str | None = None  # the file's checksum, verified after download (None: not verified)
    description: str = ""


def resolve_callable(path: str) -> Callable[..., Any]:
    """Import ``module.path:attribute`` and return the attribute."""
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise RegistryError(f"{node.start_mark.name}: {key!r} is given twice (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep)


def _read_yaml(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as stream:
        return yaml.load(stream, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def read_table(path: str | Path) -> dict[str, ModelEntry]:
    """The entries of a model table; a RegistryError when a name or alias is given twice."""
    raw = _read_yaml(path)
    entries = {}
    for name, spec in raw["models"].items():
        ckpt = spec.get("checkpoint")
        entries[name] = ModelEntry(
            name=name,
            kind=spec["kind"],
            builder=spec["builder"],
            options=dict(spec.get("options") or {}),
            checkpoint=CheckpointSpec(**ckpt) if ckpt else None,
            aliases=tuple(spec.get("aliases") or ()),
            description=spec.get("description", ""),
        )
    lookup_table(entries, path)
    return entries


def lookup_table(entries: dict[str, ModelEntry], source: str | Path = _TABLE) -> dict[str, ModelEntry]:
    """Every name and alias, lower-case, mapped to its entry; a RegistryError when two
    entries claim the same one (case-insensitively)."""
    table: dict[str, ModelEntry] = {}
    for entry in entries.values():
        for key in dict.fromkeys(name.lower() for name in (entry.name, *entry.aliases)):
            if key in table:
                raise RegistryError(f"{source}: {key!r} names both {table[key].name!r} and {entry.name!r}")
            table[key] = entry
    return table


@functools.lru_cache(maxsize=1)
def _entries() -> dict[str, ModelEntry]:
    return read_table(_TABLE)


@functools.lru_cache(maxsize=1)
def _files() -> dict[str, FileEntry]:
    return {name: FileEntry(name=name, **spec) for name, spec in (_read_yaml(_TABLE).get("files") or {}).items()}


def file_names() -> list[str]:
    """Registered weight files that are not model checkpoints (fetched by name)."""
    return list(_files())


def get_file(name: str) -> FileEntry:
    """The registered weight file `name`; `UnknownNameError` listing them otherwise."""
    if name not in _files():
        raise UnknownNameError(f"unknown weight file {name!r}; choose one of: {', '.join(_files())}")
    return _files()[name]


@functools.lru_cache(maxsize=1)
def _lookup() -> dict[str, ModelEntry]:
    return lookup_table(_entries())


def names(kind: str | None = None) -> list[str]:
    """Registered names, optionally only those of one kind."""
    return [n for n, e in _entries().items() if kind is None or e.kind == kind]


def get_entry(name: str, kind: str | None = None) -> ModelEntry:
    """The entry registered under `name` or an alias (case-insensitive); a clear error otherwise."""
    entry = _lookup().get(name.lower())
    if entry is None or (kind is not None and entry.kind != kind):
        what = f"{kind} model" if kind else "model"
        raise UnknownNameError(
            f"unknown {what} {name!r}; choose one of: {', '.join(names(kind))}"
        )
    return entry
