"""FFmpeg's motion-compensated `minterpolate` filter as a baseline, through the binary
that the imageio-ffmpeg package ships.

The two frames go to ffmpeg at 1 frame/s as raw RGB through pipes (the second one twice, because the filter emits
nothing after the last input frame), and the filter resamples to N frames/s, so output
frame k lies at time k/N. A time t must therefore be a fraction k/N; N is the least
common denominator of the requested times, at most `MAX_RATE`.
"""
from __future__ import annotations

import math
import subprocess
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import torch
from torch import Tensor

from pervfi.core.errors import PerVFIError
from pervfi.media.ffmpeg import executable as ffmpeg_executable
from pervfi.media.tensors import to_tensor, to_uint8

# Motion-compensated interpolation with adaptive overlapped blocks, bidirectional motion
# estimation and variable-size blocks. Scene-change detection is off: on a large motion
# it would silently repeat a frame instead of interpolating.
FILTER_OPTIONS = "mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1:scd=none"
MAX_RATE = 960
MIN_SIDE = 32  # the filter refuses smaller frames


class MinterpolateBaseline:
    """ffmpeg's minterpolate between two frames, at times that are fractions k/N."""

    name = "minterpolate"

    def interpolate(self, img0: Tensor, img1: Tensor, times: Sequence[float],
                    references: Sequence[Tensor] = (), rng: torch.Generator | None = None) -> list[Tensor]:
        fractions = [output_fraction(time) for time in times]
        rate = math.lcm(*(fraction.denominator for fraction in fractions))
        if rate > MAX_RATE:
            raise PerVFIError(f"minterpolate: times {list(times)} need {rate} frames/s, more than {MAX_RATE}")
        frames = self._run([to_uint8(img0), to_uint8(img1)], rate)
        return [to_tensor(frames[int(fraction * rate)], img0.device) for fraction in fractions]

    def _run(self, frames: list[np.ndarray], rate: int) -> np.ndarray:
        height, width, _ = frames[0].shape
        if min(height, width) < MIN_SIDE:
            raise PerVFIError(f"minterpolate needs frames of at least {MIN_SIDE}×{MIN_SIDE}, got {width}×{height}")
        command = [
            ffmpeg_executable(), "-hide_banner", "-loglevel", "error", "-nostdin",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", "1", "-i", "pipe:0",
            "-vf", f"minterpolate=fps={rate}:{FILTER_OPTIONS}",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
        ]
        payload = b"".join(frame.tobytes() for frame in (frames[0], frames[1], frames[1]))
        result = subprocess.run(command, input=payload, capture_output=True, check=False)
        if result.returncode != 0:
            lines = result.stderr.decode(errors="replace").strip().splitlines()
            raise PerVFIError(f"ffmpeg minterpolate failed: {lines[0] if lines else f'exit {result.returncode}'}")
        output = np.frombuffer(result.stdout, dtype=np.uint8)
        count = output.size // (height * width * 3)
        if count < rate + 1:
            raise PerVFIError(f"ffmpeg minterpolate returned {count} frames, expected {rate + 1}")
        return output[: count * height * width * 3].reshape(count, height, width, 3)


def output_fraction(time: float) -> Fraction:
    """`time` as a fraction k/N with N ≤ MAX_RATE; PerVFIError when it is not one."""
    fraction = Fraction(time).limit_denominator(MAX_RATE)
    if not 0 < fraction < 1 or abs(float(fraction) - time) > 1e-9:
        raise PerVFIError(f"minterpolate can only produce times k/N in (0, 1) with N ≤ {MAX_RATE}, got {time}")
    return fraction

