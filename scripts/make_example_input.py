"""Write the example sequence ``input/shapes/``: shapes moving over a gradient.

    python scripts/make_example_input.py [--out input/shapes] [--frames 6]

A small self-made sequence (a few tens of KB) so that the README's run command works
out of the box; real footage goes in the same place, one folder per sequence.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

HEIGHT, WIDTH = 240, 320


def frame(index: int) -> np.ndarray:
    """Frame `index` (BGR, for OpenCV): a disc moving right, a square moving down, a bar turning."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    image = np.stack([90 + 80 * xs / WIDTH, 60 + 60 * ys / HEIGHT, 150 - 50 * xs / WIDTH], axis=-1)
    image = image.astype(np.uint8)
    cv2.circle(image, (60 + 24 * index, 80), 28, (40, 180, 250), -1, cv2.LINE_AA)
    cv2.rectangle(image, (200, 30 + 18 * index), (250, 80 + 18 * index), (230, 90, 60), -1, cv2.LINE_AA)
    angle = np.deg2rad(12 * index)
    centre = np.array([110.0, 180.0])
    tip = centre + 55 * np.array([np.cos(angle), np.sin(angle)])
    cv2.line(image, tuple(int(v) for v in centre), tuple(int(v) for v in tip), (250, 250, 250), 8, cv2.LINE_AA)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("input/shapes"))
    parser.add_argument("--frames", type=int, default=6)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for index in range(args.frames):
        cv2.imwrite(str(args.out / f"{index:04d}.png"), frame(index), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.frames} frames to {args.out}")


if __name__ == "__main__":
    main()
