"""Self-made test media: textured frames with known motion, frame folders and videos."""
from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random colour texture, H×W×3 uint8."""
    rng = np.random.default_rng(seed)
    noise = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    return cv2.GaussianBlur(noise, (7, 7), 0)


def moving_frames(count: int, height: int, width: int, step: int = 2, seed: int = 0) -> list[np.ndarray]:
    """A texture panned `step` pixels right per frame with a white square moving down over it."""
    base = texture(height, width + step * count, seed)
    frames = []
    for index in range(count):
        frame = np.ascontiguousarray(base[:, step * index:step * index + width])
        top = (index * step) % max(1, height - 8)
        frame[top:top + 8, width // 3:width // 3 + 8] = 255
        frames.append(frame)
    return frames


def write_frames(folder: Path, frames: list[np.ndarray], names: list[str] | None = None) -> list[Path]:
    """PNG files, named ``00000.png``... or by `names`, RGB frames."""
    folder.mkdir(parents=True, exist_ok=True)
    names = names or [f"{index:05d}.png" for index in range(len(frames))]
    paths = []
    for name, frame in zip(names, frames):
        path = folder / name
        assert cv2.imwrite(str(path), frame[..., ::-1])
        paths.append(path)
    return paths


def read_png(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1]


def write_video(path: Path, frames: list[np.ndarray], fps: Fraction | int = 24) -> Path:
    """An H.264 mp4 (yuv444p, so small frames keep their colours) of the frames."""
    height, width = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=Fraction(fps), macro_block_size=1,
                                         pix_fmt_out="yuv444p", output_params=["-crf", "0"], ffmpeg_log_level="error")
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return path


def video_frames(path: Path) -> tuple[dict, list[np.ndarray]]:
    """A video's metadata and its frames as H×W×3 uint8."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(data, np.uint8).reshape(height, width, 3) for data in reader]
    return meta, frames


def write_vfr_video(path: Path, frames: list[np.ndarray], times_ms: list[int], end_ms: int,
                    audio: bool = True, gop: int = 250) -> Path:
    """A variable-frame-rate H.264 mp4 (yuv444p, lossless) made by ffmpeg: frame k shown at
    `times_ms[k]` until the next frame, the last one until `end_ms`; with a tone of that length
    (AAC) when `audio`. ffmpeg's concat demuxer gives each picture its duration."""
    folder = path.with_name(f"{path.stem}-frames")
    pictures = write_frames(folder, frames)
    durations = [b - a for a, b in zip(times_ms, [*times_ms[1:], end_ms])]
    listing = folder / "list.txt"
    listing.write_text("ffconcat version 1.0\n" + "".join(
        f"file '{picture.resolve()}'\noption framerate 1000\nduration {ms / 1000}\n"
        for picture, ms in zip(pictures, durations)))
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing)]
    if audio:
        command += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={end_ms / 1000}",
                    "-map", "0:v", "-map", "1:a", "-c:a", "aac"]
    command += ["-c:v", "libx264", "-g", str(gop), "-pix_fmt", "yuv444p", "-crf", "0", "-fps_mode", "passthrough",
                "-enc_time_base", "1:1000", str(path)]
    subprocess.run(command, check=True)
    return path


def frame_times(path: Path) -> list[float]:
    """The presentation times (seconds) of a video's frames, as decoded."""
    import av

    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(video=0)]
