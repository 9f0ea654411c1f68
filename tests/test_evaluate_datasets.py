"""Dataset loaders on tiny trees in each published layout, and the video protocol."""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from pervfi.core.errors import InputError, UnknownNameError
from pervfi.evaluate.datasets import center_crop, load_dataset


def _image(path: Path, width: int = 16, height: int = 12, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = np.full((height, width, 3), value, np.uint8)
    frame[0, 0] = (10, 20, 30)  # BGR on disk: the loader must turn it into RGB
    assert cv2.imwrite(str(path), frame)
    return path


def _targets(dataset) -> list[tuple[str, float, Path]]:
    return [(t.sample_id, t.time, t.path) for item in dataset.items for t in item.targets]


def test_middlebury_pairs_other_data_with_other_gt_interp(tmp_path: Path) -> None:
    for name in ("Walking", "Beanbags"):
        _image(tmp_path / "other-data" / name / "frame10.png")
        _image(tmp_path / "other-data" / name / "frame11.png")
    _image(tmp_path / "other-gt-interp" / "Walking" / "frame10i11.png")  # Beanbags has no ground truth
    dataset = load_dataset("middlebury", tmp_path)
    (item,) = dataset.items
    assert item.frame0 == tmp_path / "other-data/Walking/frame10.png"
    assert item.frame1 == tmp_path / "other-data/Walking/frame11.png"
    assert _targets(dataset) == [("Walking", 0.5, tmp_path / "other-gt-interp/Walking/frame10i11.png")]
    assert not dataset.video


@pytest.mark.parametrize("frames_folder", ["sequences", "target"])
def test_vimeo90k_follows_tri_testlist(tmp_path: Path, frames_folder: str) -> None:
    for name in ("00001/0266", "00002/0010", "00003/0001"):
        for index in (1, 2, 3):
            _image(tmp_path / frames_folder / name / f"im{index}.png")
    (tmp_path / "tri_testlist.txt").write_text("00001/0266\n00002/0010\n\n")  # 00003 not listed
    dataset = load_dataset("vimeo90k", tmp_path)
    assert [t[0] for t in _targets(dataset)] == ["00001/0266", "00002/0010"]
    assert dataset.items[1].frame0 == tmp_path / frames_folder / "00002/0010/im1.png"
    assert dataset.items[1].targets[0].path == tmp_path / frames_folder / "00002/0010/im2.png"
    assert dataset.items[1].frame1 == tmp_path / frames_folder / "00002/0010/im3.png"


def test_vimeo90k_reports_a_listed_folder_that_is_missing(tmp_path: Path) -> None:
    for index in (1, 2, 3):
        _image(tmp_path / "sequences/00001/0001" / f"im{index}.png")
    (tmp_path / "tri_testlist.txt").write_text("00001/0001\n00001/0002\n")
    with pytest.raises(InputError, match="00001/0002/im1.png is missing"):
        load_dataset("vimeo90k", tmp_path)


def test_ucf101_reads_frame_00_01_gt_02(tmp_path: Path) -> None:
    for name in ("1", "2", "10"):
        for frame in ("frame_00", "frame_01_gt", "frame_02"):
            _image(tmp_path / name / f"{frame}.png")
    dataset = load_dataset("ucf101", tmp_path)
    assert [t[0] for t in _targets(dataset)] == ["1", "2", "10"]  # natural order
    assert dataset.items[0].frame1 == tmp_path / "1/frame_02.png"


def test_snu_film_resolves_the_published_paths_per_split(tmp_path: Path) -> None:
    gopro = tmp_path / "test/GOPRO_test/GOPR0384_11_00"
    youtube = tmp_path / "test/YouTube_test/0001"
    for folder in (gopro, youtube):
        for index in range(1, 6):
            _image(folder / f"{index:06d}.png")
    published = "data/SNU-FILM/test/GOPRO_test/GOPR0384_11_00/{:06d}.png"
    (tmp_path / "test-easy.txt").write_text(" ".join(published.format(i) for i in (1, 2, 3)) + "\n")
    (tmp_path / "eval_modes").mkdir()
    (tmp_path / "eval_modes" / "test-extreme.txt").write_text(
        " ".join(f"test/YouTube_test/0001/{i:06d}.png" for i in (1, 3, 5)) + "\n\n")
    dataset = load_dataset("snu-film", tmp_path)
    assert [item.group for item in dataset.items] == ["easy", "extreme"]
    assert _targets(dataset) == [
        ("easy/test/GOPRO_test/GOPR0384_11_00/000002.png", 0.5, gopro / "000002.png"),
        ("extreme/test/YouTube_test/0001/000003.png", 0.5, youtube / "000003.png"),
    ]
    assert dataset.items[1].frame1 == youtube / "000005.png"
    assert dataset.report_groups


def test_snu_film_names_a_listed_frame_that_is_missing(tmp_path: Path) -> None:
    (tmp_path / "test-hard.txt").write_text("data/SNU-FILM/test/a/b/1.png data/SNU-FILM/test/a/b/2.png x/3.png\n")
    with pytest.raises(InputError, match="test-hard.txt: frame data/SNU-FILM/test/a/b/1.png not found"):
        load_dataset("snu-film", tmp_path)


def test_triplets_takes_three_frame_folders_with_the_middle_as_ground_truth(tmp_path: Path) -> None:
    for name in ("a", "b"):
        for index in (7, 8, 9):
            _image(tmp_path / name / f"f{index}.jpg")
    _image(tmp_path / "pair" / "1.png")
    _image(tmp_path / "pair" / "2.png")
    dataset = load_dataset("triplets", tmp_path)
    assert _targets(dataset) == [("a", 0.5, tmp_path / "a/f8.jpg"), ("b", 0.5, tmp_path / "b/f8.jpg")]


def _sequence(folder: Path, count: int, suffix: str = ".png", width: int = 16, height: int = 12) -> list[Path]:
    return [_image(folder / f"{index:05d}{suffix}", width, height, value=index) for index in range(count)]


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_video_protocol_scores_exactly_the_dropped_frames(tmp_path: Path, scale: int) -> None:
    frames = _sequence(tmp_path / "clip", 17)
    dataset = load_dataset("sequence", tmp_path, scale=scale)
    assert dataset.video
    kept = [item.frame0 for item in dataset.items] + [dataset.items[-1].frame1]
    assert kept == frames[::scale]
    targets = _targets(dataset)
    assert [path for _, _, path in targets] == [frame for index, frame in enumerate(frames) if index % scale]
    assert [time for _, time, _ in targets] == [(index % scale) / scale for index in range(17) if index % scale]
    for item in dataset.items:  # each target lies between its pair
        first = frames.index(item.frame0)
        assert frames.index(item.frame1) == first + scale
        assert [frames.index(t.path) for t in item.targets] == list(range(first + 1, first + scale))


def test_video_protocol_uses_the_longest_prefix_of_1_plus_n_scale_frames(tmp_path: Path, caplog) -> None:
    frames = _sequence(tmp_path / "clip", 12)
    with caplog.at_level(logging.INFO, logger="pervfi.evaluate"):
        dataset = load_dataset("sequence", tmp_path, scale=4)
    assert dataset.items[-1].frame1 == frames[8]
    assert len(_targets(dataset)) == 6
    assert "using the first 9 of 12 frames" in caplog.text


def test_sequence_accepts_one_folder_of_frames_and_sorts_naturally(tmp_path: Path) -> None:
    paths = [_image(tmp_path / f"frame_{index}.png") for index in (1, 2, 3, 10, 11)]
    dataset = load_dataset("sequence", tmp_path, scale=2)
    assert [item.group for item in dataset.items] == [tmp_path.name] * 2
    assert [t[2] for t in _targets(dataset)] == [paths[1], paths[3]]


def test_video_sequences_too_short_for_the_scale_are_skipped(tmp_path: Path) -> None:
    _sequence(tmp_path / "long", 9)
    _sequence(tmp_path / "short", 5)
    dataset = load_dataset("sequence", tmp_path, scale=8)
    assert {item.group for item in dataset.items} == {"long"}


def test_davis_finds_the_480p_frames_of_the_release(tmp_path: Path) -> None:
    _sequence(tmp_path / "JPEGImages/480p/bear", 5, ".jpg")
    _sequence(tmp_path / "JPEGImages/Full-Resolution/bear", 5, ".jpg", width=40, height=30)
    dataset = load_dataset("davis", tmp_path, scale=2)
    assert dataset.items[0].frame0 == tmp_path / "JPEGImages/480p/bear/00000.jpg"
    assert dataset.read(dataset.items[0].frame0).shape == (12, 16, 3)
    assert load_dataset("davis", tmp_path / "JPEGImages/480p").items == dataset.items


def test_davis_1080p_resizes_the_full_resolution_frames(tmp_path: Path) -> None:
    _sequence(tmp_path / "JPEGImages/Full-Resolution/bear", 3, ".jpg", width=40, height=30)
    dataset = load_dataset("davis-1080p", tmp_path)
    assert dataset.read(dataset.items[0].frame0).shape == (1080, 1920, 3)


def test_xiph_2k_resizes_and_xiph_4k_crops_the_centre(tmp_path: Path) -> None:
    _sequence(tmp_path / "Tango", 3, width=64, height=34)
    frame = load_dataset("xiph-2k", tmp_path).read(tmp_path / "Tango/00000.png")
    assert frame.shape == (1080, 2048, 3)
    assert tuple(frame[540, 1024]) == (0, 0, 0)  # the BGR→RGB flip and the value survive
    big = np.arange(2160 * 4096 * 3, dtype=np.uint32).reshape(2160, 4096, 3)
    np.testing.assert_array_equal(center_crop(2048, 1080)(big), big[540:-540, 1024:-1024])
    small = tmp_path / "small"
    _sequence(small / "clip", 3, width=64, height=34)
    dataset = load_dataset("xiph-4k", small)
    with pytest.raises(InputError, match="smaller than the 2048×1080 crop"):
        dataset.read(dataset.items[0].frame0)


def test_adobe240_reads_test_frames(tmp_path: Path) -> None:
    _sequence(tmp_path / "test_frames/IMG_0001", 9)
    dataset = load_dataset("adobe240", tmp_path, scale=8)
    assert len(_targets(dataset)) == 7
    assert dataset.items[0].group == "IMG_0001"


def test_frames_are_read_as_rgb(tmp_path: Path) -> None:
    _sequence(tmp_path / "clip", 3)
    dataset = load_dataset("sequence", tmp_path)
    assert tuple(dataset.read(dataset.items[0].frame0)[0, 0]) == (30, 20, 10)


def test_unknown_dataset_lists_the_names(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="unknown dataset 'kitti'.*vimeo90k"):
        load_dataset("kitti", tmp_path)


@pytest.mark.parametrize("name,scale,message", [
    ("vimeo90k", 2, "no vimeo90k samples found"),
    ("sequence", 3, "--scale must be one of 2, 4, 8"),
    ("ucf101", 4, "applies to videos only"),
])
def test_bad_input_is_one_clear_error(tmp_path: Path, name: str, scale: int, message: str) -> None:
    _image(tmp_path / "x" / "frame_00.png")
    with pytest.raises(InputError, match=message):
        load_dataset(name, tmp_path, scale=scale)


def test_missing_root_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nowhere is not a folder"):
        load_dataset("sequence", tmp_path / "nowhere")
