"""The evaluation run end to end: protocol, summary, resume, unavailable metrics, the
command line and its errors, and the cost measurement."""
from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pervfi.core.errors import OutputError
from pervfi.evaluate import evaluate, measure_cost
from pervfi.evaluate.__main__ import main
from pervfi.evaluate.contenders import ModelMethod
from pervfi.evaluate.cost import cost_table
from pervfi.models.generators import build_generator
from pervfi.runtime.interpolator import Interpolator
from tests.conformance import DATA
from tests.test_evaluate_methods import ZeroFlow


def _write_sequence(folder: Path, count: int, moving: bool = True, width: int = 48, height: int = 40) -> None:
    """Frames of a horizontal ramp that shifts one level per frame (or stands still)."""
    folder.mkdir(parents=True)
    ramp = np.tile(np.arange(width, dtype=np.int64) * 4, (height, 1))
    for index in range(count):
        frame = np.clip(ramp + (index * 7 if moving else 0), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{index:03d}.png"), np.dstack([frame, 255 - frame, frame // 2]))


class Oracle:
    """Returns the true frames; records the times it was asked for."""

    name = "oracle"

    def __init__(self) -> None:
        self.calls: list[list[float]] = []

    def interpolate(self, img0: torch.Tensor, img1: torch.Tensor, times: Sequence[float],
                    references: Sequence[torch.Tensor] = (), generator: torch.Generator | None = None) -> list[torch.Tensor]:
        self.calls.append(list(times))
        return [reference.clone() for reference in references]


def _csv_rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "samples.csv").open(newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_the_video_protocol_scores_the_dropped_frames_only(tmp_path: Path, scale: int) -> None:
    _write_sequence(tmp_path / "data" / "clip", 17)
    oracle = Oracle()
    summary = evaluate(oracle, "sequence", tmp_path / "data", scale=scale, out=tmp_path / "out",
                       metrics=["psnr", "ie"], progress=False)
    rows = _csv_rows(tmp_path / "out")
    expected = [f"clip/{index:03d}.png" for index in range(17) if index % scale]
    assert [row["sample"] for row in rows] == expected
    assert oracle.calls == [[k / scale for k in range(1, scale)]] * (16 // scale)
    assert summary["samples"] == len(expected) and summary["psnr"] == pytest.approx(100.0) and summary["ie"] == 0


def test_video_means_average_each_sequence_then_the_sequences(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "data" / "moving", 9)
    _write_sequence(tmp_path / "data" / "still", 3, moving=False)
    summary = evaluate("repeat", "sequence", tmp_path / "data", metrics=["psnr"], progress=False)
    moving, still = summary["groups"]["moving"], summary["groups"]["still"]
    assert (moving["samples"], still["samples"]) == (4, 1)
    assert still["psnr"] == pytest.approx(100.0) and moving["psnr"] < 40
    assert summary["psnr"] == pytest.approx((moving["psnr"] + still["psnr"]) / 2)


def test_a_rerun_skips_the_samples_already_scored(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "data" / "clip", 9)
    out = tmp_path / "out"
    first = Oracle()
    evaluate(first, "sequence", tmp_path / "data", limit=2, out=out, metrics=["psnr"], progress=False)
    again = Oracle()
    summary = evaluate(again, "sequence", tmp_path / "data", limit=2, out=out, metrics=["psnr"], progress=False)
    assert (len(first.calls), len(again.calls), summary["samples"]) == (2, 0, 2)
    more = Oracle()
    summary = evaluate(more, "sequence", tmp_path / "data", out=out, metrics=["psnr"], progress=False)
    assert (len(more.calls), summary["samples"]) == (2, 4)
    assert len(_csv_rows(out)) == 4
    assert json.loads((out / "summary.json").read_text())["samples"] == 4


def test_an_output_folder_of_another_run_is_not_mixed_in(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "data" / "clip", 9)
    evaluate("average", "sequence", tmp_path / "data", out=tmp_path / "out", metrics=["psnr"], progress=False)
    with pytest.raises(OutputError, match="another run \\(differs in method\\)"):
        evaluate("repeat", "sequence", tmp_path / "data", out=tmp_path / "out", metrics=["psnr"], progress=False)


def test_an_unavailable_perceptual_metric_is_reported_in_the_summary(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _write_sequence(tmp_path / "data" / "clip", 3)
    summary = evaluate("average", "sequence", tmp_path / "data", out=tmp_path / "out", metrics=["psnr", "lpips"],
                       offline=True, progress=False)
    assert summary["lpips"] is None and summary["psnr"] > 0
    assert "weights unavailable" in summary["unavailable"]["lpips"]
    assert _csv_rows(tmp_path / "out")[0]["lpips"] == ""


def test_a_pipeline_method_runs_through_the_evaluation(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "data" / "clip", 5)
    method = ModelMethod("zero+vb", Interpolator(ZeroFlow(), build_generator("vb"), device="cpu"))
    summary = evaluate(method, "sequence", tmp_path / "data", metrics=["psnr", "ssim"], progress=False)
    assert summary["method"] == "zero+vb" and summary["samples"] == 2 and np.isfinite(summary["psnr"])


def _run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("argv,message", [
    (["-m", "average", "--dataset", "kitti", "--root", "."], "unknown dataset 'kitti'"),
    (["-m", "bilinear", "--dataset", "sequence", "--root", "{data}"], "method 'bilinear' is not of the form"),
    (["-m", "average", "--dataset", "sequence", "--root", "{tmp}/nowhere"], "is not a folder"),
    (["-m", "average", "--dataset", "vimeo90k", "--root", "{tmp}"], "no vimeo90k samples found"),
    (["-m", "average", "--dataset", "sequence", "--root", "{data}", "--limit", "0"], "--limit must be at least 1"),
    (["-m", "average", "--dataset", "sequence", "--root", "{data}", "--metrics", "psnr,vmaf"], "unknown metric"),
])
def test_bad_input_prints_one_line_and_exits_2(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    _write_sequence(tmp_path / "data" / "clip", 3)
    argv = [arg.format(tmp=tmp_path, data=tmp_path / "data") for arg in argv]
    code, out, err = _run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.strip().startswith("error:") and message in err and err.strip().count("\n") == 0


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "sequence", "--root", ".", "--scale", "3"], "argument --scale: invalid choice: 3"),
    (["--speed", "--runs", "0"], "argument --runs: must be at least 1, got 0"),  # was a traceback
    (["--speed", "--runs", "two"], "argument --runs: expected a whole number, got 'two'"),
])
def test_bad_options_are_refused_by_the_argument_parser(capsys, argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["-m", "average", *argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.strip().count("\n") == 0


def test_the_checkpoint_folder_is_ckpt_dir_as_elsewhere_and_checkpoints_still_works(capsys) -> None:
    from pervfi.evaluate.__main__ import build_parser

    assert build_parser().parse_args(["-m", "average", "--ckpt-dir", "a"]).ckpt_dir == "a"
    assert build_parser().parse_args(["-m", "average", "--checkpoints", "b"]).ckpt_dir == "b"
    assert build_parser().parse_args(["-m", "average"]).ckpt_dir == "checkpoints"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    help_text = capsys.readouterr().out
    assert "--ckpt-dir" in help_text and "--checkpoints" not in help_text


def test_log_lines_are_plain_like_the_tools(tmp_path: Path, capsys) -> None:
    _write_sequence(tmp_path / "data" / "clip", 3)
    code, _, err = _run_cli(capsys, "-m", "average", "--dataset", "sequence", "--root", str(tmp_path / "data"),
                            "--metrics", "psnr")
    assert code == 0
    assert "no --out: the scores were not kept; add --out DIR to keep them and resume" in err.splitlines()
    assert "INFO" not in err and "pervfi.evaluate" not in err


def test_metrics_may_be_one_comma_separated_string(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "data" / "clip", 3)
    for metrics in ("psnr,ssim,ie", ["psnr", "ssim", "ie"], " PSNR, ssim ,ie"):
        summary = evaluate("average", "sequence", tmp_path / "data", metrics=metrics, progress=False)
        assert [name for name in ("psnr", "ssim", "ie", "lpips") if name in summary] == ["psnr", "ssim", "ie"]


def _triplets_view(folder: Path) -> Path:
    """../shared/data as triplets: Sintel 16-17-18, 18-19-20, …, and the DAVIS triplet (links)."""
    sintel = sorted((DATA / "sintel-market-10").glob("*.png"))
    for start in range(0, len(sintel) - 2, 2):
        triplet = folder / f"sintel-{start:02d}"
        triplet.mkdir(parents=True)
        for path in sintel[start:start + 3]:
            (triplet / path.name).symlink_to(path)
    (folder / "davis").symlink_to(DATA / "davis-breakdance-flare-3", target_is_directory=True)
    return folder


# The README's published figures (PSNR / SSIM / IE) on ../shared/data, "triplets" and "sequence ×2";
# the table rounds to two decimals (three for SSIM), and other builds of OpenCV and ffmpeg move the
# last digit: PSNR and IE within 0.02, SSIM within 0.002.
PUBLISHED = {
    "triplets": {"dis+splat": (27.46, 0.860, 4.65), "minterpolate": (26.92, 0.850, 5.28),
                 "average": (23.30, 0.651, 9.37)},
    "sequence": {"dis+splat": (26.28, 0.790, 6.34), "minterpolate": (25.82, 0.788, 6.82),
                 "average": (22.78, 0.545, 10.84)},
}


@pytest.mark.parametrize("view", ["sequence", "triplets"])
def test_the_shared_frames_give_the_readmes_figures(tmp_path: Path, capsys, monkeypatch, view: str) -> None:
    if not DATA.is_dir():
        pytest.skip(f"real frames absent: {DATA}")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no backbone weights: LPIPS must read n/a
    monkeypatch.setenv("PERVFI_OFFLINE", "1")
    root = DATA if view == "sequence" else _triplets_view(tmp_path / "triplets")
    for method, (psnr, ssim, ie) in PUBLISHED[view].items():
        code, out, err = _run_cli(capsys, "-m", method, "--dataset", view, "--root", str(root), "--device", "cpu",
                                  "--metrics", "psnr,ssim,ie,lpips", "--out", str(tmp_path / method / view))
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0] == "| method | dataset | samples | PSNR↑ | SSIM↑ | IE↓ | LPIPS↓ |"
        cells = [cell.strip() for cell in lines[2].strip("|").split("|")]
        assert cells[0] == method and cells[2] == "5" and cells[-1] == "n/a"
        measured = tuple(map(float, cells[3:6]))
        assert measured == (pytest.approx(psnr, abs=0.02), pytest.approx(ssim, abs=0.002),
                            pytest.approx(ie, abs=0.02)), f"{method} on {view}: {measured}"
        assert "n/a lpips: weights unavailable" in out


def test_cost_of_a_baseline(capsys) -> None:
    cost = measure_cost("average", device="cpu", size=64, runs=3, warmup=1)
    assert cost["parameters"] == 0 and cost["flops"] == 0 and cost["seconds_per_frame"] > 0
    code, out, _ = _run_cli(capsys, "--speed", "-m", "repeat", "--device", "cpu", "--runs", "2")
    assert code == 0 and "| repeat | cpu | 512×512 | 0.00 M |" in out


def test_the_cost_of_dis_splat_says_why_its_flops_are_zero(capsys) -> None:
    cost = measure_cost("dis+splat", device="cpu", size=64, runs=1, warmup=0)
    assert cost["parameters"] == 0 and cost["flops"] == 0
    table = cost_table(cost)
    assert "| dis+splat | cpu | 64×64 | 0.00 M | 0.0 G |" in table
    assert table.splitlines()[-1] == (
        "FLOPs: PyTorch's counter counts matrix products and convolutions only, and for dis+splat its flow"
        " estimator runs outside PyTorch (DIS and Farnebäck in OpenCV) and its generator has no learned layers"
        " (splat warps, splats and blends element-wise), so that work is not in the figure.")
    assert "FLOPs:" not in cost_table(measure_cost("average", device="cpu", size=64, runs=1, warmup=0))


def test_cost_of_a_pipeline_counts_its_parameters_and_flops() -> None:
    generator = build_generator("vb")
    method = ModelMethod("zero+vb", Interpolator(ZeroFlow(), generator, device="cpu"))
    cost = measure_cost(method, device="cpu", size=64, runs=1, warmup=0)
    assert cost["parameters"] == sum(parameter.numel() for parameter in generator.parameters()) > 0
    assert cost["flops"] > 1e6


def test_snu_film_prints_a_row_per_split_and_one_for_all(tmp_path: Path, capsys) -> None:
    frames = tmp_path / "SNU-FILM/test/GOPRO_test/GOPR0001"
    _write_sequence(frames, 5)
    listed = lambda *indices: " ".join(f"data/SNU-FILM/test/GOPRO_test/GOPR0001/{i:03d}.png" for i in indices)  # noqa: E731
    (tmp_path / "SNU-FILM/test-easy.txt").write_text(listed(0, 1, 2) + "\n" + listed(2, 3, 4) + "\n")
    (tmp_path / "SNU-FILM/test-hard.txt").write_text(listed(0, 2, 4) + "\n")
    code, out, err = _run_cli(capsys, "-m", "average", "--dataset", "snu-film", "--root", str(tmp_path / "SNU-FILM"),
                              "--metrics", "psnr")
    assert code == 0, err
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in out.splitlines()[2:]]
    assert [row[1:3] for row in rows] == [["snu-film easy", "2"], ["snu-film hard", "1"], ["snu-film", "3"]]
    easy, hard, overall = (float(row[3]) for row in rows)
    assert overall == pytest.approx((2 * easy + hard) / 3, abs=0.01)  # triplets: the mean over samples


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    """Checkpoint files of raft, v00 and vb in the official layouts, holding the reference
    weight fill (untrained: the numbers mean nothing, the plumbing is what is tested)."""
    from pervfi.models import registry
    from tests.checkpoint_files import model_state, official_layout, serialized, write

    folder = tmp_path_factory.mktemp("checkpoints")
    for name in ("raft", "v00", "vb"):
        write(folder / registry.get_entry(name).checkpoint.path, serialized(official_layout(name, model_state(name))))
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("noise", ["heat", "best"])
def test_a_registered_method_runs_from_its_checkpoints(tmp_path: Path, capsys, checkpoints: Path,
                                                      noise: str) -> None:
    _write_sequence(tmp_path / "data" / "clip", 5, width=64, height=48)
    code, out, err = _run_cli(capsys, "-m", "raft+pervfi", "--dataset", "sequence", "--root", str(tmp_path / "data"),
                              "--ckpt-dir", str(checkpoints), "--no-download", "--noise", noise,
                              "--metrics", "psnr,ssim", "--out", str(tmp_path / "out"))
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["samples"] == 2
    assert summary["method"] == ("raft+pervfi" if noise == "heat" else "raft+pervfi (best noise)")
    assert out.splitlines()[2].startswith(f"| {summary['method']} | sequence ×2 | 2 |")
    # untrained weights may overflow (best noise decodes at the latents' large spread): never silently
    assert np.isfinite(summary["psnr"]) or "non-finite values" in err


@pytest.mark.slow
def test_best_noise_is_refused_for_other_generators(tmp_path: Path, capsys, checkpoints: Path) -> None:
    _write_sequence(tmp_path / "data" / "clip", 3)
    code, _, err = _run_cli(capsys, "-m", "raft+pervfi-vb", "--dataset", "sequence", "--root", str(tmp_path / "data"),
                            "--checkpoints", str(checkpoints), "--no-download", "--noise", "best")
    assert code == 2 and "--noise best applies to the v00 generator" in err
