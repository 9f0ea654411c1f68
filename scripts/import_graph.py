"""The package's import graph between layers, drawn from the code: one line per arrow, with how
many imports make it, in the order of the layers (README, "Layout").

    python scripts/import_graph.py
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_layering import FRONT_ENDS, LAYERS, PACKAGE_ROOT, imports_of, layer_of, module_name  # noqa: E402

ORDER = [*FRONT_ENDS, *reversed(list(LAYERS))]  # top to bottom


def short(layer: str) -> str:
    return layer.removeprefix("pervfi.")  # the face stays "pervfi"


def arrows() -> Counter[tuple[str, str]]:
    """(importer's layer, imported layer) -> number of imports, within-layer ones left out."""
    counted: Counter[tuple[str, str]] = Counter()
    for path in PACKAGE_ROOT.rglob("*.py"):
        own = layer_of(module_name(path)) or "pervfi"
        for _, imported in imports_of(path):
            theirs = layer_of(imported) or "pervfi"
            if theirs != own:
                counted[own, theirs] += 1
    return counted


def main() -> None:
    rank = {layer: number for number, layer in enumerate(ORDER)}
    for (own, theirs), count in sorted(arrows().items(), key=lambda item: (rank.get(item[0][0], -1),
                                                                           rank.get(item[0][1], -1))):
        print(f"{short(own):>17} -> {short(theirs):<8} {count:3d} imported name(s)")


if __name__ == "__main__":
    main()
