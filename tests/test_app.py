"""The demo app (`python -m pervfi.app`), driven as a user's browser would through `gradio_client`:
a real server in a subprocess, real uploads, the files it serves read back and checked."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import zipfile
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from pervfi.app.jobs import Request, Studio
from pervfi.app.limits import Limits, default_limits
from pervfi.core.errors import InputError
from pervfi.media.sources import frame_sequence
from pervfi.runtime.sequence import Settings
from tests.app_server import ROOT, start_app
from tests.hub_server import HubServer
from tests.media import moving_frames, read_png, texture, video_frames, write_frames, write_video
from tests.test_gif import gif_frames

gradio_client = pytest.importorskip("gradio_client", reason="gradio_client is not installed (requirements.txt)")
Client, handle_file = gradio_client.Client, gradio_client.handle_file
AppError = gradio_client.exceptions.AppError

LIMITS = ["--max-seconds", "3", "--max-frames", "40", "--max-side", "400", "--queue-size", "4"]
EXAMPLE = ROOT / "input" / "shapes"


@pytest.fixture(scope="module")
def app(tmp_path_factory, ckpt_dir):
    """The app with v00 and vb on disk (no flow weights), offline, under tight hosting limits."""
    server = start_app(tmp_path_factory.mktemp("app"), "--ckpt-dir", str(ckpt_dir), *LIMITS)
    assert len(list(server.temp.glob("pervfi-app-*"))) == 1  # its working folder, Gradio's files inside
    yield server
    assert server.stop() == 0, server.output()
    assert not list(server.temp.glob("pervfi-app-*")), "the app left its working folder behind"


@pytest.fixture
def client(app, tmp_path) -> Client:
    return Client(app.url, download_files=str(tmp_path / "downloads"), verbose=False)


def interpolate(client: Client, source: str = "Example", video: Path | None = None, images: tuple[Path, ...] = (),
                method: str = "dis+splat", frames: str = "×2", **controls) -> tuple:
    """One job through the page's API: (video, comparison, GIF, downloads, summary)."""
    values = {"example": "shapes", "target_fps": 60, "image_fps": 5, "scene_cut": "repeat", "heat": 0.3, "seed": 0,
              "flow_scale": 1, "tile": "off", **controls}
    return client.predict(source=source, video=handle_file(str(video)) if video else None,
                          images=[handle_file(str(image)) for image in images], method=method, frames=frames,
                          api_name="/interpolate", **values)


def image_pair(folder: Path, size: tuple[int, int] = (16, 16), names: tuple[str, str] = ("a.png", "b.png")) -> tuple[Path, ...]:
    frames = moving_frames(2, size[1], size[0])
    return tuple(write_frames(folder, frames, list(names)))


def assert_answers(client: Client, folder: Path) -> None:
    """The app still does its job: two 16×16 images, ×2, give three frames."""
    video, *_ = interpolate(client, "Images", images=image_pair(folder / "pair"))
    assert len(video_frames(Path(video))[1]) == 3


def moov_before_mdat(path: Path) -> bool:
    data = path.read_bytes()
    return data.index(b"moov") < data.index(b"mdat")


def test_example_gives_the_video_comparison_gif_and_frames(client):
    video, comparison, gif, downloads, summary = interpolate(client)
    meta, frames = video_frames(Path(video))
    assert len(frames) == 11 and meta["fps"] == 10 and abs(meta["duration"] - 1.1) < 0.05  # 6 frames ×2 at 5 → 10 fps
    assert meta["codec"].startswith("h264") and meta["pix_fmt"].startswith("yuv420p") and moov_before_mdat(Path(video))
    assert summary.startswith("11 frames at 10 frames/s (1.10 s)")
    meta, montage = video_frames(Path(comparison))
    assert len(montage) == 11 and meta["size"] == (640, 240)
    assert len(gif_frames(Path(gif))[0]) == 11
    assert sorted(Path(path).name for path in downloads) == ["shapes-dis+splat-frames.zip", "shapes-dis+splat.gif",
                                                               "shapes-dis+splat.mp4"]
    zip_path = next(Path(path) for path in downloads if path.endswith(".zip"))
    with zipfile.ZipFile(zip_path) as archive:
        names = sorted(archive.namelist())
        assert len(names) == 11
        first = cv2.imdecode(np.frombuffer(archive.read(names[2]), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    np.testing.assert_array_equal(first, read_png(EXAMPLE / "0001.png"))  # source frames pass through exactly


def test_uploaded_video_gives_the_right_count_and_duration(client, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", moving_frames(8, 37, 50), fps=8)  # odd height: padded to even
    video, *_, summary = interpolate(client, "Video", video=clip, frames="×4")
    meta, frames = video_frames(Path(video))
    assert len(frames) == 29 and meta["fps"] == 32  # (8 − 1) × 4 + 1 at 8 × 4 frames/s
    assert abs(meta["duration"] - 29 / 32) < 0.02 and meta["size"] == (50, 38)
    assert Path(video).name == "clip-dis+splat.mp4" and "29 frames at 32 frames/s" in summary


def test_a_target_rate_keeps_the_duration(client, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", moving_frames(6, 16, 16), fps=6)
    video, *_ = interpolate(client, "Video", video=clip, frames="a frame rate", target_fps=15)
    meta, frames = video_frames(Path(video))
    assert len(frames) == 15 and meta["fps"] == 15  # 1 s at 15 frames/s


def test_a_learned_generator_with_its_weights_on_disk_runs(client, tmp_path):
    images = image_pair(tmp_path, (24, 16))
    video, *_ = interpolate(client, "Images", images=images, method="dis+pervfi-vb")
    assert len(video_frames(Path(video))[1]) == 3


def test_methods_say_which_can_run(client):
    dropdown = next(component for component in client.config["components"]
                    if component.get("props", {}).get("label") == "Method")
    labels = dict((value, label) for label, value in dropdown["props"]["choices"])
    assert len(labels) == 18 and dropdown["props"]["value"] == "dis+splat"
    assert labels["dis+splat"] == "dis+splat" and labels["dis+pervfi"] == "dis+pervfi"
    assert labels["raft+pervfi"] == ("raft+pervfi (unavailable: RAFT/raft-sintel.pth missing and HF_HUB_OFFLINE "
                                     "is set)")


def _method_labels(ckpt: Path, endpoint: str) -> dict[str, str]:
    """The method labels the app would show, computed in a fresh process that has HF_ENDPOINT at
    `endpoint` and no HF_HUB_OFFLINE (the Hub client reads both when it is imported)."""
    code = ("import json, sys\nfrom pervfi.app.methods import method_choices\n"
            "print(json.dumps({c.name: c.label for c in method_choices(sys.argv[1])}))")
    env = {key: value for key, value in os.environ.items() if key != "HF_HUB_OFFLINE"}
    result = subprocess.run([sys.executable, "-c", code, str(ckpt)], cwd=ROOT, capture_output=True, text=True,
                            env={**env, "HF_ENDPOINT": endpoint}, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_without_the_hub_learned_methods_are_unavailable_with_the_reason(tmp_path):
    """Not only with HF_HUB_OFFLINE: one quick request at start tells whether the Hub answers
    (here its endpoint is a closed local port, as on a machine without a network)."""
    with HubServer("any/repo", {}) as hub:
        labels = _method_labels(tmp_path, hub.url)
        assert labels["raft+pervfi"] == "raft+pervfi (downloads RAFT/raft-sintel.pth, PerVFI/v00.pth on first use)"
    labels = _method_labels(tmp_path, hub.url)  # the server has stopped: its port refuses connections
    assert labels["dis+splat"] == "dis+splat"
    assert labels["raft+pervfi"].startswith("raft+pervfi (unavailable: RAFT/raft-sintel.pth, PerVFI/v00.pth missing "
                                            f"and the Hub cannot be reached ({hub.url}")
    assert labels["dis+pervfi-vb"].startswith("dis+pervfi-vb (unavailable: PerVFI/vb.pth missing and the Hub")


@pytest.mark.parametrize("count, message", [(0, "no image uploaded"), (1, "one image uploaded")])
def test_fewer_than_two_images_are_counted_in_words(tmp_path, count, message):
    images = image_pair(tmp_path)[:count]
    with pytest.raises(InputError, match=f"^{message}; interpolation needs at least two$"):
        Studio(tmp_path, "cpu", Limits(), EXAMPLE.parent).run(Request(kind="images", images=images), tmp_path / "job")


def test_the_log_speaks_in_the_tools_words(app):
    log = app.output()
    assert "PerVFI demo: clips up to 3 s, at most 40 output frames a job, frames up to 400 pixels a side, " \
           "4 jobs waiting;" in log
    assert re.search(r"serving on http://127\.0\.0\.1:\d+ \(Ctrl-C stops it\)", log)
    assert "Limits(" not in log and "share=True" not in log and "launch()" not in log


def test_a_port_in_use_is_one_line_naming_the_flag():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "pervfi.app", "--port", str(port)], cwd=ROOT,
                                capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                                timeout=240)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (f"error: cannot serve on 127.0.0.1:{port}: the port is in use; "
                                                     "choose another with --port")


def _garbage_video(folder: Path) -> dict:
    (folder / "clip.mp4").write_bytes(b"this is not a video")
    return {"source": "Video", "video": folder / "clip.mp4"}


def _corrupt_image(folder: Path) -> dict:
    good, other = image_pair(folder, (32, 24))
    broken = folder / "broken.png"
    broken.write_bytes(other.read_bytes()[:200])
    return {"source": "Images", "images": (good, broken)}


def _different_sizes(folder: Path) -> dict:
    small = write_frames(folder, [texture(24, 32)], ["small.png"])[0]
    large = write_frames(folder, [texture(30, 40)], ["large.png"])[0]
    return {"source": "Images", "images": (large, small)}


def _too_long(folder: Path) -> dict:
    return {"source": "Video", "video": write_video(folder / "long.mp4", moving_frames(32, 16, 16), fps=8)}


def _too_large(folder: Path) -> dict:
    return {"source": "Images", "images": image_pair(folder, (500, 16))}


def _too_many_frames(folder: Path) -> dict:
    return {"source": "Example", "frames": "×8"}  # 6 frames ×8: 41 frames


def _weights_missing(folder: Path) -> dict:
    return {"source": "Example", "method": "raft+pervfi"}


@pytest.mark.parametrize("make, message", [
    (_garbage_video, "cannot read video clip.mp4: "),
    (_corrupt_image, "cannot read image broken.png: "),
    (_different_sizes, "frame small.png is 32×24 but large.png is 40×30; all frames of a sequence must have one size"),
    (_too_long, "the clip lasts 4 s; this server takes at most 3 s"),
    (_too_large, "500×16 frames are larger than this server takes (at most 400 pixels a side)"),
    (_too_many_frames, "the result would have 41 frames; this server makes at most 40 per job"),
    (_weights_missing, "missing checkpoint RAFT/raft-sintel.pth cannot be downloaded: HF_HUB_OFFLINE is set"),
], ids=["not-a-video", "corrupt-image", "different-sizes", "too-long", "too-large", "too-many-frames",
        "weights-missing-offline"])
def test_bad_input_is_one_line_in_the_page_and_the_app_goes_on(client, tmp_path, make, message):
    with pytest.raises(AppError) as caught:
        interpolate(client, **make(tmp_path))
    text = str(caught.value)
    assert message in text and "\n" not in text and "Traceback" not in text
    assert str(tmp_path) not in text and "/tmp" not in text  # no server paths
    assert_answers(client, tmp_path)


def test_missing_weights_name_the_files_and_the_way_out(client):
    with pytest.raises(AppError, match=r"RAFT/raft-sintel.pth cannot be downloaded: HF_HUB_OFFLINE is set "
                                       r"\(dis\+splat needs no weights\)"):
        interpolate(client, method="raft+pervfi")


def test_limits_come_from_flags_or_the_environment():
    assert default_limits({}) == Limits()
    assert default_limits({"PERVFI_APP_MAX_SECONDS": "2.5", "PERVFI_APP_QUEUE_SIZE": "3"}) == Limits(
        max_seconds=2.5, queue_size=3)
    with pytest.raises(ValueError, match="PERVFI_APP_MAX_SIDE='big' is not an integer"):
        default_limits({"PERVFI_APP_MAX_SIDE": "big"})
    with pytest.raises(ValueError, match="PERVFI_APP_MAX_FRAMES must be positive"):
        default_limits({"PERVFI_APP_MAX_FRAMES": "0"})
    sequence = frame_sequence(EXAMPLE, "shapes")  # 6 frames of 320×240
    Limits(max_seconds=1.2, max_frames=11, max_side=320).check(sequence, Settings(input_fps=Fraction(5)))
    with pytest.raises(InputError, match="the clip lasts 1.2 s; this server takes at most 1.1 s"):
        Limits(max_seconds=1.1).check(sequence, Settings(input_fps=Fraction(5)))


@pytest.mark.parametrize("args, env, message", [
    (["--max-side", "0"], {}, "error: max_side must be positive, got 0"),
    ([], {"PERVFI_APP_MAX_SECONDS": "long"}, "error: PERVFI_APP_MAX_SECONDS='long' is not a number"),
    (["--method", "dis+nothing"], {}, "error: --method 'dis+nothing' is not one of raft+pervfi"),
])
@pytest.mark.parametrize("entry", [["-m", "pervfi.app"], ["app.py"]], ids=["module", "space"])
def test_bad_flags_are_one_line_with_status_2(entry, args, env, message):
    result = subprocess.run([sys.executable, *entry, *args], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", **env}, timeout=120)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(message)


def test_the_cli_and_the_library_never_import_gradio():
    code = ("import sys, pervfi, pervfi.cli, pervfi.runtime.interpolator, pervfi.runtime.sequence, pervfi.download; "
            "import pervfi.app.jobs, pervfi.app.limits, pervfi.app.methods; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('gradio', 'gradio_client'))))")
    result = subprocess.run([sys.executable, "-c", f"import json; {code}"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--autoplay-policy=no-user-gesture-required"]
RESULT_TIMEOUT_MS = 240_000


@pytest.mark.slow
def test_a_browser_uploads_a_clip_and_plays_the_result(app, tmp_path):
    """Headless Chromium: load the page, upload a clip, start the job, and play the result video;
    the page asks for nothing beyond this machine. The screenshot is kept for a person to look at
    (in $PERVFI_SCREENSHOT_DIR when set)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements.txt)")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing (Debian's chromium package; .ci/run installs it)")
    clip = write_video(tmp_path / "walk.mp4", moving_frames(12, 96, 128, step=3), fps=12)  # 1 s
    (sessions,) = app.temp.glob("pervfi-app-*/sessions")
    before = {folder.name for folder in sessions.iterdir()}
    outside = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})

        def local_only(route):
            if route.request.url.startswith(app.url) or route.request.url.startswith(("data:", "blob:")):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", local_only)
        page.goto(app.url)
        page.get_by_label("Video", exact=True).check()
        page.locator("#input-video input[type=file]").set_input_files(str(clip))
        page.locator("#input-video video").wait_for(timeout=60_000)  # the upload shows as a player
        page.locator("#run").click()
        result = page.locator("#result video")
        progress = set()  # the tool's progress bar as the page shows it
        deadline = time.monotonic() + RESULT_TIMEOUT_MS / 1000
        while not result.count() and time.monotonic() < deadline:
            progress |= set(re.findall(r"walk · \d+\.\d\d frame/s|\d+/23 frame\b", page.locator("body").inner_text()))
            time.sleep(0.2)
        result.wait_for(timeout=1000)
        page.wait_for_function("v => v.readyState >= 3", arg=result.element_handle(), timeout=60_000)
        state = result.evaluate("""async v => {
            v.muted = true;
            v.currentTime = 0;
            await v.play();
            const played = [];
            for (let i = 0; i < 20 && played.length < 2; i++) {
                await new Promise(done => setTimeout(done, 250));
                if (v.currentTime > 0) played.push(v.currentTime);
            }
            return {ready: v.readyState, duration: v.duration, width: v.videoWidth, height: v.videoHeight,
                    paused: v.paused, played: played, error: v.error && v.error.code};
        }""")
        summary = page.locator("#summary").inner_text()
        shots = Path(os.environ.get("PERVFI_SCREENSHOT_DIR", tmp_path))
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "app.png"), full_page=True)
        mine = {folder.name for folder in sessions.iterdir()} - before
        browser.close()
    assert len(mine) == 1  # the page's session worked in its own folder ...
    deadline = time.monotonic() + 60
    while (sessions / next(iter(mine))).exists() and time.monotonic() < deadline:
        time.sleep(1)
    assert not (sessions / next(iter(mine))).exists()  # ... removed once the page was closed
    assert state["error"] is None and state["ready"] >= 3 and not state["paused"] and state["played"], state
    assert (state["width"], state["height"]) == (128, 96)
    assert abs(state["duration"] - 23 / 24) < 0.05, state  # 12 frames ×2: 23 frames at 24 frames/s
    assert summary.startswith("23 frames at 24 frames/s")
    assert any(seen.endswith("frame/s") for seen in progress) and any(seen.endswith("frame") for seen in progress), \
        progress  # the tool's progress bar: its rate and the frames done
    assert not outside, f"the page asked for {outside}"
