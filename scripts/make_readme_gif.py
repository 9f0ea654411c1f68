"""Make the README's opening GIF: the Sintel frames of ../shared/data as they are, beside the
result of the tool (dis+splat, ×4).

    python scripts/make_readme_gif.py [--data ../shared/data/sintel-market-10] [--out docs/sintel-dis+splat.gif]

The frames are shrunk to WIDTH pixels (a small derived demo), then `infer_video.py` interpolates
them with `--montage --ext gif`: the left half holds each input frame for as long as the input
shows it (INPUT_FPS), the right half is the interpolated result at four times that rate. Sintel
© Blender Foundation (durian.blender.org), CC BY 3.0.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 320  # each half of the GIF
INPUT_FPS = 6  # slow enough that the input's steps show
SCALE = 4
MAX_BYTES = 2_000_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "sintel-market-10")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "sintel-dis+splat.gif")
    args = parser.parse_args()
    frames = sorted(args.data.glob("*.png"))
    if len(frames) < 2:
        print(f"error: no Sintel frames in {args.data}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        small, out = Path(scratch) / "in" / "sintel", Path(scratch) / "out"  # the tool refuses -s inside -data
        small.mkdir(parents=True)
        for path in frames:
            with Image.open(path) as image:
                height = round(image.height * WIDTH / image.width / 2) * 2
                image.convert("RGB").resize((WIDTH, height), Image.LANCZOS).save(small / path.name)
        subprocess.run([sys.executable, str(ROOT / "infer_video.py"), "-m", "dis+splat", "-data", str(small),
                        "-s", str(out), "-scale", str(SCALE), "-fps", str(INPUT_FPS * SCALE), "--montage",
                        "--ext", "gif", "--quiet"], check=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "sintel" / "sintel-dis+splat-montage.gif", args.out)
    size = args.out.stat().st_size
    print(f"{args.out}: {size / 1e6:.2f} MB")
    if size > MAX_BYTES:
        print(f"error: {args.out} is over {MAX_BYTES / 1e6:g} MB; lower WIDTH", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
