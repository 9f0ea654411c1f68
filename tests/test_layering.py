"""The package's layers point only down: every import of every module under pervfi/ is read
and checked against the rules below (issue 12).

- `pervfi.ops` imports nothing else of ours.
- Flow estimators and generators import only `ops`, `registry`, `errors` and their own parts.
- `pervfi.io` imports only itself and `errors` (never a model or the interpolator).
- The front ends (the CLI, download, evaluation, training, the demo app, the multi-device
  runner) import only the public API (`pervfi`), `pervfi.registry`, `pervfi.console` (the
  tools' shared argument and logging plumbing) and their own package.
- Nothing but a front end imports a front end.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "pervfi"
FRONT_ENDS = ("pervfi.cli", "pervfi.download", "pervfi.evaluate", "pervfi.train", "pervfi.app", "pervfi.parallel")
FRONT_END_MAY_USE = ("pervfi", "pervfi.registry", "pervfi.console")
MODELS_MAY_USE = ("pervfi.ops", "pervfi.registry", "pervfi.errors", "pervfi.flow", "pervfi.generators")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    root = PACKAGE_ROOT.parent
    return (root / relative).with_suffix(".py").is_file() or (root / relative / "__init__.py").is_file()


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import of our package in the file, nested ones included.

    ``from . import x`` counts as importing the submodule ``x`` when there is one, else the package.
    """
    importer = module_name(path)
    package = importer if is_package(path) else importer.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.append((node.lineno, submodule if is_module(submodule) else source))
    return [(line, name) for line, name in found if within(name, "pervfi")]


def front_end_of(name: str) -> str | None:
    return next((front for front in FRONT_ENDS if within(name, front)), None)


def violation(importer: str, imported: str) -> str | None:
    """Why `importer` may not import `imported`, or None when it may."""
    if within(importer, "pervfi.ops"):
        return None if within(imported, "pervfi.ops") else "pervfi.ops imports nothing else of ours"
    if within(importer, "pervfi.flow") or within(importer, "pervfi.generators"):
        if any(within(imported, allowed) for allowed in MODELS_MAY_USE):
            return None
        return "flow estimators and generators import only ops, registry, errors and their own parts"
    if within(importer, "pervfi.io"):
        if within(imported, "pervfi.io") or imported == "pervfi.errors":
            return None
        return "pervfi.io imports only itself and errors (never a model or the interpolator)"
    own = front_end_of(importer)
    if own is not None:
        if imported in FRONT_END_MAY_USE or within(imported, own):
            return None
        return "front ends use only the public API (pervfi), pervfi.registry, pervfi.console and their own package"
    if front_end_of(imported) is not None:
        return "only front ends import front ends"
    return None


def test_every_import_points_down() -> None:
    problems = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        importer = module_name(path)
        for line, imported in imports_of(path):
            reason = violation(importer, imported)
            if reason:
                problems.append(f"{path.relative_to(PACKAGE_ROOT.parent)}:{line} imports {imported}: {reason}")
    assert not problems, "layering broken:\n" + "\n".join(problems)


def test_the_rules_catch_each_kind_of_breach() -> None:
    """Each rule rejects the arrows it exists for (the checker itself can fail)."""
    assert violation("pervfi.ops.splat", "pervfi.errors")
    assert violation("pervfi.generators.base", "pervfi.tiling")
    assert violation("pervfi.flow.raft", "pervfi.checkpoints")
    assert violation("pervfi.io.pipeline", "pervfi.interpolator")
    assert violation("pervfi.cli", "pervfi.io.pipeline")
    assert violation("pervfi.evaluate.contenders", "pervfi.generators.v00")
    assert violation("pervfi.interpolator", "pervfi.cli")
    assert violation("pervfi.train.engine", "pervfi.evaluate.metrics")
    assert not violation("pervfi.cli", "pervfi")
    assert not violation("pervfi.evaluate.runner", "pervfi.evaluate.scoring")
    assert not violation("pervfi.generators.v00", "pervfi.ops")


def test_relative_imports_resolve_to_modules(tmp_path: Path) -> None:
    """``from .. import X`` names the package; ``from . import registry`` the submodule."""
    cli = imports_of(PACKAGE_ROOT / "cli.py")
    assert (cli and all(name in FRONT_END_MAY_USE for _, name in cli)), cli
    v00 = dict((name, line) for line, name in imports_of(PACKAGE_ROOT / "generators" / "v00.py"))
    assert "pervfi.generators.base" in v00 and "pervfi.ops" in v00
