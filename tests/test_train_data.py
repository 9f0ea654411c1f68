"""Training data (issue 15): the reference's flow files, the shared augmentation, the shuffled
order that does not depend on the number of processes, the configs, the flows tool."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pervfi.core.errors import InputError
from pervfi.train import load_config
from pervfi.train.augment import Triplet, augment, color_jitter, draw_jitter, sample_rng
from pervfi.train.datasets import VimeoTriplets
from pervfi.train.flow_files import read_flow, write_flow
from pervfi.train.flows import main as flows_main
from pervfi.train.order import DataOrder
from tests.train_data import SHIFT, make_frames, make_vimeo


def reference_write(path: Path, uv: np.ndarray) -> None:
    """The authors' writeFlowKITTI (src/train/utils/image_utils.py), restated."""
    coded = np.concatenate([128.0 * uv + 2**15, np.ones(uv.shape[:2] + (1,))], axis=-1).astype(np.uint16)
    cv2.imwrite(str(path), coded[..., ::-1])


def test_flow_files_are_the_reference_format(tmp_path) -> None:
    flow = np.random.default_rng(0).uniform(-40, 40, (12, 20, 2)).astype(np.float32)
    reference_write(tmp_path / "ref.png", flow)
    write_flow(tmp_path / "ours.png", flow)
    assert np.array_equal(cv2.imread(str(tmp_path / "ours.png"), cv2.IMREAD_UNCHANGED),
                          cv2.imread(str(tmp_path / "ref.png"), cv2.IMREAD_UNCHANGED))
    read = read_flow(tmp_path / "ref.png")  # a file of the authors' script reads back
    assert read.shape == (12, 20, 2) and np.abs(read - flow).max() <= 1 / 128


def test_a_file_that_is_not_a_flow_is_named(tmp_path) -> None:
    cv2.imwrite(str(tmp_path / "eight_bit.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError, match="eight_bit.png.*16-bit"):
        read_flow(tmp_path / "eight_bit.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError, match="broken.png"):
        read_flow(tmp_path / "broken.png")


def coordinate_sample(height: int = 40, width: int = 48) -> Triplet:
    """Frames of a fixed picture and flows whose values are their own pixel coordinates."""
    picture = torch.randint(0, 256, (3, height, width), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    coords = torch.stack([xs, ys]).float()
    return Triplet(picture, picture // 2, picture // 4, coords, coords + 1000)


def test_one_jitter_and_one_crop_for_frames_and_flows() -> None:
    sample = coordinate_sample()
    reversed_seen = kept_seen = 0
    for position in range(20):
        out = augment(sample, sample_rng(3, 0, position), crop=32)
        assert out.img0.shape == (3, 32, 32) and out.flow01.shape == (2, 32, 32)
        reverse = bool(out.flow01[0, 0, 0] >= 1000)
        flow01 = out.flow10 if reverse else out.flow01
        left, top = int(flow01[0, 0, 0]), int(flow01[1, 0, 0])  # where the window lies
        factors, order = draw_jitter(sample_rng(3, 0, position))  # the crop first, then the jitter
        window = color_jitter(tuple(frame[..., top:top + 32, left:left + 32]
                                    for frame in (sample.img0, sample.img1, sample.gt)), factors, order)
        first, second = (window[1], window[0]) if reverse else (window[0], window[1])
        assert torch.equal(out.img0, first) and torch.equal(out.img1, second) and torch.equal(out.gt, window[2])
        torch.testing.assert_close((out.flow10 if reverse else out.flow01) + 1000,
                                   out.flow01 if reverse else out.flow10)
        reversed_seen += reverse
        kept_seen += not reverse
    assert reversed_seen and kept_seen  # temporal reversal happens, about half the time


def test_the_order_is_shuffled_per_epoch_and_split_over_processes() -> None:
    order = DataOrder(size=10, batch_size=4, seed=0)
    assert order.steps_per_epoch == 2  # the incomplete batch is dropped
    epoch0 = [key.index for step in range(2) for key in order.batch(step)]
    epoch1 = [key.index for step in range(2, 4) for key in order.batch(step)]
    assert epoch0 != sorted(epoch0) and epoch0 != epoch1  # shuffled, anew each epoch
    assert len(set(epoch0)) == 8 and set(epoch0) <= set(range(10))
    for step in range(4):
        split = order.batch(step, 0, 2) + order.batch(step, 1, 2)
        assert split == order.batch(step)
    assert [k.index for k in DataOrder(10, 4, seed=0).batch(3)] == [k.index for k in order.batch(3)]
    assert [k.index for k in DataOrder(10, 4, seed=1).batch(0)] != [k.index for k in order.batch(0)]


def test_the_shipped_recipes() -> None:
    v00, vb, finetune = load_config("v00"), load_config("vb"), load_config("finetune")
    for config, epochs in ((v00, 96), (vb, 64)):
        assert config["train"]["epochs"] == epochs
        assert (config["train"]["batch_size"], config["train"]["max_lr"], config["train"]["grad_clip"]) == (16, 5e-4, 0.1)
        assert config["data"]["crop"] == 256 and config["data"]["flows"] == ["raft", "gmflow"]
    assert (v00["model"], vb["model"]) == ("v00", "vb")
    assert finetune["init"] == "v00" and finetune["data"]["dataset"] == "frames"


def test_config_errors_name_the_key(tmp_path) -> None:
    with pytest.raises(InputError, match="unknown config key train.lr"):
        load_config("v00", ["train.lr=1"])
    with pytest.raises(InputError, match="train.epochs must be an integer"):
        load_config("v00", ["train.epochs=many"])
    with pytest.raises(InputError, match="model must be one of v00, vb"):
        load_config("v00", ["model=v01"])
    (tmp_path / "mine.yaml").write_text("base: vb\ndata:\n  crops: 128\n")
    with pytest.raises(InputError, match=r"unknown config key data.crops in .*mine.yaml"):
        load_config(tmp_path / "mine.yaml")
    (tmp_path / "mine.yaml").write_text("base: vb\ntrain:\n  max_lr: 1e-4\n")
    assert load_config(tmp_path / "mine.yaml")["train"]["max_lr"] == 1e-4


def test_the_flows_tool_writes_the_reference_tree(tmp_path, capsys) -> None:
    root = make_vimeo(tmp_path / "vimeo", train=2, test=1, methods=())
    assert flows_main(["--root", str(root), "--estimator", "dis", "--quiet"]) == 0
    tree = VimeoTriplets(root, ["dis"])
    for clip in tree.split("train") + tree.split("val"):
        sample = tree.load(clip)
        forward = sample.flow01.flatten(1).median(dim=1).values
        torch.testing.assert_close(forward, torch.tensor([2.0 * SHIFT[0], 2.0 * SHIFT[1]]), atol=0.5, rtol=0)
        torch.testing.assert_close(sample.flow10.flatten(1).median(dim=1).values, -forward, atol=0.5, rtol=0)
    assert flows_main(["--root", str(root), "--estimator", "nope", "--quiet"]) == 2
    assert "unknown flow model 'nope'" in capsys.readouterr().err


def test_videos_become_triplets_with_the_end_held_out(tmp_path) -> None:
    from pervfi.train.datasets import FootageTriplets
    from tests.media import moving_frames, write_video

    frames = moving_frames(8, 32, 48, step=2)
    write_video(tmp_path / "clip.mp4", frames)
    calls = []

    def flows() -> object:
        def estimate(img0: torch.Tensor, img1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            calls.append(img0.shape)
            return torch.zeros(1, 2, 32, 48), torch.ones(1, 2, 32, 48)
        return estimate

    source = FootageTriplets(tmp_path, "videos", gaps=[1, 2], val_fraction=0.5, flows=flows, estimator="dis",
                             cache=tmp_path / "cache")
    assert [t.indices for t in source.split("train")] == [(0, 1, 2), (1, 2, 3)]  # frames 0..3 train
    assert [t.indices for t in source.split("val")] == [(4, 5, 6), (5, 6, 7)]  # frames 4..7 validate
    assert len(calls) == 4  # every pair's flows estimated before training starts, once
    for triplet in source.split("train") * 2:
        sample = source.load(triplet)
        for tensor, index in zip((sample.img0, sample.gt, sample.img1), triplet.indices):
            assert tensor.dtype == torch.uint8
            expected = torch.from_numpy(frames[index]).permute(2, 0, 1)
            assert (tensor.int() - expected.int()).abs().max() <= 3
        assert sample.flow10.min() == 1
    assert len(calls) == 4  # then read from the cache folder
    pairs = ("000000-000002", "000001-000003", "000004-000006", "000005-000007")
    assert sorted(p.relative_to(tmp_path / "cache").as_posix() for p in (tmp_path / "cache").rglob("*.png")) == [
        f"clip/{pair}/{name}" for pair in pairs for name in ("bflow.png", "fflow.png")]
    again = FootageTriplets(tmp_path, "videos", gaps=[1, 2], val_fraction=0.5, flows=flows, estimator="dis",
                            cache=tmp_path / "cache")
    assert len(again.split("train")) == 2 and len(calls) == 4  # a resumed run reads them back
    with pytest.raises(InputError, match="--dataset frames"):
        FootageTriplets(tmp_path, "frames", gaps=[1], val_fraction=0.0, flows=flows, estimator="dis",
                        cache=tmp_path / "cache")


def test_validation_pads_odd_frames_and_scores_them_whole(tmp_path) -> None:
    """Frames of 60×70 (not multiples of 8) are padded for the generator and scored at full size."""
    import pervfi
    from pervfi.metrics.pixel import psnr
    from pervfi.metrics.suite import MetricSuite
    from pervfi.ops.padding import Padder
    from pervfi.train.datasets import FootageTriplets
    from pervfi.train.loading import unit_range
    from pervfi.train.validation import validate

    root = make_frames(tmp_path / "frames", count=6, height=60, width=70)

    def flows() -> object:
        return lambda img0, img1: (torch.zeros(1, 2, 60, 70), torch.zeros(1, 2, 60, 70))

    source = FootageTriplets(root, "frames", gaps=[1], val_fraction=0.5, flows=flows, estimator="dis",
                             cache=tmp_path / "cache")
    (triplet,) = source.split("val")
    torch.manual_seed(0)
    generator = pervfi.build_generator("vb")
    scores = validate(generator, source, MetricSuite(["psnr"], torch.device("cpu"), offline=True),
                      torch.device("cpu"), seed=0)
    sample = source.load(triplet)
    img0, img1, gt = (unit_range(frame)[None] for frame in (sample.img0, sample.img1, sample.gt))
    with torch.no_grad():
        pred = Padder(60, 70).crop(generator.eval().interpolate(
            *Padder(60, 70).apply(img0, img1, sample.flow01[None], sample.flow10[None])))[0].clamp(0, 1)
    assert pred.shape[-2:] == (60, 70)
    assert scores["psnr"] == pytest.approx(psnr(pred, gt).item(), abs=1e-5)


def test_a_sample_depends_on_its_place_in_the_run_only() -> None:
    """Not on the clock or the global random state (the reference reseeds from the clock)."""
    from pervfi.train.loading import TrainingSamples
    from pervfi.train.order import SampleKey

    class Source:
        methods = ("raft", "gmflow")

        def split(self, name: str) -> list[int]:
            return [0]

        def load(self, item: int, method: int = 0) -> Triplet:
            sample = coordinate_sample(64, 64)
            return Triplet(sample.img0, sample.img1, sample.gt, sample.flow01 + method, sample.flow10)

    samples = TrainingSamples(Source(), "v00", seed=4, crop=32)
    torch.manual_seed(1)
    first = samples[SampleKey(epoch=2, position=5, index=0)]
    torch.manual_seed(2)
    np.random.seed(2)
    again = samples[SampleKey(epoch=2, position=5, index=0)]
    other = samples[SampleKey(epoch=2, position=6, index=0)]
    for name in ("img0", "img1", "gt", "flow01", "flow10"):
        assert torch.equal(first[name], again[name])
    assert all(torch.equal(a, b) for a, b in zip(first["noise"]["zs"], again["noise"]["zs"]))
    assert not torch.equal(first["noise"]["dequant"], other["noise"]["dequant"])
    # the recipe's draws, shaped as the conformance README lists them (coarse to fine masks)
    assert [tuple(m.shape) for m in first["noise"]["masks"]] == [(1, 8, 8), (1, 16, 16), (1, 32, 32)]
    assert all(m.abs().max() <= 0.005 for m in first["noise"]["masks"])
    assert tuple(first["noise"]["dequant"].shape) == (3, 32, 32)
    assert first["noise"]["dequant"].abs().max() <= 0.5 / 255
    assert [tuple(z.shape) for z in first["noise"]["zs"]] == [(6, 16, 16), (12, 8, 8), (48, 4, 4)]
