"""The memory budget: sizes as users write them, and the tile it chooses (runtime.memory)."""
import logging

import pytest
import torch

from pervfi.cli import build_parser
from pervfi.core.errors import PerVFIError
from pervfi.models.flow import build_flow_estimator
from pervfi.models.generators import build_generator
from pervfi.ops import backward_warp
from pervfi.runtime import interpolator as interpolator_module
from pervfi.runtime import memory
from pervfi.runtime.budget import available_ram, parse_memory, process_ram
from pervfi.runtime.interpolator import Interpolator
from pervfi.runtime.memory import AUTO_TILES, PeakModel, choose_tile, room
from pervfi.runtime.tiling import default_overlap, plan_tiles, with_halo
from tests.seeded_weights import seeded


@pytest.mark.parametrize("text, size", [("8GB", 8 * 10**9), ("8g", 8 * 10**9), ("1.5 GiB", 3 * 2**29),
                                        ("512MB", 512 * 10**6), ("512MiB", 2**29), ("4096", 4096), (".5k", 500)])
def test_sizes_read_as_written(text, size):
    assert parse_memory(text) == size


@pytest.mark.parametrize("text, reason", [("8XB", "not a memory size"), ("GB", "not a memory size"),
                                          ("-1GB", "not a memory size"), ("0MB", "must be positive")])
def test_bad_sizes_are_one_line_errors(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_memory(text)


@pytest.mark.parametrize("argv", [["--max-memory", "lots"], ["--max-memory", "0"], ["--max-memory", "8GB", "--tile", "512"]])
def test_the_tool_refuses_bad_budgets_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(argv)
    assert stop.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


MODEL = PeakModel(encoding=1000, step=7000)


def _halos(halo):
    return lambda regions: [halo] * len(regions)


def test_the_whole_frame_runs_when_it_fits():
    need = MODEL.whole(1080 * 1920, 1, 1)
    assert choose_tile(MODEL, 1080, 1920, 1, 1, 1, int(need), _halos(40), strict=True) is None
    assert choose_tile(MODEL, 1080, 1920, 1, 1, 1, None, _halos(40), strict=True) is None  # unknown: no limit


@pytest.mark.parametrize("space_gb", [10, 12, 16, 24])
def test_the_largest_tile_that_fits_is_chosen(space_gb):
    height, width, times, halo = 2160, 3840, 3, 40
    space = space_gb * 10**9
    tile = choose_tile(MODEL, height, width, 1, 1, times, space, _halos(halo), strict=True)

    def need(size):
        windows = [with_halo(region, halo) for region in plan_tiles(height, width, size, default_overlap(size))]
        return MODEL.tiled(height * width, max(w.height * w.width for w in windows), times)

    assert tile in AUTO_TILES and need(tile) <= space
    assert all(need(larger) > space for larger in AUTO_TILES if larger > tile)


def test_a_budget_too_small_for_any_tile():
    with pytest.raises(PerVFIError, match="2160×3840 frames need about .* GB in tiles of 128 pixels") as error:
        choose_tile(MODEL, 2160, 3840, 1, 1, 1, 10**8, _halos(40), strict=True)
    assert "\n" not in str(error.value)


def test_without_a_budget_too_little_free_memory_warns_and_takes_the_smallest_tile(caplog):
    with caplog.at_level(logging.WARNING, logger="pervfi"):
        assert choose_tile(MODEL, 2160, 3840, 1, 1, 1, 10**8, _halos(40), strict=False) == AUTO_TILES[-1]
    assert "trying anyway" in caplog.text


def test_the_room_is_the_budget_less_what_is_held_or_a_share_of_what_is_free(monkeypatch):
    monkeypatch.setattr(memory, "in_use_and_free", lambda device: (3 * 10**9, 10 * 10**9))
    assert room(torch.device("cpu"), 8 * 10**9) == 5 * 10**9
    assert room(torch.device("cpu"), None) == int(10 * 10**9 * memory.FREE_SHARE)
    monkeypatch.setattr(memory, "in_use_and_free", lambda device: (None, None))
    assert room(torch.device("cpu"), None) is None


def test_the_host_reports_what_this_process_holds_and_what_is_free():
    used, free = process_ram(), available_ram()
    assert used is None or 10**7 < used < 10**12  # None only where there is no /proc
    assert free is None or 0 < free < 10**13


@pytest.mark.usefixtures("without_autograd")
def test_the_interpolator_tiles_when_the_whole_frame_exceeds_its_budget(monkeypatch):
    height, width = 128, 384
    g = torch.Generator().manual_seed(0)
    img0 = torch.nn.functional.interpolate(torch.rand(1, 3, height // 8, width // 8, generator=g),
                                           size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)
    flow = torch.zeros(1, 2, height, width)
    flow[:, 0] = 6.0
    img1 = backward_warp(img0, -flow)
    flows, model = build_flow_estimator("dis"), seeded(build_generator("vb"), 0.65)
    whole = Interpolator(flows, model, device="cpu").interpolate_times(img0, img1, [0.5])
    budget = int(memory.peak_model(model).whole(height * width, 1, 1)) - 1
    monkeypatch.setattr(memory, "in_use_and_free", lambda device: (0, None))
    tiles = []
    tiled_interpolate = interpolator_module.tiled_interpolate
    monkeypatch.setattr(interpolator_module, "tiled_interpolate",
                        lambda *args, **kwargs: tiles.append(args[6]) or tiled_interpolate(*args, **kwargs))
    tiled = Interpolator(flows, model, device="cpu", max_memory=budget).interpolate_times(img0, img1, [0.5])
    assert tiles and tiles[0] in AUTO_TILES
    assert (tiled[0] - whole[0]).abs().mean() < 5e-3


def test_tile_and_budget_are_exclusive():
    with pytest.raises(ValueError, match="not both"):
        Interpolator(build_flow_estimator("dis"), build_generator("splat"), device="cpu", tile=128, max_memory="8GB")
