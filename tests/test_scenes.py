"""Scene-cut and duplicate-frame measures on synthetic moving textures and real frames."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from pervfi.media import scenes
from pervfi.media.frame_files import read_frame

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SINTEL = sorted((DATA / "sintel-market-10").glob("*.png"))
DAVIS = sorted((DATA / "davis-breakdance-flare-3").glob("*.jpg"))
needs_data = pytest.mark.skipif(not SINTEL or not DAVIS, reason=f"real frames absent: {DATA.resolve()}")


def texture(seed: int, height: int, width: int, grain: int, tint: tuple[float, float, float]) -> np.ndarray:
    """Smooth colour noise with features about `grain` pixels wide, tinted, uint8 RGB."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(height // grain + 2, width // grain + 2, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    grey = smooth.mean(axis=2, keepdims=True)
    colour = 0.6 * grey + 0.4 * smooth  # correlated channels, like natural images
    colour = (colour - colour.min()) / (colour.max() - colour.min())
    return np.clip(255 * colour * np.asarray(tint, np.float32), 0, 255).astype(np.uint8)


CANVAS = texture(0, 300, 700, grain=12, tint=(1.0, 0.85, 0.6))
H, W = 240, 320


def window(dx: int = 0, dy: int = 0, canvas: np.ndarray = CANVAS) -> np.ndarray:
    return np.ascontiguousarray(canvas[20 + dy : 20 + dy + H, 40 + dx : 40 + dx + W])


def with_disc(frame: np.ndarray, x: int) -> np.ndarray:
    out = frame.copy()
    cv2.circle(out, (x, H // 2), 30, (40, 200, 90), thickness=-1)
    return out


def score(a: np.ndarray, b: np.ndarray) -> float:
    return scenes.cut_score(scenes.thumbnail(a), scenes.thumbnail(b))


@pytest.mark.parametrize("dx, dy", [(1, 0), (8, 0), (24, 8), (64, 0), (0, 40)])
def test_pans_are_not_cuts(dx: int, dy: int) -> None:
    # up to a fifth of the width per frame
    assert score(window(), window(dx, dy)) < 0.3


def test_moving_object_is_not_a_cut() -> None:
    background = window()
    assert score(with_disc(background, 80), with_disc(window(4, 0), 150)) < 0.3


@pytest.mark.parametrize("gain, offset", [(0.6, 0), (1.3, 0), (1.0, 40), (1.0, -40)])
def test_brightness_changes_are_not_cuts(gain: float, offset: float) -> None:
    frame = window()
    flickered = np.clip(frame * gain + offset, 0, 255).astype(np.uint8)
    assert score(frame, flickered) < 0.3


def test_unrelated_scenes_are_cuts() -> None:
    other = texture(1, H, W, grain=40, tint=(0.5, 0.8, 1.0))
    a, b = scenes.thumbnail(window()), scenes.thumbnail(other)
    assert scenes.cut_score(a, b) > 0.7
    assert scenes.is_scene_cut(a, b) and scenes.is_scene_cut(b, a)
    assert not scenes.is_scene_cut(a, scenes.thumbnail(window(16, 0)))


def test_identical_frames_score_zero() -> None:
    assert score(window(), window()) == pytest.approx(0.0, abs=1e-6)


@needs_data
def test_real_consecutive_frames_are_not_cuts_but_other_footage_is() -> None:
    thumbs = [scenes.thumbnail(read_frame(p)) for p in SINTEL]
    consecutive = [scenes.cut_score(a, b) for a, b in zip(thumbs, thumbs[1:])]
    assert max(consecutive) < 0.3, consecutive
    davis = scenes.thumbnail(read_frame(DAVIS[0]))
    assert davis.pixels.shape != thumbs[0].pixels.shape  # different sizes are compared too
    assert scenes.is_scene_cut(thumbs[0], davis) and scenes.is_scene_cut(davis, thumbs[-1])


def test_thumbnail_is_small_float_rgb() -> None:
    thumb = scenes.thumbnail(np.zeros((1080, 1920, 3), np.uint8))
    assert thumb.pixels.shape == (72, 128, 3) and thumb.pixels.dtype == np.float32
    assert thumb.scale == 15
    small = scenes.thumbnail(np.full((48, 64, 3), 7, np.uint8))
    assert small.pixels.shape == (48, 64, 3) and small.scale == 1
    assert np.all(small.pixels == 7)
    with pytest.raises(ValueError, match="H x W x 3"):
        scenes.thumbnail(np.zeros((48, 64), np.uint8))


def noisy(frame: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(frame + rng.normal(0, sigma, frame.shape)), 0, 255).astype(np.uint8)


def jpeg(frame: np.ndarray, quality: int) -> np.ndarray:
    _, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)


def duplicate(a: np.ndarray, b: np.ndarray, **kwargs) -> bool:
    return scenes.is_duplicate(scenes.thumbnail(a), scenes.thumbnail(b), **kwargs)


SIZES = [(H, W), (48, 64), (720, 1280), (1080, 1920)]


@pytest.mark.parametrize("size", SIZES)
def test_exact_and_noisy_copies_are_duplicates(size: tuple[int, int]) -> None:
    frame = cv2.resize(window(), size[::-1], interpolation=cv2.INTER_AREA)
    assert duplicate(frame, frame.copy(), threshold=0)
    assert duplicate(frame, noisy(frame, 2.0))
    assert duplicate(noisy(frame, 2.0, seed=1), noisy(frame, 2.0, seed=2))
    assert duplicate(frame, jpeg(frame, 75))


@pytest.mark.parametrize("size", SIZES)
def test_one_pixel_pans_are_not_duplicates(size: tuple[int, int]) -> None:
    canvas = cv2.resize(CANVAS, (size[1] + 8, size[0] + 8), interpolation=cv2.INTER_AREA)
    frame = np.ascontiguousarray(canvas[:-8, :-8])
    for shifted in (canvas[:-8, 1:-7], canvas[1:-7, :-8]):
        assert not duplicate(frame, np.ascontiguousarray(shifted))


def test_a_small_local_change_is_not_a_duplicate() -> None:
    assert not duplicate(with_disc(window(), 100), with_disc(window(), 112))
    assert not duplicate(window(), noisy(window(), 2.0), threshold=0)


@needs_data
def test_real_frames_duplicates_and_one_pixel_pans() -> None:
    frame = read_frame(SINTEL[0])
    base = np.ascontiguousarray(frame[:-1, :-1])
    assert duplicate(base, jpeg(base, 75))
    assert not duplicate(base, np.ascontiguousarray(frame[:-1, 1:]))
    assert not duplicate(base, np.ascontiguousarray(frame[1:, :-1]))
    assert not duplicate(read_frame(SINTEL[0]), read_frame(SINTEL[1]))


def test_duplicate_score_is_in_grey_levels_times_the_downscale() -> None:
    a = np.full((16, 16, 3), 100, np.uint8)
    b = a.copy()
    b[4:8, 4:8] = 110  # a 4x4 patch 10 levels brighter contains a full 3x3 window
    assert scenes.duplicate_score(scenes.thumbnail(a), scenes.thumbnail(b)) == pytest.approx(10.0, abs=1e-4)
    # enlarged 32x to 512x512, thumbnails average 4x4 frame pixels: the same 10 levels, times 4
    big_a, big_b = (np.kron(x, np.ones((32, 32, 1), np.uint8)) for x in (a, b))
    assert scenes.duplicate_score(scenes.thumbnail(big_a), scenes.thumbnail(big_b)) == pytest.approx(40.0, rel=1e-5)
    assert scenes.duplicate_score(scenes.thumbnail(a), scenes.thumbnail(a[:8])) == float("inf")


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5, float("nan"), float("inf"), "0.3", True])
def test_cut_threshold_is_validated(bad) -> None:
    thumb = scenes.thumbnail(window())
    with pytest.raises(ValueError, match="scene-cut threshold"):
        scenes.is_scene_cut(thumb, thumb, threshold=bad)


@pytest.mark.parametrize("bad", [-0.5, float("inf"), float("nan"), None])
def test_duplicate_threshold_is_validated(bad) -> None:
    thumb = scenes.thumbnail(window())
    with pytest.raises(ValueError, match="duplicate threshold"):
        scenes.is_duplicate(thumb, thumb, threshold=bad)


def smooth_then_grainy(seed: int = 0, height: int = 120, width: int = 192, step: int = 3) -> list[np.ndarray]:
    """Issue 13's missed cut: three frames of a Gaussian-blurred (sigma 2) random texture panning,
    then three of unblurred random noise panning; both average mid-grey."""
    rng = np.random.default_rng(seed)
    wide = (height, width + 3 * step, 3)
    smooth = np.clip(cv2.GaussianBlur(rng.random(wide, np.float32) * 255, (0, 0), 2), 0, 255).astype(np.uint8)
    grainy = (rng.random(wide) * 255).astype(np.uint8)
    return [np.ascontiguousarray(shot[:, step * k:step * k + width]) for shot in (smooth, grainy) for k in range(3)]


@pytest.mark.parametrize("seed", range(3))
def test_cut_from_a_smooth_to_a_grainy_shot_of_one_mean_colour(seed: int) -> None:
    frames = smooth_then_grainy(seed)
    assert abs(frames[2].mean() - frames[3].mean()) < 2  # the colours alone barely tell them apart
    thumbs = [scenes.thumbnail(frame) for frame in frames]
    cuts = [scenes.is_scene_cut(a, b) for a, b in zip(thumbs, thumbs[1:])]
    assert cuts == [False, False, True, False, False]


def zoomed(frame: np.ndarray, factor: float) -> np.ndarray:
    height, width = frame.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0, factor)
    return cv2.warpAffine(frame, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("shot", [0, 3])
@pytest.mark.parametrize("change", ["zoom", "flash", "fade"])
def test_smooth_and_grainy_shots_have_no_false_cuts(shot: int, change: str) -> None:
    frame = smooth_then_grainy()[shot]
    if change == "zoom":  # 10% per frame
        steps = [zoomed(frame, 1.1 ** k) for k in range(4)]
    elif change == "flash":
        steps = [frame, np.clip(frame * 1.3 + 30, 0, 255).astype(np.uint8), frame]
    else:  # to a fifth of the brightness, halving each frame
        steps = [np.rint(frame * gain).astype(np.uint8) for gain in (1.0, 0.5, 0.25, 0.2)]
    assert all(score(a, b) < 0.3 for a, b in zip(steps, steps[1:])), [score(a, b) for a, b in zip(steps, steps[1:])]
