"""The library installs as a package: `pip install .`, then `import pervfi` and the console
scripts work from any folder (slow: a virtual environment and a build)."""
import os
import shutil
import site
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["pervfi", "pervfi-download", "pervfi-evaluate", "pervfi-app"]


def _venv_seeing_this_interpreter(env_dir: Path) -> Path:
    """A virtual environment that sees the packages of the interpreter running the tests (pip,
    setuptools, the dependencies), in its order, whether that is a venv or the system's: a
    ``.pth`` file lists its site folders. (``system_site_packages=True`` would reach the base
    interpreter's packages instead, not those of a venv the tests run in.) Its scripts folder."""
    venv.EnvBuilder(system_site_packages=False).create(env_dir)
    folders = [*site.getsitepackages(), *([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(env_dir), "platbase": str(env_dir)}))
    (purelib / "_outer_site.pth").write_text("".join(f"{folder}\n" for folder in folders if Path(folder).is_dir()))
    return env_dir / ("Scripts" if os.name == "nt" else "bin")


@pytest.mark.slow
def test_pip_install_gives_an_importable_package_and_its_console_scripts(tmp_path):
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the working tree
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__",
                                                                  "output", "checkpoints", ".pytest_cache"))
    env_dir = tmp_path / "venv"
    bin_dir = _venv_seeing_this_interpreter(env_dir)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)

    def run(*command: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess:
        return subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=600)

    install = run(bin_dir / "python", "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q", source)
    assert install.returncode == 0, install.stderr
    imported = run(bin_dir / "python", "-c", "import pervfi.models.registry; print(pervfi.__file__, pervfi.models.registry.names()[0])")
    assert imported.returncode == 0, imported.stderr
    location, first_model = imported.stdout.split()
    assert Path(location).is_relative_to(env_dir) and first_model == "raft"  # models.yaml installed too
    configs = Path(location).parent / "train" / "configs"
    assert sorted(path.name for path in configs.glob("*.yaml")) == ["finetune.yaml", "v00.yaml", "vb.yaml"]
    for script in SCRIPTS:
        shown = run(bin_dir / script, "--help")
        assert shown.returncode == 0 and shown.stdout.startswith("usage:"), (script, shown.stderr)
        assert shown.stdout.startswith(f"usage: {script} "), shown.stdout  # named as the user ran it
    frames = tmp_path / "seq"
    shutil.copytree(ROOT / "input" / "shapes", frames)
    tool = run(bin_dir / "pervfi", "-m", "dis+splat", "-data", frames, "-s", tmp_path / "out", "--quiet")
    assert tool.returncode == 0, tool.stderr
    assert (tmp_path / "out" / "seq" / "seq-dis+splat.mp4").is_file()
