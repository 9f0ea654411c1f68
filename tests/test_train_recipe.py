"""Where training follows the authors' recipe and where it differs on purpose, one key away
(issue 25): the data order, colour jitter on 8-bit images as PIL computes it, the schedule held
on a step the GradScaler skipped, and configuration values checked when read."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

from pervfi.core.errors import InputError
from pervfi.train.augment import Triplet, augment, color_jitter, draw_jitter, sample_rng
from pervfi.train.config import load_config, shaping_differences
from pervfi.train.order import DataOrder
from pervfi.train.stepper import TrainingStep


def test_the_reference_order_is_the_list_in_its_order_every_epoch() -> None:
    reference, shuffled = DataOrder(10, 4, seed=0, shuffle=False), DataOrder(10, 4, seed=0)
    steps = [[key.index for key in reference.batch(step)] for step in range(4)]
    assert steps == [[0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 2, 3], [4, 5, 6, 7]]  # last 2 dropped, like drop_last
    assert [key.index for key in shuffled.batch(0)] != [0, 1, 2, 3]
    assert [key.index for key in reference.batch(1, rank=1, world=2)] == [6, 7]


def _frames(seed: int = 0, size: tuple[int, int] = (48, 64)) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(0, 256, (3, *size), generator=g, dtype=torch.uint8)
    return base, torch.roll(base, 1, 2), torch.roll(base, 2, 2)


def test_colour_jitter_is_torchvision_s_on_pil_images(monkeypatch) -> None:
    """The authors' transform: ColorJitter(0.05, ...) on each PIL frame with one draw."""
    frames = _frames()
    factors, order = draw_jitter(np.random.default_rng(3))
    ours = color_jitter(frames, factors, order)
    indices = torch.tensor([("brightness", "contrast", "saturation", "hue").index(name) for name in order])
    draw = (indices, factors["brightness"], factors["contrast"], factors["saturation"], factors["hue"])
    monkeypatch.setattr(torchvision.transforms.ColorJitter, "get_params", staticmethod(lambda *args: draw))
    jitter = torchvision.transforms.ColorJitter(0.05, 0.05, 0.05, 0.05)
    for frame, got in zip(frames, ours, strict=True):
        reference = np.asarray(jitter(Image.fromarray(frame.permute(1, 2, 0).numpy())))
        assert got.dtype == torch.uint8 and np.array_equal(got.permute(1, 2, 0).numpy(), reference)


def test_jitter_on_the_frame_then_crop_is_the_reference_and_on_the_crop_differs_only_in_contrast() -> None:
    img0, img1, gt = _frames(size=(80, 96))
    flow = torch.zeros(2, 80, 96)
    sample = Triplet(img0, img1, gt, flow, flow)
    frame = augment(sample, sample_rng(0, 0, 5), 64, jitter="frame")
    crop = augment(sample, sample_rng(0, 0, 5), 64, jitter="crop")
    rng = sample_rng(0, 0, 5)
    factors, order = draw_jitter(rng)
    top, left = int(rng.integers(0, 17)), int(rng.integers(0, 33))
    reversed_ = rng.random() < 0.5
    expected = [f[:, top:top + 64, left:left + 64] for f in color_jitter((img0, img1, gt), factors, order)]
    if reversed_:
        expected[0], expected[1] = expected[1], expected[0]
    assert all(torch.equal(a, b) for a, b in zip((frame.img0, frame.img1, frame.gt), expected))
    difference = (crop.gt.int() - frame.gt.int()).abs()
    assert difference.max() <= 3  # contrast pivots on the crop's grey mean instead of the frame's


class _Scale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3))


class _Loss(nn.Module):
    """total = Σ weight · x: infinite gradients when the batch's x holds an inf."""

    def forward(self, generator: nn.Module, batch: dict, noise=None) -> dict:
        return {"total": (generator.weight * batch["x"]).sum()}


def test_the_schedule_holds_on_a_step_the_grad_scaler_skipped() -> None:
    """accelerate's scheduler does not step when the optimizer step was skipped; neither does ours."""
    model = _Scale()
    step = TrainingStep(model, model, _Loss(), max_lr=1e-2, total_steps=10, grad_clip=1.0,
                        precision=torch.float16, device=torch.device("cpu"))
    assert step.scaler.is_enabled()
    x = [torch.ones(3), torch.tensor([1.0, float("inf"), 1.0]), torch.ones(3), torch.ones(3)]
    rates, weights = [], []
    for batch in x:
        rates.append(step({"x": batch}).lr)
        weights.append(model.weight.detach().clone())
    step.settle()
    assert rates[1] != rates[0] and rates[2] == rates[1] and rates[3] != rates[2]  # held after the skip
    assert torch.equal(weights[1], weights[0]) and not torch.equal(weights[2], weights[1])
    assert step.scheduler.last_epoch == 3  # four steps, one skipped


@pytest.mark.parametrize("override, message", [
    ("log.save_every=0", "log.save_every must be positive, got 0"),
    ("log.log_every=0", "log.log_every must be positive, got 0"),
    ("train.max_lr=-1", "train.max_lr must be positive, got -1.0"),
    ("train.epochs=0", "train.epochs must be positive, got 0"),
    ("data.workers=-2", "data.workers must be 0 or more, got -2"),
])
def test_config_values_are_checked_when_read(override, message, capsys) -> None:
    with pytest.raises(InputError, match=message):
        load_config("v00", [override])
    from pervfi.train import __main__ as train_cli

    assert train_cli.main(["--quiet", "--config", "v00", "--root", "nowhere", override]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_what_shapes_a_run_is_compared_on_resume() -> None:
    saved = load_config("v00")
    assert shaping_differences(saved, load_config("v00", ["train.stop_after=5", "log.keep=2", "data.workers=0"])) == []
    assert shaping_differences(saved, load_config("v00", ["train.max_lr=1e-4", "data.order=reference"])) == [
        "data.order ('shuffle' → 'reference')", "train.max_lr (0.0005 → 0.0001)"]
