"""Scene cuts and duplicate frames, measured cheaply on downscaled frames.

Each frame is reduced once to a `Thumbnail` (RGB, float32, at most `THUMBNAIL_SIZE`
pixels on the long side, area-averaged so encode noise and grain mostly cancel, and the
downscale factor); the pipeline compares the thumbnails of consecutive frames.

- `cut_score` is the geometric mean of two distances in [0, 1] that fail in different
  ways, so a cut needs both colours and structure (or texture) to change:
  * colour: the Bhattacharyya distance between 8x8x8-bin RGB histograms of the two
    frames, each first scaled to the same mean brightness (a gain flicker does not move
    it; a pan moves it only as much as colours enter or leave the frame);
  * structure: at `CUT_SIZE` pixels, the grey levels of each frame are standardised
    (mean 0, unit spread) and every pixel is compared with the range of values in a
    neighbourhood of radius `ENVELOPE_RADIUS` of the other frame; the mean excess
    outside that range, both ways, is the distance. A neighbourhood tolerates local
    motion, standardising tolerates brightness flicker, and pans are tolerated by also
    comparing the overlap after the global shift found by phase correlation (the smaller
    distance wins). It is divided by `STRUCTURE_SCALE` and clipped to 1;
  * texture, which stands in for structure when it is larger: fine random textures (film
    grain, foliage, noise) fill every neighbourhood's range, so the structure distance
    misses a cut between two of them. Each thumbnail's sharpness, the root-mean-square
    grey-level step between neighbouring pixels over its grey-level spread, is compared:
    1 - smaller / larger. A gain or an offset, a pan and a fade leave it nearly unchanged;
    a smooth shot (Gaussian blur of 2 pixels) against a grainy one differs by 0.6 or more.
  Measured: one scene (pans up to 30% of the frame per frame, moving objects, zooms,
  gain 0.6-1.4, offsets of 40 levels, fades to 20%) scores at most 0.27, unrelated
  photographs at least 0.75, a smooth and a grainy shot of one mean colour about 0.6.
  Limits: pans of more than a third of the frame per frame may score as cuts, and a cut
  between shots with the same colour histogram (a mirrored frame) scores low.
- `duplicate_score` is the largest mean absolute grey difference (levels 0-255) over any
  3x3 window of the thumbnails, times the downscale factor: local, so a small moving part
  (a mouth in animation) makes a frame distinct; and independent of the frame size,
  because averaging s x s pixels divides both uncorrelated noise and the change a
  one-pixel shift causes by about s. Encode noise scores about 4-11, a one-pixel pan of
  smooth footage 30 or more (sharper footage far more).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

THUMBNAIL_SIZE = 128
CUT_SIZE = 64
ENVELOPE_RADIUS = 2
STRUCTURE_SCALE = 0.25
HISTOGRAM_BINS = 8
DEFAULT_CUT_THRESHOLD = 0.5
SCENE_CUT_MODES = ("repeat", "blend", "off")  # at a cut: hold the earlier frame, cross-fade, or ignore it
DEFAULT_DUPLICATE_THRESHOLD = 16.0

_GREY = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 luma weights
_MEAN_GREY = 128.0  # brightness every frame is scaled to before its histogram
_SPREAD_FLOOR = 4.0  # grey levels added to the spread, so flat frames are not amplified noise
_TEXTURE_FLOOR = 1.0  # the same for sharpness: small, so dim frames of a fade keep their sharpness


@dataclass(frozen=True)
class Thumbnail:
    """A frame reduced for comparisons: `pixels` h x w x 3 float32 RGB in 0-255, and
    `scale`, frame pixels per thumbnail pixel (1 for frames already small)."""

    pixels: np.ndarray
    scale: float


def thumbnail(frame: np.ndarray) -> Thumbnail:
    """A frame (H x W x 3 uint8 RGB) area-downscaled to at most THUMBNAIL_SIZE pixels on
    its long side; smaller frames keep their size."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 RGB frame, got shape {frame.shape}")
    pixels = _downscale(np.ascontiguousarray(frame).astype(np.float32), THUMBNAIL_SIZE)
    return Thumbnail(pixels, max(frame.shape[:2]) / max(pixels.shape[:2]))


def cut_score(a: Thumbnail, b: Thumbnail) -> float:
    """Scene-cut score of two thumbnails in [0, 1]: about 0 for one scene (motion, pans,
    flicker), about 1 for unrelated scenes. Thumbnails of different shapes are compared
    after resizing the second to the first's shape."""
    first, second = a.pixels, b.pixels
    a, b = _downscale(first, CUT_SIZE), _downscale(second, CUT_SIZE)
    if b.shape != a.shape:
        b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
    structure = min(1.0, _structure_distance(a @ _GREY, b @ _GREY) / STRUCTURE_SCALE)
    return math.sqrt(_colour_distance(a, b) * max(structure, _texture_distance(first, second)))


def is_scene_cut(a: Thumbnail, b: Thumbnail, threshold: float = DEFAULT_CUT_THRESHOLD) -> bool:
    """Whether two thumbnails lie on either side of a scene cut (cut_score > threshold)."""
    return cut_score(a, b) > check_cut_threshold(threshold)


def duplicate_score(a: Thumbnail, b: Thumbnail) -> float:
    """Largest mean absolute grey difference (0-255) over any 3x3 window of two
    thumbnails, times the downscale factor; 0 for identical frames, infinite for frames
    of different sizes."""
    if a.pixels.shape != b.pixels.shape or a.scale != b.scale:
        return math.inf
    difference = np.abs(a.pixels @ _GREY - b.pixels @ _GREY)
    window_means = cv2.blur(difference, (3, 3), borderType=cv2.BORDER_REFLECT)
    return float(window_means.max()) * a.scale


def is_duplicate(
    a: Thumbnail, b: Thumbnail, threshold: float = DEFAULT_DUPLICATE_THRESHOLD
) -> bool:
    """Whether two thumbnails show the same picture up to encode noise
    (duplicate_score <= threshold; a threshold of 0 accepts exact duplicates only)."""
    return duplicate_score(a, b) <= check_duplicate_threshold(threshold)


def check_cut_threshold(threshold: float) -> float:
    """The scene-cut threshold as a float; ValueError unless strictly between 0 and 1."""
    value = _finite(threshold, "scene-cut threshold")
    if not 0.0 < value < 1.0:
        raise ValueError(f"scene-cut threshold must be between 0 and 1 (exclusive), got {threshold}")
    return value


def check_duplicate_threshold(threshold: float) -> float:
    """The duplicate threshold as a float; ValueError unless finite and not negative."""
    value = _finite(threshold, "duplicate threshold")
    if value < 0.0:
        raise ValueError(f"duplicate threshold must be 0 or more, got {threshold}")
    return value


def _finite(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def _downscale(image: np.ndarray, size: int) -> np.ndarray:
    height, width = image.shape[:2]
    scale = size / max(height, width)
    if scale >= 1.0:
        return image
    shape = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, shape, interpolation=cv2.INTER_AREA)


def _colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance (0-1) of brightness-normalised RGB histograms."""
    return float(cv2.compareHist(_histogram(a), _histogram(b), cv2.HISTCMP_BHATTACHARYYA))


def _histogram(image: np.ndarray) -> np.ndarray:
    gain = _MEAN_GREY / max(float((image @ _GREY).mean()), 1.0)
    levelled = np.clip(image * gain, 0.0, 255.0)
    channels, bins = [0, 1, 2], [HISTOGRAM_BINS] * 3
    return cv2.calcHist([levelled], channels, None, bins, [0.0, 256.0] * 3)


def _structure_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Motion-tolerant difference of two grey images: unshifted, and after their global
    shift when phase correlation finds one within a third of the frame; the smaller."""
    distance = _envelope_distance(a, b)
    window = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    # copies: OpenCV 5.0's phaseCorrelate overwrites its inputs
    (dx, dy), _ = cv2.phaseCorrelate(a.copy(), b.copy(), window)
    dx, dy = round(dx), round(dy)
    height, width = a.shape
    if (dx or dy) and abs(dx) < width / 3 and abs(dy) < height / 3:
        # content at a[y, x] is found at b[y + dy, x + dx]
        rows_a, rows_b = _overlap(dy, height)
        cols_a, cols_b = _overlap(dx, width)
        distance = min(distance, _envelope_distance(a[rows_a, cols_a], b[rows_b, cols_b]))
    return distance


def _texture_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - the ratio of the two thumbnails' sharpness, smaller over larger (0: alike)."""
    sharpness = sorted((_sharpness(a @ _GREY), _sharpness(b @ _GREY)))
    return 1.0 - sharpness[0] / max(sharpness[1], 1e-6)


def _sharpness(grey: np.ndarray) -> float:
    """Root-mean-square step between neighbouring pixels over the spread of the grey levels."""
    steps = 0.5 * (float(np.square(np.diff(grey, axis=0)).mean()) + float(np.square(np.diff(grey, axis=1)).mean()))
    return math.sqrt(steps) / (float(grey.std()) + _TEXTURE_FLOOR)


def _overlap(shift: int, size: int) -> tuple[slice, slice]:
    return slice(max(0, -shift), size - max(0, shift)), slice(max(0, shift), size - max(0, -shift))


def _envelope_distance(a: np.ndarray, b: np.ndarray) -> float:
    a, b = _standardise(a), _standardise(b)
    return 0.5 * (_excess(a, b) + _excess(b, a))


def _standardise(grey: np.ndarray) -> np.ndarray:
    grey = np.ascontiguousarray(grey)
    return (grey - grey.mean()) / (grey.std() + _SPREAD_FLOOR)


def _excess(a: np.ndarray, b: np.ndarray) -> float:
    """Mean amount by which a lies outside the range of b over each pixel's neighbourhood."""
    kernel = np.ones((2 * ENVELOPE_RADIUS + 1,) * 2, np.uint8)
    upper = cv2.dilate(b, kernel, borderType=cv2.BORDER_REPLICATE)
    lower = cv2.erode(b, kernel, borderType=cv2.BORDER_REPLICATE)
    return float(np.maximum(np.maximum(a - upper, lower - a), 0.0).mean())
