"""The folders are the layers: every import of every module under pervfi/ is read, dynamic
ones included, and checked against the rules below (issue 22; README, "Layout").

    core       errors, whole-or-nothing files      imports nothing of ours
    ops        tensor operations                   core
    models     flow estimators, generators,        ops, core
               registry, checkpoints
    media      frames, videos, ffmpeg, audio,      core (no models)
               GIFs, scene analysis
    metrics    PSNR … FloLPIPS                     models, ops, core
    runtime    interpolator, precision, tiling,    metrics, media, models, ops, core
               transfer, sequences, parallel,
               console
    front ends cli, download, app, evaluate,       any layer above; never another front end
               train

No module inside the package imports the `pervfi` face (`pervfi/__init__.py`), whose names
are for users.
"""
from __future__ import annotations

import ast
from pathlib import Path

import yaml

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "pervfi"
LAYERS = {  # layer -> the layers it may import, besides itself
    "pervfi.core": (),
    "pervfi.ops": ("pervfi.core",),
    "pervfi.models": ("pervfi.ops", "pervfi.core"),
    "pervfi.media": ("pervfi.core",),
    "pervfi.metrics": ("pervfi.models", "pervfi.ops", "pervfi.core"),
    "pervfi.runtime": ("pervfi.metrics", "pervfi.media", "pervfi.models", "pervfi.ops", "pervfi.core"),
}
FRONT_ENDS = ("pervfi.cli", "pervfi.download", "pervfi.app", "pervfi.evaluate", "pervfi.train")
# Files that call importlib, and what the call imports: checked one by one below.
DYNAMIC_IMPORTS = {
    "pervfi": "the public names of `_LAZY`",
    "pervfi.models.registry": "the builders named in models.yaml",
    "pervfi.models.flow.custom": "the user's own estimator module (outside the package)",
    "pervfi.metrics.perceptual": "third-party metric packages (lpips, DISTS_pytorch)",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


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
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
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


def dynamic_import_lines(path: Path) -> list[int]:
    """Lines that import by name at run time (`importlib.import_module`, `__import__`)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr == "import_module":
            lines.append(node.lineno)
        elif isinstance(node, ast.Name) and node.id == "__import__":
            lines.append(node.lineno)
    return lines


def layer_of(name: str) -> str | None:
    return next((layer for layer in (*LAYERS, *FRONT_ENDS) if within(name, layer)), None)


def violation(importer: str, imported: str) -> str | None:
    """Why `importer` may not import `imported`, or None when it may."""
    if importer == "pervfi":
        return None if within(imported, "pervfi.core") else "the face imports only core eagerly (the rest lazily)"
    if imported == "pervfi":
        return "nothing inside the package imports the public face `pervfi`; import the layer that defines the name"
    own, theirs = layer_of(importer), layer_of(imported)
    if own is None or theirs is None:
        return f"{importer if own is None else imported} lies in no layer"
    if own == theirs:
        return None
    if own in FRONT_ENDS:
        return "front ends never import one another" if theirs in FRONT_ENDS else None
    if theirs in LAYERS[own]:
        return None
    return f"{own} imports only {', '.join(LAYERS[own]) or 'nothing else of ours'}"


def test_every_import_points_down() -> None:
    problems = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        importer = module_name(path)
        for line, imported in imports_of(path):
            reason = violation(importer, imported)
            if reason:
                problems.append(f"{path.relative_to(PACKAGE_ROOT.parent)}:{line} imports {imported}: {reason}")
    assert not problems, "layering broken:\n" + "\n".join(problems)


def test_every_module_lies_in_a_layer() -> None:
    loose = [module_name(path) for path in PACKAGE_ROOT.rglob("*.py")
             if module_name(path) != "pervfi" and layer_of(module_name(path)) is None]
    assert not loose, f"modules outside every layer: {loose}"


def test_dynamic_imports_are_known_and_point_down() -> None:
    """Every run-time import is one of the known kinds, and those that reach our own modules
    obey the rules: the face's lazy names and the registry's builders are resolved here."""
    callers = {module_name(path) for path in PACKAGE_ROOT.rglob("*.py") if dynamic_import_lines(path)}
    assert callers == set(DYNAMIC_IMPORTS), f"unexpected run-time imports in {sorted(callers - set(DYNAMIC_IMPORTS))}"

    import pervfi
    for name, (module, _) in pervfi._LAZY.items():
        assert layer_of(f"pervfi.{module}") in LAYERS, f"public name {name} comes from a front end ({module})"

    table = yaml.safe_load((PACKAGE_ROOT / "models" / "models.yaml").read_text(encoding="utf-8"))
    for name, entry in table["models"].items():
        module = entry["builder"].partition(":")[0]
        assert within(module, "pervfi.models") and is_module(module), f"{name}: builder {entry['builder']}"


FORBIDDEN = [  # (importer, imported): one arrow of each kind the rules exist for
    ("pervfi.core.files", "pervfi.ops.splat"),
    ("pervfi.ops.splat", "pervfi.models.registry"),
    ("pervfi.models.generators.base", "pervfi.runtime.tiling"),
    ("pervfi.models.flow.raft", "pervfi.media.frame_files"),
    ("pervfi.media.sources", "pervfi.models.checkpoints"),
    ("pervfi.media.writers", "pervfi.runtime.sequence"),
    ("pervfi.metrics.suite", "pervfi.runtime.device"),
    ("pervfi.runtime.interpolator", "pervfi.cli"),
    ("pervfi.train.engine", "pervfi.evaluate.runner"),
    ("pervfi.cli", "pervfi.app.jobs"),
    ("pervfi.evaluate.runner", "pervfi"),
    ("pervfi.runtime.parallel.jobs", "pervfi"),
    ("pervfi.cli", "pervfi.somewhere"),
]
ALLOWED = [
    ("pervfi.cli", "pervfi.runtime.parallel"),
    ("pervfi.train.validation", "pervfi.metrics.suite"),
    ("pervfi.models.generators.v00", "pervfi.ops"),
    ("pervfi.runtime.sequence", "pervfi.media.writers"),
]


def test_the_rules_catch_each_kind_of_breach() -> None:
    """Each rule rejects the arrows it exists for (the checker itself can fail)."""
    assert [arrow for arrow in FORBIDDEN if not violation(*arrow)] == []
    assert [arrow for arrow in ALLOWED if violation(*arrow)] == []


def test_relative_imports_resolve_to_modules() -> None:
    """``from .. import X`` names the package; ``from . import registry`` the submodule."""
    v00 = dict((name, line) for line, name in imports_of(PACKAGE_ROOT / "models" / "generators" / "v00.py"))
    assert "pervfi.models.generators.base" in v00 and "pervfi.ops" in v00
    flow = {name for _, name in imports_of(PACKAGE_ROOT / "models" / "flow" / "__init__.py")}
    assert "pervfi.models.registry" in flow


def test_the_drawn_graph_has_only_downward_arrows() -> None:
    """`python scripts/import_graph.py` (the README's picture of the layers) lists only arrows
    the rules allow, from the top of the house down."""
    import subprocess
    import sys

    script = PACKAGE_ROOT.parent / "scripts" / "import_graph.py"
    lines = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout.splitlines()
    arrows = [line.split()[0:3:2] for line in lines]
    assert ["cli", "runtime"] in arrows and ["models", "ops"] in arrows
    for own, theirs in arrows:
        importer = "pervfi" if own == "pervfi" else f"pervfi.{own}"
        assert violation(f"{importer}.x" if importer != "pervfi" else importer, f"pervfi.{theirs}.x") is None, (own, theirs)
