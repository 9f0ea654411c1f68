"""Fetching checkpoints from a local stand-in for the Hugging Face Hub (never the internet).

huggingface_hub reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE when it is imported, so each
download runs in a fresh Python process with those variables pointing at the local server
and a temporary folder.
"""
import dataclasses
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pervfi.core.errors import CheckpointError
from pervfi.download import main, resolve_names
from pervfi.models import registry, weight_files
from pervfi.models.checkpoints import checkpoint_names
from tests.checkpoint_files import model_state, official_layout, serialized
from tests.hub_server import COMMIT, HubServer

REPO_ROOT = Path(__file__).resolve().parents[1]
HUB_REPO = "Mulns/PerVFI-v1-0"


def _spec(name):
    return registry.get_entry(name).checkpoint


def _tiny_repository() -> dict[str, bytes]:
    """Each official file with the first few tensors of its layout: small, but wrapped as the
    real ones are and readable as state dicts."""
    return {
        _spec(name).filename: serialized(official_layout(name, model_state(name, limit=4)))
        for name in checkpoint_names()
    }


def _env(hub: HubServer, tmp_path: Path, offline: bool = False) -> dict[str, str]:
    """The environment of a fresh process: the Hub is `hub`, the client's home a temporary folder."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1",
               PYTHONPATH=str(REPO_ROOT))
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def _run(hub: HubServer, tmp_path: Path, args: list[str], offline: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=_env(hub, tmp_path, offline), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


def _leftovers(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.name.endswith(".incomplete")]


def test_download_all_fetches_every_file_once(tmp_path):
    files = _tiny_repository()
    ckpt = tmp_path / "ckpt"
    with HubServer(HUB_REPO, files) as hub:
        first = _run(hub, tmp_path, ["-m", "pervfi.download", "--ckpt-dir", str(ckpt), "all"])
        assert first.returncode == 0, first.stderr
        again = _run(hub, tmp_path, ["-m", "pervfi.download", "--ckpt-dir", str(ckpt), "all"])
        assert again.returncode == 0, again.stderr

    for filename, data in files.items():
        assert (ckpt / filename).read_bytes() == data
        assert hub.count("GET", filename) == 1  # the second run found every file in place
    assert first.stdout.split() == again.stdout.split() == [str(ckpt / _spec(n).path) for n in checkpoint_names()]
    assert sum(hub.count("HEAD", filename) for filename in files) == len(files)
    assert _leftovers(ckpt) == []


def test_load_model_downloads_on_first_use_only(tmp_path):
    state = model_state("vb")
    files = {_spec("vb").filename: serialized(state)}
    script = (
        "from pervfi.models.checkpoints import load_model\n"
        "for _ in range(2):\n"
        "    model = load_model('vb', 'generator', 'ckpt')\n"
        "print(sum(float(t.double().sum()) for t in model.state_dict().values()))\n"
    )
    with HubServer(HUB_REPO, files) as hub:
        run = _run(hub, tmp_path, ["-c", script])
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "ckpt" / _spec("vb").path).is_file()
    assert hub.count("GET", _spec("vb").filename) == 1
    assert float(run.stdout) == pytest.approx(sum(float(t.double().sum()) for t in state.values()), rel=1e-12)


def test_interrupted_transfer_leaves_nothing_under_the_final_name(tmp_path):
    filename = _spec("v00").filename
    files = {filename: serialized(model_state("v00", limit=40))}
    ckpt = tmp_path / "ckpt"
    with HubServer(HUB_REPO, files, cut_after={filename: len(files[filename]) // 2}) as hub:
        run = _run(hub, tmp_path, ["-m", "pervfi.download", "--ckpt-dir", str(ckpt), "v00"])
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot download") and filename in last
    assert hub.count("GET", filename) >= 1
    assert not (ckpt / filename).exists()
    assert _leftovers(ckpt) == []


def test_ctrl_c_during_a_transfer_leaves_nothing_behind(tmp_path):
    filename = _spec("vb").filename
    data = serialized(model_state("vb", limit=40))
    ckpt = tmp_path / "ckpt"
    with HubServer(HUB_REPO, {filename: data}, stall_after={filename: len(data) // 2}) as hub:
        process = subprocess.Popen([sys.executable, "-m", "pervfi.download", "--ckpt-dir", str(ckpt), "vb"],
                                   env=_env(hub, tmp_path), cwd=tmp_path, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not _leftovers(ckpt) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # until the transfer has begun writing its temporary file
        assert _leftovers(ckpt), "the download never started"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith("interrupted")
    assert not (ckpt / filename).exists()
    assert _leftovers(ckpt) == []


def test_corrupt_download_is_removed(tmp_path):
    filename = _spec("vb").filename
    data = serialized(model_state("vb", limit=40))
    with HubServer(HUB_REPO, {filename: data[: len(data) // 2]}) as hub:  # the Hub itself holds a bad file
        run = _run(hub, tmp_path, ["-m", "pervfi.download", "--ckpt-dir", "ckpt", "vb"])
    assert run.returncode == 2 and "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert "truncated or corrupt" in last and "has been removed" in last
    assert not (tmp_path / "ckpt" / filename).exists()


def test_offline_with_empty_folder_lists_each_missing_file(tmp_path):
    script = (
        "import sys\n"
        "from pervfi.core.errors import CheckpointError\n"
        "from pervfi.runtime.interpolator import Interpolator\n"
        "try:\n"
        "    Interpolator.from_method('gma+pervfi-vb', checkpoint_dir='ckpt', device='cpu')\n"
        "except CheckpointError as err:\n"
        "    sys.exit(str(err))\n"
    )
    (tmp_path / "ckpt").mkdir()
    with HubServer(HUB_REPO, _tiny_repository()) as hub:
        run = _run(hub, tmp_path, ["-c", script], offline=True)
    assert run.returncode == 1 and hub.requests == []
    first, *details = run.stderr.strip().splitlines()
    assert first.startswith("missing checkpoints") and "HF_HUB_OFFLINE is set" in first
    for line, name in zip(details, ["gma", "vb"]):
        assert f"python -m pervfi.download --ckpt-dir ckpt {name}" in line
        assert f"{hub.url}/{HUB_REPO}/resolve/main/{_spec(name).filename}" in line  # HF_ENDPOINT honoured
        assert f"save it as {Path('ckpt') / _spec(name).path}" in line
    assert "-m dis+splat" in details[-1]
    assert list((tmp_path / "ckpt").iterdir()) == []


@pytest.mark.parametrize("name", ["nosuch", "dis", "splat"])
def test_names_without_checkpoint_are_one_line_and_exit_2(name, capsys):
    assert main([name]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and repr(name) in err
    assert all(choice in err for choice in checkpoint_names())


def test_aliases_resolve_to_one_download():
    assert [entry.name for entry in resolve_names(["pervfi", "v00", "pervfi-vb"])] == ["v00", "vb"]
    assert [entry.name for entry in resolve_names(["all"])] == checkpoint_names()


def _pinned_fetch_script(pins: dict[str, tuple[str, str]]) -> str:
    """A script that fetches vb into each folder of `pins` ({folder: (revision, sha256)}) with
    those pins in place of the registry's, printing the path or the error's first line."""
    return (
        "import dataclasses\n"
        "from pervfi.models import registry\n"
        "from pervfi.models.checkpoints import fetch_checkpoints\n"
        "from pervfi.core.errors import CheckpointError\n"
        "entry = registry.get_entry('vb')\n"
        f"for folder, (revision, sha256) in {pins!r}.items():\n"
        "    spec = dataclasses.replace(entry.checkpoint, revision=revision, sha256=sha256)\n"
        "    try:\n"
        "        print(folder, fetch_checkpoints([dataclasses.replace(entry, checkpoint=spec)], folder)[0])\n"
        "    except CheckpointError as err:\n"
        "        print(folder, 'error:', str(err).splitlines()[0])\n"
    )


def _files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*")) if folder.exists() else []


def test_a_pinned_revision_is_downloaded_and_its_checksum_verified(tmp_path):
    filename = _spec("vb").filename
    data = serialized(model_state("vb", limit=4))
    pins = {
        "good": (COMMIT, hashlib.sha256(data).hexdigest()),
        "tampered": (COMMIT, "0" * 64),  # the registry's checksum is not the file's
        "unknown": ("f" * 40, hashlib.sha256(data).hexdigest()),  # a commit the Hub does not have
    }
    with HubServer(HUB_REPO, {filename: data}) as hub:
        run = _run(hub, tmp_path, ["-c", _pinned_fetch_script(pins)])
    assert run.returncode == 0, run.stderr
    results = dict(line.split(" ", 1) for line in run.stdout.splitlines())
    assert (tmp_path / results["good"]).read_bytes() == data
    assert "main" not in hub.revisions(filename) and COMMIT in hub.revisions(filename)
    assert results["tampered"].startswith("error:") and f"sha256 {hashlib.sha256(data).hexdigest()}" in results["tampered"]
    assert "records " + "0" * 64 in results["tampered"] and "it has been removed" in results["tampered"]
    assert _files_under(tmp_path / "tampered" / "PerVFI") == []
    assert results["unknown"].startswith("error: cannot download") and "f" * 40 in results["unknown"]
    # nothing left of the failed attempt: no lock file, no empty folder
    assert _files_under(tmp_path / "unknown") == []
    assert "not verified" not in run.stderr


def test_a_download_without_a_recorded_checksum_says_it_is_not_verified(tmp_path):
    filename = _spec("vb").filename
    with HubServer(HUB_REPO, {filename: serialized(model_state("vb", limit=4))}) as hub:
        run = _run(hub, tmp_path, ["-m", "pervfi.download", "--ckpt-dir", "ckpt", "vb"])
    assert run.returncode == 0, run.stderr
    assert "no sha256 recorded for vb in the registry, so the download is not verified" in run.stderr


def test_a_file_in_the_hub_cache_is_copied_instead_of_downloaded(tmp_path):
    filename = _spec("vb").filename
    data = serialized(model_state("vb", limit=4))
    snapshot = tmp_path / "hf-home" / "hub" / f"models--{HUB_REPO.replace('/', '--')}" / "snapshots" / COMMIT
    (snapshot / filename).parent.mkdir(parents=True)
    (snapshot / filename).write_bytes(data)
    with HubServer(HUB_REPO, {filename: data}) as hub:
        run = _run(hub, tmp_path, ["-m", "pervfi.download", "--ckpt-dir", "ckpt", "vb"])
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "ckpt" / _spec("vb").path).read_bytes() == data
    assert hub.count("GET", filename) == 0 and hub.count("HEAD", filename) == 1


def _stopped_hub() -> HubServer:
    """A Hub whose port no longer answers (connection refused), as without a network."""
    with HubServer(HUB_REPO, {}) as hub:
        pass
    return hub


def test_without_network_download_fails_at_once_and_leaves_nothing(tmp_path):
    hub = _stopped_hub()
    run = _run(hub, tmp_path, ["-m", "pervfi.download", "--ckpt-dir", "ckpt", "raft", "gma"])
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "Retrying" not in run.stderr and "downloading" not in run.stderr  # one probe, no attempts
    first, *details = run.stderr.strip().splitlines()
    assert first.startswith("error: missing checkpoints") and f"the Hub cannot be reached ({hub.url}" in first
    assert "python -m pervfi.download" not in run.stderr  # not the command that just failed
    for line, name in zip(details, ["raft", "gma"]):
        assert f"save it as {Path('ckpt') / _spec(name).path}" in line
    assert not (tmp_path / "ckpt").exists()


def test_without_network_the_tool_fails_at_once_and_leaves_nothing(tmp_path):
    hub = _stopped_hub()
    frames = tmp_path / "seq"
    frames.mkdir()
    for index in range(2):
        cv2.imwrite(str(frames / f"{index}.png"), np.full((32, 32, 3), 60 * index, np.uint8))
    (tmp_path / "ckpt").mkdir()
    run = _run(hub, tmp_path, [str(REPO_ROOT / "infer_video.py"), "-m", "gma+pervfi", "-data", "seq", "-s", "out",
                               "--ckpt-dir", "ckpt", "--quiet", "--device", "cpu"])
    assert run.returncode == 2 and "Traceback" not in run.stderr and "Retrying" not in run.stderr
    assert "the Hub cannot be reached" in run.stderr
    assert "run `python -m pervfi.download --ckpt-dir ckpt gma` when online" in run.stderr
    assert _files_under(tmp_path / "ckpt") == []  # no lock files, no empty GMA/ or PerVFI/


def test_help_lists_the_aliases(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert exit_info.value.code == 0
    assert "v00 (alias pervfi)" in text and "vb (alias pervfi-vb)" in text


@pytest.mark.parametrize("argv0, shown", [
    ("/venv/bin/pervfi-download", "pervfi-download"),  # the console script
    ("/repo/pervfi/download.py", "python -m pervfi.download"),  # python -m pervfi.download
    ("", "python -m pervfi.download"),
])
def test_usage_names_the_command_as_run(monkeypatch, capsys, argv0, shown):
    monkeypatch.setattr(sys, "argv", [argv0])
    with pytest.raises(SystemExit):
        main(["--help"])
    assert capsys.readouterr().out.startswith(f"usage: {shown} [-h]")


# -- weight files from their authors' site (softmax splatting's network-lf.pytorch) ------------

LF_PATH = "softsplat/network-lf.pytorch"


def _lf_file(hub_url: str, monkeypatch, sha256=None) -> bytes:
    """A small state dict served as network-lf at `hub_url` (the registry entry pointed there)."""
    entry = registry.get_file("network-lf")
    moved = dataclasses.replace(entry, url=f"{hub_url}/{LF_PATH}", sha256=sha256)
    monkeypatch.setattr(registry, "_files", lambda: {"network-lf": moved})
    return serialized({"moduleSynthesis.moduleEncode.moduleOne.0.weight": torch.ones(2, 3)})


def test_a_weight_file_downloads_from_its_site_on_first_use_only(tmp_path, monkeypatch, capsys):
    with HubServer(HUB_REPO, {}) as hub:
        data = _lf_file(hub.url, monkeypatch)
        hub.plain[LF_PATH] = data
        assert main(["--ckpt-dir", str(tmp_path), "network-lf"]) == 0
        assert main(["--ckpt-dir", str(tmp_path), "network-lf"]) == 0
    target = tmp_path / "network-lf.pytorch"  # where the authors' loader reads it: checkpoints/network-lf.pytorch
    assert target.read_bytes() == data and hub.count("GET", LF_PATH) == 1
    assert capsys.readouterr().out.split() == [str(target)] * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temporary file left


@pytest.mark.parametrize("failure", ["offline", "cut", "checksum", "absent"])
def test_a_weight_file_that_cannot_be_had_is_one_line_naming_it_and_where_to_put_it(tmp_path, monkeypatch, failure):
    with HubServer(HUB_REPO, {}) as hub:
        data = _lf_file(hub.url, monkeypatch, sha256="0" * 64 if failure == "checksum" else None)
        if failure != "absent":
            hub.plain[LF_PATH] = data
        if failure == "cut":
            hub.cut_after[LF_PATH] = 10
        if failure == "offline":
            monkeypatch.setattr(weight_files, "is_offline_mode", lambda: True)
        with pytest.raises(CheckpointError) as err:
            weight_files.fetch_weight_file("network-lf", tmp_path)
    message, target = str(err.value), tmp_path / "network-lf.pytorch"
    assert "\n" not in message and str(target) in message, message
    if failure != "checksum":
        assert f"download {hub.url}/{LF_PATH} and save it as {target}" in message, message
    assert list(tmp_path.iterdir()) == []  # nothing half-written under the final name or beside it
    if failure == "offline":
        assert hub.requests == []
