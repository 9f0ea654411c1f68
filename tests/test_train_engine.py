"""The training engine (issue 15): resume equals an uninterrupted run, 2 processes equal 1,
an interrupted save keeps the last complete state, checkpoints load where the official ones
do, bad input is one line and exit status 2. Runs are tiny: 64×64 crops, 2–3 steps of vb."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import pervfi
from pervfi.train import __main__ as train_cli
from pervfi.train import state as train_state
from pervfi.train.logs import read_rows
from tests.train_data import TinyPerceptual, make_frames, make_vimeo, scratch_checkpoint_dir, tiny_run_overrides
from tests.train_worker import run

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
TINY = tiny_run_overrides()


def weights(out: Path, model: str = "vb") -> dict[str, torch.Tensor]:
    return torch.load(train_state.generator_file(out / "model", model), weights_only=True)


@pytest.fixture(scope="module")
def vimeo(tmp_path_factory) -> Path:
    return make_vimeo(tmp_path_factory.mktemp("vimeo"))


def config(vimeo: Path, out: Path, *extra: str) -> list[str]:
    return [*TINY, f"data.root={vimeo}", f"out={out}", *extra]


def test_resume_after_an_interrupted_save_equals_the_uninterrupted_run(vimeo, tmp_path, monkeypatch) -> None:
    """3 steps in one run == 1 step, a crash while saving step 2, resume latest, 2 more steps
    (crossing an epoch: 4 training clips make 2 steps per epoch). The straight run loads its
    data in a worker process, the other in the training process: samples do not depend on it."""
    straight = run("vb", config(vimeo, tmp_path / "straight", "train.stop_after=3", "data.workers=1"))

    broken = tmp_path / "broken"
    real_save = torch.save

    def crash_on_step_2(obj, path, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("step") == 2:
            Path(path).write_bytes(b"half a file")
            raise KeyboardInterrupt
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(train_state.torch, "save", crash_on_step_2)
    with pytest.raises(KeyboardInterrupt):
        run("vb", config(vimeo, broken, "train.stop_after=3"))
    monkeypatch.setattr(train_state.torch, "save", real_save)
    assert [p.name for p in train_state.complete_states(broken)] == ["step-00000001"]
    assert train_state.find_state(broken, "latest").name == "step-00000001"

    run("vb", config(vimeo, broken, "train.stop_after=3"), resume="latest")
    expected, got = weights(straight), weights(broken)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    assert read_rows(broken) == read_rows(straight)
    assert [row["step"] for row in read_rows(broken)] == [1, 2, 3]
    # only the newest `keep` states remain, each complete
    assert [p.name for p in train_state.complete_states(broken)] == ["step-00000002", "step-00000003"]


def test_the_recipe_schedule_the_saved_state_and_validation(vimeo, tmp_path) -> None:
    out = run("vb", config(vimeo, tmp_path / "run", "train.stop_after=1", "train.epochs=4", "log.val_every=1",
                           "log.metrics=[psnr,ssim]", "log.best=psnr"))
    saved = torch.load(train_state.complete_states(out)[-1] / train_state.STATE_FILE, weights_only=True)
    scheduler = saved["scheduler"]
    assert scheduler["total_steps"] == 4 * 2  # every step of every epoch (4 clips, batch 2)
    assert scheduler["cycle_momentum"] and scheduler["_anneal_func_type"] == "cos"
    group = saved["optimizer"]["param_groups"][0]
    assert group["max_lr"] == 5e-4 and group["initial_lr"] == 5e-4 / 25  # OneCycleLR's default div_factor
    assert group["weight_decay"] == 0.01 and group["betas"][1] == 0.999  # AdamW's defaults
    assert group["betas"][0] < 0.95  # momentum cycled down from max_momentum 0.95 during warm-up
    assert len(saved["rng"]) == 1 and set(saved["rng"][0]) >= {"torch", "numpy", "python"}

    # validation: the held-out clips at full size, scored as pervfi.evaluate scores them
    from pervfi.metrics.pixel import psnr, ssim
    from pervfi.train.datasets import VimeoTriplets
    from pervfi.train.loading import unit_range

    generator = pervfi.build_generator("vb")
    generator.load_state_dict(torch.load(train_state.generator_file(out / "best-psnr", "vb"), weights_only=True))
    tree, scores = VimeoTriplets(vimeo, ["raft"]), []
    for clip in tree.split("val"):
        s = tree.load(clip)
        img0, img1, gt = (unit_range(frame)[None] for frame in (s.img0, s.img1, s.gt))
        with torch.no_grad():
            pred = generator.eval().interpolate(img0, img1, s.flow01[None], s.flow10[None]).clamp(0, 1)
        assert pred.shape[-2:] == (64, 96)
        scores.append((psnr(pred, gt).item(), ssim(pred, gt).item()))
    start, row = read_rows(out, "val")  # before the first step, and after it
    assert (start["step"], row["step"]) == (0, 1) and start["psnr"] != row["psnr"]
    best = train_state.read_best(out, "psnr")
    assert best["value"] == max(start["psnr"], row["psnr"]) and best["step"] in (0, 1)
    assert best["value"] == pytest.approx(sum(p for p, _ in scores) / 2, abs=1e-4)
    assert best["scores"]["ssim"] == pytest.approx(sum(q for _, q in scores) / 2, abs=1e-5)
    assert train_state.read_best(out, "ssim") is None  # log.best names psnr only
    assert (out / "curves.png").stat().st_size > 0 and (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    # pervfi.evaluate loads the best generator from the run folder as it loads the official one
    from pervfi.evaluate import evaluate

    summary = evaluate("dis+vb", "vimeo90k", vimeo, checkpoint_dir=str(out / "best-psnr"), metrics=["psnr"],
                       device="cpu", download=False)
    assert summary["samples"] == 2


@pytest.mark.slow
@pytest.mark.heavy
def test_two_processes_take_the_step_of_one_with_the_whole_batch(vimeo, tmp_path) -> None:
    """v00 from scratch at the recipe's learning rate, one process with the batch of 2 against two
    gloo processes with one sample each: the first step's gradients (before any update: every
    ActNorm initialised from the global batch, the heat of the global batch, DDP's average), and
    the logged losses of both steps. Without DDP's all-reduce, or with ActNorm's initialisation
    from each process's own share, the gradients differ by far more than the bound."""
    args = config(vimeo, tmp_path / "one", "train.stop_after=2")
    single = run("v00", args, grads=tmp_path / "grads-one")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(ROOT / "tests" / "train_worker.py"), "v00", *config(vimeo, tmp_path / "two", "train.stop_after=2"),
               f"--grads={tmp_path / 'grads-two'}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    one = torch.load(tmp_path / "grads-one-rank0.pt", weights_only=True)
    ranks = [torch.load(tmp_path / f"grads-two-rank{r}.pt", weights_only=True) for r in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(*ranks, strict=True))  # DDP: the same average everywhere
    flat_one, flat_two = (torch.cat([g.flatten() for g in grads]) for grads in (one, ranks[0]))
    assert flat_one.norm() > 0 and (flat_two - flat_one).norm() <= 1e-4 * flat_one.norm()
    for g_one, g_two in zip(one, ranks[0], strict=True):
        assert (g_two - g_one).norm() <= 1e-3 * g_one.norm() + 1e-9
    for row_one, row_two in zip(read_rows(single), read_rows(tmp_path / "two"), strict=True):
        assert row_one["lr"] == row_two["lr"]
        for column in ("total", "nll", "lap", "per", "grad_norm"):
            assert abs(float(row_two[column]) - float(row_one[column])) <= 1e-4 * abs(float(row_one[column])), column
    saved = torch.load(train_state.complete_states(tmp_path / "two")[-1] / train_state.STATE_FILE, weights_only=True)
    assert saved["world"] == 2 and len(saved["rng"]) == 2


def cli(*args: str, capsys) -> tuple[int, str]:
    status = train_cli.main(["--quiet", *args])
    return status, capsys.readouterr().err


def assert_one_line(status: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_missing_root_unknown_layout_and_unknown_key(tmp_path, capsys) -> None:
    assert_one_line(*cli("--config", "vb", "--root", str(tmp_path / "none"), capsys=capsys), "none", "does not exist")
    (tmp_path / "clips").mkdir()
    assert_one_line(*cli("--config", "vb", "--root", str(tmp_path / "clips"), capsys=capsys),
                    "not a Vimeo90K", "tri_trainlist.txt")
    assert_one_line(*cli("--config", "vb", "--root", str(tmp_path), "train.max_lrr=1", capsys=capsys),
                    "unknown config key train.max_lrr")
    videos = tmp_path / "videos"
    make_frames(videos, count=3)
    assert_one_line(*cli("--config", "vb", "--dataset", "videos", "--root", str(videos), capsys=capsys),
                    "seq0", "--dataset frames")


@pytest.mark.parametrize("damaged", ["sequences/00001/0001/im1.png", "optical_flows/raft/00001/0001/fflow.png"])
def test_a_corrupt_frame_or_flow_file_is_named(tmp_path, damaged, capsys, monkeypatch) -> None:
    monkeypatch.setattr("pervfi.train.step.imagenet_perceptual_loss", TinyPerceptual)  # no VGG19 download
    vimeo = make_vimeo(tmp_path / "vimeo", train=2, methods=("raft",))
    (vimeo / damaged).write_bytes((vimeo / damaged).read_bytes()[:100])
    status, err = cli("--config", "vb", "--root", str(vimeo), "--out", str(tmp_path / "run"),
                      *TINY, "data.flows=raft", capsys=capsys)
    assert_one_line(status, err, damaged.rsplit("/", 1)[-1], "00001/0001")
    assert not train_state.complete_states(tmp_path / "run")


def test_a_checkpoint_of_the_wrong_model_and_a_run_folder_in_use(vimeo, tmp_path, capsys, monkeypatch) -> None:
    vb_file = tmp_path / "vb.pth"
    torch.save(pervfi.build_generator("vb").state_dict(), vb_file)
    assert_one_line(*cli("--config", "v00", "--root", str(vimeo), "--init", str(vb_file), *TINY, capsys=capsys),
                    str(vb_file), "does not fit model 'v00'")
    monkeypatch.setattr("pervfi.train.step.imagenet_perceptual_loss", TinyPerceptual)  # no VGG19 download
    vb_run = tmp_path / "vb-run"
    assert cli("--config", "vb", "--root", str(vimeo), "--out", str(vb_run), *TINY, "train.stop_after=1",
               capsys=capsys) == (0, "")  # a run through the command line; --quiet: nothing on stderr
    assert train_state.generator_file(vb_run / "model", "vb").is_file()
    assert_one_line(*cli("--config", "v00", "--root", str(vimeo), "--out", str(vb_run), "--resume", "latest",
                         *TINY, capsys=capsys), "model 'vb', not 'v00'")
    # a resume that changes what shapes the run is refused, naming the keys, unless overridden
    assert_one_line(*cli("--config", "vb", "--root", str(vimeo), "--out", str(vb_run), "--resume", "latest",
                         *TINY, "train.max_lr=1e-4", "train.stop_after=2", capsys=capsys),
                    "train.max_lr (0.0005 → 0.0001)", "--resume-override")
    assert [p.name for p in train_state.complete_states(vb_run)] == ["step-00000001"]
    assert cli("--config", "vb", "--root", str(vimeo), "--out", str(vb_run), "--resume", "latest", "--resume-override",
               *TINY, "train.max_lr=1e-4", "train.stop_after=2", capsys=capsys)[0] == 0
    saved = torch.load(train_state.complete_states(vb_run)[-1] / train_state.STATE_FILE, weights_only=True)
    assert saved["step"] == 2 and saved["optimizer"]["param_groups"][0]["max_lr"] == 1e-4
    before = weights(vb_run)  # a new run into a used folder would mix two runs' states and logs
    assert_one_line(*cli("--config", "vb", "--root", str(vimeo), "--out", str(vb_run), *TINY, capsys=capsys),
                    str(vb_run), "--resume latest")
    after = weights(vb_run)
    assert all(torch.equal(before[key], after[key]) for key in before)


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"needs the shared frames in {SHARED_DATA}")
def test_fine_tuning_on_frames_lowers_the_loss_and_infer_video_uses_the_result(tmp_path) -> None:
    """The shipped finetune config on ../shared/data's Sintel frames (flows by DIS on the fly),
    for vb from scratch since the tests have no official weights; the loss of one fixed batch
    drops, and infer_video.py interpolates with the checkpoint written."""
    from pervfi.train import load_config, training_loss
    from pervfi.train.engine import build_source
    from pervfi.train.loading import TrainingSamples, batch_loader
    from pervfi.train.order import DataOrder

    overrides = ["device=cpu", "model=vb", "init=scratch", "data.flows=dis", "data.crop=64", "data.val_fraction=0",
                 "train.batch_size=2", "train.epochs=1", "train.stop_after=3", "train.max_lr=1e-3",
                 "log.val_every=0", f"data.root={SHARED_DATA / 'sintel-market-10'}", f"out={tmp_path / 'run'}",
                 f"checkpoint_dir={scratch_checkpoint_dir()}"]
    cfg = load_config("finetune", overrides)
    samples = TrainingSamples(build_source(cfg, torch.device("cpu")), "vb", seed=7, crop=64)
    batch = next(batch_loader(samples, DataOrder(len(samples), 2, seed=7).batches(0, 1), workers=0))
    noise = batch.pop("noise")

    def fixed_batch_loss(generator: torch.nn.Module) -> float:
        torch.manual_seed(0)
        return training_loss(generator.train(), batch, "vb", noise=noise, perceptual=TinyPerceptual())["total"].item()

    torch.manual_seed(cfg["train"]["seed"])
    before = fixed_batch_loss(pervfi.build_generator("vb"))
    out = run("finetune", overrides)
    tuned = pervfi.build_generator("vb")
    tuned.load_state_dict(weights(out, "vb"))
    assert fixed_batch_loss(tuned) < before

    frames = tmp_path / "frames"
    frames.mkdir()
    for path in sorted((SHARED_DATA / "sintel-market-10").glob("*.png"))[:2]:
        Image.fromarray(pervfi.read_frame(path)[:64, :96]).save(frames / path.name)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "infer_video.py"), "-m", "dis+vb", "-data", str(frames),
                           "-s", str(tmp_path / "output"), "--ckpt-dir", str(out / "model"), "--png", "--quiet",
                           "--device", "cpu", "--seed", "0"],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list((tmp_path / "output").rglob("*.png"))) == 3



def test_init_from_the_official_weights_or_a_file(ckpt_dir, tmp_path) -> None:
    from pervfi.models.checkpoints import read_state_dict
    from pervfi.train import load_config
    from pervfi.train.engine import build_initial_generator

    official = read_state_dict(ckpt_dir / "PerVFI" / "vb.pth")
    for init in ("vb", str(ckpt_dir / "PerVFI" / "vb.pth")):
        generator = build_initial_generator(load_config("vb", [f"init={init}", f"checkpoint_dir={ckpt_dir}"]))
        assert generator.training
        state = generator.state_dict()
        assert all(torch.equal(state[key], official[key]) for key in official)
    with pytest.raises(pervfi.InputError, match="official v00 checkpoint, which does not fit model 'vb'"):
        build_initial_generator(load_config("vb", ["init=v00", f"checkpoint_dir={ckpt_dir}"]))
    with pytest.raises(pervfi.InputError, match="no such file"):
        build_initial_generator(load_config("vb", [f"init={tmp_path / 'none.pth'}"]))


def test_precision_follows_the_device(monkeypatch) -> None:
    from pervfi.runtime.precision import resolve_precision

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))  # a T4: no native bf16
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True})
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert resolve_precision("auto", cpu, training=True) == "fp32"
    assert resolve_precision("auto", cuda, training=True) == "fp32"  # the inference policy: never emulated bf16
    assert resolve_precision("bf16", cuda, training=True) == resolve_precision("bf16", cpu, training=True) == "bf16"
    with pytest.raises(pervfi.InputError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", cpu, training=True)


@pytest.mark.slow
def test_sigterm_stops_training_like_ctrl_c(vimeo, tmp_path) -> None:
    """SIGTERM (how Slurm and Kubernetes stop a job) ends the command as Ctrl-C does: its line,
    exit status 143, the last complete state kept and nothing half-written beside it."""
    import signal
    import time

    out = tmp_path / "run"
    script = ("import sys; import pervfi.train.step as step; from tests.train_data import TinyPerceptual; "
              "step.imagenet_perceptual_loss = TinyPerceptual; from pervfi.train.__main__ import main; "
              "sys.exit(main(sys.argv[1:]))")
    command = [sys.executable, "-c", script, "--config", "vb", "--quiet",
               *config(vimeo, out, "train.epochs=1000", "log.keep=1000")]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 180
    while len(train_state.complete_states(out)) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == ("terminated (SIGTERM): the last complete state is kept; "
                                               "continue with --resume latest")
    assert len(train_state.complete_states(out)) >= 2
    assert not [path for path in out.rglob("*") if ".partial" in path.name]
