"""The I/O building blocks: natural order, frame reading, output times, bounded threads."""
from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from pervfi.core.errors import InputError
from pervfi.media.frame_files import list_frames, natural_key, read_image
from pervfi.media.timeline import FrameTimes, Timeline
from pervfi.media.video import exact_rate
from pervfi.runtime.threads import ReadAhead, WriteBehind


def test_natural_order_compares_digit_runs_by_value():
    names = ["frame10.png", "frame2.png", "Frame1.png", "frame_0003.png", "shot2_10.png", "shot2_9.png"]
    assert sorted(names, key=natural_key) == [
        "Frame1.png", "frame2.png", "frame10.png", "frame_0003.png", "shot2_9.png", "shot2_10.png"]


def test_list_frames_keeps_images_only(tmp_path: Path):
    for name in ["b10.jpg", "b9.PNG", "notes.txt", ".hidden.png", "c1.webp"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_frames(tmp_path)] == ["b9.PNG", "b10.jpg", "c1.webp"]


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif", ".webp"])
def test_every_frame_format_reads_as_rgb8(tmp_path: Path, suffix: str):
    frame = np.zeros((12, 16, 3), np.uint8)
    frame[..., 0] = 200  # red
    path = tmp_path / f"f{suffix}"
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if suffix == ".webp" else []
    assert cv2.imwrite(str(path), frame[..., ::-1], params)
    pixels, note = read_image(path)
    assert pixels.shape == (12, 16, 3) and pixels.dtype == np.uint8 and note is None
    assert abs(int(pixels[..., 0].mean()) - 200) <= 2 and pixels[..., 2].max() <= 3


def test_sixteen_bit_colour_is_scaled_not_clipped(tmp_path: Path):
    values = np.array([[[0, 257 * 100, 65535]]], np.uint16).repeat(4, 0).repeat(4, 1)  # R, G, B
    cv2.imwrite(str(tmp_path / "f.png"), values[..., ::-1])
    pixels, note = read_image(tmp_path / "f.png")
    assert note == "16-bit" and pixels[0, 0].tolist() == [0, 100, 255]


def test_truncated_jpeg_is_an_error_naming_the_file(tmp_path: Path):
    path = tmp_path / "cut.jpg"
    cv2.imwrite(str(path), (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(InputError, match="cut.jpg"):
        read_image(path)


def test_scale_timeline_is_the_reference_count_and_hits_every_source_frame():
    timeline = Timeline.for_scale(FrameTimes.constant(Fraction(1), 5), 4)
    assert timeline.count() == 17
    frames = timeline.tail(0, 4)
    assert [number for number, _ in frames] == list(range(17))
    assert [time for _, time in frames][::4] == [Fraction(k) for k in range(5)]


def test_target_rate_keeps_the_duration_and_reuses_coinciding_source_times():
    timeline = Timeline.for_rate(FrameTimes.constant(Fraction(24), 48), Fraction(60))
    times = [time for _, time in timeline.tail(0, 47)]
    assert len(times) == 120 and times[-1] == Fraction(119, 60)  # 2 s at 60 fps
    source = {Fraction(k, 24) for k in range(48)}
    assert sum(t in source for t in times) == 24  # every other source frame falls on the grid


def test_ntsc_rates_are_exact():
    timeline = Timeline.for_rate(FrameTimes.constant(exact_rate(23.98), 1001), Fraction(60000, 1001))
    assert timeline.source.rate == Fraction(24000, 1001)
    assert timeline.count() == 2503  # ceil(1001 · 2.5)


def test_read_ahead_is_bounded_and_passes_errors_on():
    produced = []

    def items():
        for i in range(100):
            produced.append(i)
            yield i
        raise InputError("broken at the end")

    reader = ReadAhead(items(), depth=3)
    iterator = iter(reader)
    assert next(iterator) == 0
    threading.Event().wait(0.2)
    assert len(produced) <= 5  # one taken, three queued, one blocked in put
    with pytest.raises(InputError, match="broken"):
        list(iterator)
    reader.close()


def test_write_behind_consumes_in_order_and_reports_the_consumers_error():
    seen = []
    writer = WriteBehind(seen.append, depth=2)
    for i in range(20):
        writer.put(i)
    writer.close()
    assert seen == list(range(20))

    def fail(item):
        raise OSError("disk full")

    writer = WriteBehind(fail, depth=2)
    writer.put(1)
    with pytest.raises(OSError, match="disk full"):
        for i in range(10):
            writer.put(i)
        writer.close()


def test_write_behind_does_not_mask_the_producers_own_error():
    calls = []

    def fail(item):
        calls.append(item)
        raise OSError("encoder died")

    writer = WriteBehind(fail, depth=2)
    writer.put(1)
    # The pipeline closes without checking while its own error (here Ctrl-C) propagates: that error
    # reaches the caller, not the writer's.
    with pytest.raises(KeyboardInterrupt):
        try:
            raise KeyboardInterrupt
        finally:
            writer.close(check=False)
    assert calls == [1]
    # A checking close would have raised the writer's error instead.
    checked = WriteBehind(fail, depth=2)
    checked.put(2)
    with pytest.raises(OSError, match="encoder died"):
        checked.close()
