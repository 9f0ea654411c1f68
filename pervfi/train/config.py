"""Training configurations: YAML files with a fixed set of keys, overridden from the command line.

Every key and its kind is defined by the shipped recipe ``configs/v00.yaml``; a file may
start from another with ``base: NAME|PATH`` and change some keys. A key that does not exist,
or a value of the wrong kind, is an InputError naming it, before anything runs.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from pervfi.core.errors import InputError

CONFIG_FOLDER = Path(__file__).with_name("configs")
SCHEMA_NAME = "v00"  # the recipe whose keys every configuration has
CHOICES = {
    "model": ("v00", "vb"),
    "data.dataset": ("vimeo90k", "frames", "videos"),
    "data.order": ("shuffle", "reference"),
    "data.jitter": ("crop", "frame"),
    "train.precision": ("auto", "fp16", "bf16", "fp32"),
}
# Keys whose null means "not set" and which otherwise hold this kind.
OPTIONAL = {"data.root": str, "data.val_limit": int, "train.stop_after": int,
            **{f"loss.{term}": float for term in ("nll", "l1", "lap", "per")}}
# Numbers that must be positive (when set), and those that may also be 0 (val_every 0: never;
# keep 0: every state; workers 0: load in the training process).
POSITIVE = ("data.crop", "train.batch_size", "train.epochs", "train.stop_after", "train.max_lr",
            "train.grad_clip", "log.save_every", "log.log_every", "data.val_limit")
NOT_NEGATIVE = ("data.workers", "log.keep", "log.val_every", "train.seed")
# Keys that do not change what a run computes: a resume may change them freely.
NOT_SHAPING = ("out", "device", "checkpoint_dir", "init", "data.root", "data.workers", "data.val_limit",
               "train.stop_after", "log.save_every", "log.keep", "log.val_every", "log.metrics", "log.best",
               "log.log_every")


def shipped_configs() -> list[str]:
    """Names of the configurations shipped with the package (``--config NAME``)."""
    return sorted(path.stem for path in CONFIG_FOLDER.glob("*.yaml"))


def load_config(source: str | Path, overrides: Iterable[str] = (), values: Mapping[str, Any] | None = None
                ) -> dict[str, Any]:
    """The configuration `source` (a shipped name or a YAML file), checked, with `values`
    (``{"data.root": "..."}``) and then ``key.sub=value`` `overrides` (values in YAML) applied."""
    schema = _read(CONFIG_FOLDER / f"{SCHEMA_NAME}.yaml")
    config = _resolve(source, schema, seen=())
    for key, value in (values or {}).items():
        _assign(config, key, value, schema)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise InputError(f"override {item!r} is not KEY=VALUE (e.g. train.max_lr=1e-4)")
        _assign(config, key.strip(), yaml.safe_load(text), schema)
    _check_choices(config)
    _check_ranges(config)
    return config


def shaping_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The dotted keys that shape a run (all but `NOT_SHAPING`) whose values differ, as
    ``key (saved → now)``."""
    before, after = dict(_leaves(saved)), dict(_leaves(current))
    return [f"{key} ({before.get(key)!r} → {after.get(key)!r})" for key in sorted(before.keys() | after.keys())
            if key not in NOT_SHAPING and before.get(key) != after.get(key)]


def _leaves(config: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in config.items():
        if isinstance(value, Mapping):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def get(config: Mapping[str, Any], key: str) -> Any:
    """The value at dotted `key`."""
    node: Any = config
    for part in key.split("."):
        node = node[part]
    return node


def _resolve(source: str | Path, schema: dict[str, Any], seen: tuple[Path, ...]) -> dict[str, Any]:
    path = _locate(source)
    if path in seen:
        raise InputError(f"configuration {path} is its own base")
    content = _read(path)
    base = content.pop("base", None)
    config = copy.deepcopy(schema) if base is None else _resolve(str(base), schema, (*seen, path))
    for key, value in _flatten(content, schema):
        _assign(config, key, value, schema, where=f" in {path}")
    return config


def _locate(source: str | Path) -> Path:
    path = Path(source)
    if path.is_file():
        return path.resolve()
    if str(source) in shipped_configs():
        return (CONFIG_FOLDER / f"{source}.yaml").resolve()
    raise InputError(f"configuration {source} is neither a file nor a shipped one ({', '.join(shipped_configs())})")


def _read(path: Path) -> dict[str, Any]:
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"cannot read configuration {path}: {reason}") from None
    if not isinstance(content, dict):
        raise InputError(f"configuration {path} is not a mapping of keys to values")
    return content


def _flatten(content: Mapping[str, Any], schema: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """(dotted key, value) for every leaf of `content`, following the sections of `schema`."""
    for key, value in content.items():
        section = schema.get(key)
        if isinstance(value, Mapping) and isinstance(section, Mapping):
            yield from _flatten(value, section, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _assign(config: dict[str, Any], key: str, value: Any, schema: Mapping[str, Any], where: str = "") -> None:
    """Set dotted `key` after checking that it exists and that `value` fits."""
    parts = key.split(".")
    node, spec = config, schema
    for part in parts[:-1]:
        if not isinstance(spec.get(part), Mapping):
            raise _unknown(key, where)
        node, spec = node[part], spec[part]
    leaf = parts[-1]
    if leaf not in spec or isinstance(spec[leaf], Mapping):
        raise _unknown(key, where)
    node[leaf] = _checked(key, value, spec[leaf], where)


def _checked(key: str, value: Any, default: Any, where: str) -> Any:
    """`value` if it is of the kind of `default` (ints where floats go; lists where lists go)."""
    kind = OPTIONAL.get(key) or type(default)
    if value is None and (key in OPTIONAL or default is None):
        return None
    if kind is float and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return float(value)  # YAML reads 1e-3 (no dot) as text
        except ValueError:
            pass
    if kind is list and isinstance(value, (str, int)):
        value = [value]
    if default is None or isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise InputError(f"config key {key}{where} must be {_kind_name(kind)}, got {value!r}")


def _kind_name(kind: type) -> str:
    return {int: "an integer", float: "a number", str: "text", bool: "true or false", list: "a list"}.get(
        kind, kind.__name__)


def _unknown(key: str, where: str) -> InputError:
    return InputError(f"unknown config key {key}{where}; the keys are those of {CONFIG_FOLDER / SCHEMA_NAME}.yaml")


def _check_ranges(config: Mapping[str, Any]) -> None:
    for keys, smallest, wanted in ((POSITIVE, 0, "positive"), (NOT_NEGATIVE, -1, "0 or more")):
        for key in keys:
            value = get(config, key)
            if value is not None and not value > smallest:
                raise InputError(f"config key {key} must be {wanted}, got {value!r}")


def _check_choices(config: Mapping[str, Any]) -> None:
    for key, allowed in CHOICES.items():
        if get(config, key) not in allowed:
            raise InputError(f"config key {key} must be one of {', '.join(allowed)}, got {get(config, key)!r}")
