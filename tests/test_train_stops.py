"""How training stops and what it tells (issue 26): a real SIGINT or SIGTERM in the middle of a
save leaves no partial file and keeps the last complete state; a run that fails before its
first step leaves nothing; a run that cannot validate says why; fine-tuning offline works with
the perceptual term off, and a missing checkpoint names training's own way out."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pervfi.train import __main__ as train_cli
from pervfi.train import state as train_state
from pervfi.train.logs import read_rows
from tests.media import moving_frames, write_frames
from tests.train_data import make_frames, make_vimeo, tiny_run_overrides

ROOT = Path(__file__).resolve().parents[1]
TINY = [*tiny_run_overrides(), "loss.per=0"]  # no VGG19

# Runs the training command with torch.save slowed down: on its SAVE-th call the file has been
# written under its temporary name when the process sends itself SIGNAL, as a user or a scheduler
# would at that moment; the handler then unwinds from inside the save.
SIGNAL_IN_SAVE = """
import os, signal, sys, time, torch
from pervfi.train import __main__ as train_cli
calls, real_save = [0], torch.save
def save(obj, target, *args, **kwargs):
    real_save(obj, target, *args, **kwargs)
    calls[0] += 1
    if calls[0] == int(os.environ["SAVE"]):
        os.kill(os.getpid(), getattr(signal, os.environ["SIGNAL"]))
        time.sleep(30)
torch.save = save
sys.exit(train_cli.main(sys.argv[1:]))
"""


def cli(*args: str, capsys) -> tuple[int, str]:
    status = train_cli.main(["--quiet", *args])
    return status, capsys.readouterr().err


def leftovers(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if ".partial" in path.name)


@pytest.mark.parametrize("name, status, last_line", [
    ("SIGINT", 130, "interrupted: the last complete state is kept; continue with --resume latest"),
    ("SIGTERM", 143, "terminated (SIGTERM): the last complete state is kept; continue with --resume latest"),
])
def test_a_signal_in_the_middle_of_a_save_leaves_no_partial_file(tmp_path, name, status, last_line) -> None:
    vimeo, out = make_vimeo(tmp_path / "vimeo"), tmp_path / "run"
    # saves per step: the state's generator, its training.pt, then model/PerVFI/vb.pth; the 6th
    # call is step 2's model file, the one the issue found left as .vb.pth.partial
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SAVE": "6", "SIGNAL": name, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SIGNAL_IN_SAVE, "--quiet", "--config", "vb", "--root", str(vimeo),
                           "--out", str(out), *TINY], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == status, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == last_line
    assert leftovers(out) == []
    assert [path.name for path in train_state.complete_states(out)] == ["step-00000001", "step-00000002"]
    assert train_state.generator_file(out / "model", "vb").is_file()  # step 1's, whole


def _small_frames(root: Path, count: int = 10) -> Path:
    write_frames(root / "clip", moving_frames(count, 64, 96))  # 96×64, W×H
    return root


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "folder-with-a-file"])
def test_a_run_that_fails_before_its_first_step_leaves_nothing(tmp_path, capsys, existing) -> None:
    frames, out = _small_frames(tmp_path / "frames"), tmp_path / "run"
    if existing:
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    status, err = cli("--config", "vb", "--dataset", "frames", "--root", str(frames), "--out", str(out), *TINY,
                      "data.crop=128", "data.flows=[dis]", capsys=capsys)
    assert status == 2 and "frames of 96×64 are smaller than the 128×128 crop (data.crop)" in err, err
    assert sorted(path.name for path in out.iterdir()) == ["notes.txt"] if existing else not out.exists()


def test_a_corrupt_frame_found_in_the_first_batch_leaves_nothing(tmp_path, capsys) -> None:
    frames, out = make_frames(tmp_path / "frames", count=6), tmp_path / "run"
    damaged = sorted((frames / "seq0").iterdir())[2]
    damaged.write_bytes(damaged.read_bytes()[:100])
    status, err = cli("--config", "vb", "--dataset", "frames", "--root", str(frames), "--out", str(out), *TINY,
                      "data.flows=[dis]", "data.val_fraction=0", capsys=capsys)
    assert status == 2 and damaged.name in err, err
    assert not out.exists()


@pytest.mark.parametrize("overrides, reason", [
    (["log.val_every=1"], "no validation: {root} has no validation triplets: data.val_fraction 0.1 holds out fewer "
                          "than the 3 frames of a triplet (gap 1) at the end of each sequence; raise "
                          "data.val_fraction (or set log.val_every=0 to train without it)"),
    (["log.val_every=100", "data.val_fraction=0.3"],
     "no validation: it runs every 100 steps (log.val_every) and this run stops at step 1; set log.val_every to "
     "at most 1 (or set log.val_every=0 to train without it)"),
], ids=["no-held-out-triplet", "stops-before-the-first"])
def test_a_run_that_cannot_validate_says_why(tmp_path, capsys, overrides, reason) -> None:
    """The issue's case: a 10-frame clip with the default data.val_fraction validates never."""
    frames, out = _small_frames(tmp_path / "frames"), tmp_path / "run"
    status, err = cli("--config", "vb", "--dataset", "frames", "--root", str(frames), "--out", str(out), *TINY,
                      "data.flows=[dis]", "train.stop_after=1", *overrides, capsys=capsys)
    assert status == 0, err
    assert err.strip().splitlines() == [f"warning: {reason.format(root=frames)}"]
    assert not (out / "val.csv").exists()


def test_fine_tuning_offline_with_the_perceptual_term_off(tmp_path, capsys, monkeypatch) -> None:
    """loss.per=0: no VGG19 is loaded (its loader would fail here), and the logs carry no per term."""

    def no_vgg19():
        raise AssertionError("VGG19 was asked for")

    monkeypatch.setattr("pervfi.train.step.imagenet_perceptual_loss", no_vgg19)
    out = tmp_path / "run"
    status, err = cli("--config", "vb", "--root", str(make_vimeo(tmp_path / "vimeo")), "--out", str(out), *TINY,
                      "train.stop_after=2", capsys=capsys)
    assert (status, err) == (0, "")
    rows = read_rows(out)
    assert len(rows) == 2 and all("per" not in row and row["lap"] > 0 for row in rows)


@pytest.mark.parametrize("overrides, way_out", [
    ([], "  or estimate the flows with DIS, which needs no weights (data.flows=[dis])"),
    (["data.flows=[dis]"], "  or start as the authors' from-scratch training does (--init scratch)"),
])
def test_missing_weights_name_the_training_commands_own_way_out(tmp_path, capsys, monkeypatch, overrides,
                                                               way_out) -> None:
    """The README's fine-tune command offline: RAFT's weights, then v00's, are missing."""
    monkeypatch.setattr("pervfi.models.checkpoints.is_offline_mode", lambda: True)
    frames = _small_frames(tmp_path / "frames")
    status, err = cli("--config", "finetune", "--dataset", "frames", "--root", str(frames),
                      "--out", str(tmp_path / "run"), f"checkpoint_dir={tmp_path / 'none'}", *overrides,
                      capsys=capsys)
    lines = err.strip().splitlines()
    assert status == 2 and lines[0].startswith("error: missing checkpoint") and "HF_HUB_OFFLINE is set" in lines[0]
    assert lines[-1] == way_out and "-m dis+splat" not in err
    assert not (tmp_path / "run").exists()


def test_a_negative_or_inapplicable_loss_weight_is_refused(tmp_path, capsys) -> None:
    root = str(tmp_path)
    for override, message in (("loss.per=-1", "loss.per must not be negative, got -1"),
                              ("loss.nll=1", "loss.nll applies to v00 (its normalizing flow's likelihood); vb has none")):
        status, err = cli("--config", "vb", "--root", root, override, capsys=capsys)
        assert status == 2 and err.strip() == f"error: {message}", err
