"""The README's note on a folder named `pervfi` beside a script (issue 26): Python takes it for a
namespace package when the package is on no regular path entry, and the library example fails
with "(unknown location)"; installed on a regular path entry (`pip install .`), it imports."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = "from pervfi import Interpolator; print(Interpolator.__module__)"


def test_a_clone_folder_beside_the_script_shadows_only_an_uninstalled_package(tmp_path):
    (tmp_path / "pervfi" / "pervfi").mkdir(parents=True)  # a clone named pervfi: no __init__.py at its top
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    shadowed = subprocess.run([sys.executable, "-S", "-c", EXAMPLE], cwd=tmp_path, env=env, capture_output=True,
                              text=True)  # -S: the package is on no path entry, as when not installed
    assert shadowed.returncode == 1
    assert "cannot import name 'Interpolator' from 'pervfi' (unknown location)" in shadowed.stderr
    installed = subprocess.run([sys.executable, "-c", EXAMPLE], cwd=tmp_path, capture_output=True, text=True,
                               env={**env, "PYTHONPATH": str(ROOT)})  # a regular path entry, as `pip install .`
    assert installed.returncode == 0, installed.stderr
    assert installed.stdout.strip() == "pervfi.runtime.interpolator"
    assert "(unknown location)" in (ROOT / "README.md").read_text()
