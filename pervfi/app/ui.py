"""The Gradio page: input, controls, and the results of one `Studio` job at a time.

Problems the user can fix arrive as one line in the page (`gr.Error` with the library's
message, server paths replaced by the names the user knows); anything else is logged and
the server goes on serving. Each browser session works in its own folder, removed when
the session ends; Gradio's copies of uploads and results are removed by its cache cleaner.
"""
from __future__ import annotations

import contextvars
import logging
import shutil
import tempfile
import threading
from fractions import Fraction
from pathlib import Path

import gradio as gr
from tqdm import tqdm

from pervfi.core.errors import CheckpointError, InputError, PerVFIError
from pervfi.media.scenes import SCENE_CUT_MODES
from pervfi.runtime.sequence import output_frame_count

from .jobs import GIF_SIDE, SCALES, Request, Studio
from .methods import WEIGHT_FREE_METHOD, MethodChoice

log = logging.getLogger("pervfi.app")

SOURCES = ("Example", "Video", "Images")
RATE_CHOICE = "a frame rate"
FRAME_CHOICES = (*(f"×{scale}" for scale in SCALES), RATE_CHOICE)
TILE_CHOICES = ("off", "256", "512", "1024")
RATE_SEPARATOR = " · "
PROGRESS_PERIOD = 0.25  # seconds between progress updates in the page
# Gradio's cache of uploads and results: look every 10 minutes, remove what is older than an hour.
CACHE_CLEANING = (600, 3600)
# Seconds of GPU time asked for on a ZeroGPU Space: a start-up allowance and a bound per
# output frame (raft+pervfi at 720p on a shared GPU), capped by what ZeroGPU grants.
GPU_START_SECONDS, GPU_SECONDS_PER_FRAME, GPU_MAX_SECONDS = 30, 0.5, 300

INTRO = """# PerVFI — perception-oriented video frame interpolation
Upload a video or two or more images (or keep the example), pick a method, and press **Interpolate**.
`dis+splat` needs no weights and runs on any CPU; the PerVFI generators (`pervfi`, `pervfi-vb`) use
the authors' checkpoints (CVPR 2024, "Perception-Oriented Video Frame Interpolation via Asymmetric
Blending")."""


class ProgressRelay:
    """Shows the tool's own tqdm progress bar in the page, frames done and rate, by reading the
    newest bar a few times a second (Gradio's `track_tqdm` shows the count and time, not the
    rate). A checkpoint download's bar shows the same way."""

    def __init__(self, progress: gr.Progress, period: float = PROGRESS_PERIOD) -> None:
        self.progress = progress
        self.period = period
        self._stop = threading.Event()
        # Gradio finds the page's event through context variables: the thread runs in a copy.
        self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._relay,), daemon=True)

    def __enter__(self) -> "ProgressRelay":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _relay(self) -> None:
        while not self._stop.wait(self.period):
            with tqdm.get_lock():  # the bars that exist now (tqdm keeps them in a class-wide set)
                bars = [bar for bar in getattr(tqdm, "_instances", ()) if not bar.disable and bar.total]
            if not bars:
                continue
            state = max(bars, key=lambda bar: bar.start_t).format_dict
            rate = state["rate"] or (state["n"] / state["elapsed"] if state["elapsed"] else 0.0)
            self.progress((state["n"], state["total"]), unit=state["unit"],
                          desc=f"{state['prefix']}{RATE_SEPARATOR}{rate:.2f} {state['unit']}/s")


class Sessions:
    """One working folder per browser session, each job in a fresh subfolder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._jobs = 0
        self._lock = threading.Lock()

    def job_folder(self, session: str | None) -> Path:
        """A new folder for the session's next job; the session's earlier jobs are removed
        (Gradio has its own copies of what they returned)."""
        with self._lock:
            self._jobs += 1
            number = self._jobs
        folder = self.root / (session or "anonymous")
        if folder.is_dir():
            for old in folder.iterdir():
                shutil.rmtree(old, ignore_errors=True)
        job = folder / f"job-{number}"
        job.mkdir(parents=True)
        return job

    def end(self, session: str | None) -> None:
        shutil.rmtree(self.root / (session or "anonymous"), ignore_errors=True)


def request_from(source: str, example: str | None, video: str | None, images: list[str] | None, method: str,
                 frames: str, target_fps: float | None, image_fps: float | None, scene_cut: str, heat: float,
                 seed: float | None, flow_scale: float, tile: str) -> Request:
    """The page's values as a job request (values outside the controls' range are refused by Request)."""
    if source not in SOURCES:
        raise InputError(f"input {source!r} is not one of {', '.join(SOURCES)}")
    if frames not in FRAME_CHOICES:
        raise InputError(f"{frames!r} is not one of {', '.join(FRAME_CHOICES)}")
    if frames == RATE_CHOICE and not target_fps:
        raise InputError("give the target frame rate")
    if tile not in TILE_CHOICES:
        raise InputError(f"tiles {tile!r} are not one of {', '.join(TILE_CHOICES)}")
    return Request(
        kind=source.lower(), example=example, video=Path(video) if video else None,
        images=tuple(Path(image) for image in images or ()), method=method or WEIGHT_FREE_METHOD,
        scale=2 if frames == RATE_CHOICE else int(frames.lstrip("×")),
        target_fps=_rate(target_fps) if frames == RATE_CHOICE else None,
        image_fps=_rate(image_fps or 5), scene_cut=scene_cut, heat=float(heat),
        seed=None if seed is None else int(seed), flow_scale=float(flow_scale),
        tile=None if tile == "off" else int(tile),
    )


def build_demo(studio: Studio, sessions: Sessions, choices: list[MethodChoice], default_method: str) -> gr.Blocks:
    """The page. Jobs queue for the one device (concurrency 1); see `launch` for the queue size."""
    examples = studio.examples()

    def interpolate(source, example, video, images, method, frames, target_fps, image_fps, scene_cut, heat, seed,
                    flow_scale, tile, request: gr.Request, progress=gr.Progress()):
        folder = sessions.job_folder(request.session_hash if request else None)
        job = None
        try:
            job = request_from(source, example, video, images, method, frames, target_fps, image_fps, scene_cut,
                               heat, seed, flow_scale, tile)
            progress(0, desc="loading the model")
            with ProgressRelay(progress):
                result = studio.run(job, folder)
        except PerVFIError as err:
            message = studio.public_message(err, job, folder)
            if isinstance(err, CheckpointError):
                message += f" ({WEIGHT_FREE_METHOD} needs no weights)"
            log.warning("refused: %s", message)
            raise gr.Error(message, print_exception=False) from None
        log.info("done: %s", result.summary())
        files = [str(result.video), str(result.frames_zip), str(result.gif)]
        return str(result.video), str(result.montage), str(result.gif), files, result.summary()

    def gpu_seconds(source, example, video, images, method, frames, target_fps, image_fps, scene_cut, heat, seed,
                    flow_scale, tile, request=None, progress=None) -> int:
        """ZeroGPU's time for this job: enough for its frames (the limits' worst case when unknown)."""
        try:
            job = request_from(source, example, video, images, method, frames, target_fps, image_fps, scene_cut,
                               heat, seed, flow_scale, tile)
            with tempfile.TemporaryDirectory(dir=sessions.root) as scratch:
                count = output_frame_count(*studio.plan(job, Path(scratch)))
        except PerVFIError:
            count = 0  # refused at once when the job runs
        return int(min(GPU_MAX_SECONDS, GPU_START_SECONDS + GPU_SECONDS_PER_FRAME * count))

    with gr.Blocks(title="PerVFI", analytics_enabled=False, delete_cache=CACHE_CLEANING) as demo:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column():
                source = gr.Radio(SOURCES, value="Example" if examples else "Video", label="Input")
                example = gr.Dropdown(examples, value=examples[0] if examples else None, label="Example",
                                      visible=bool(examples))
                video = gr.Video(label="Video", sources=["upload"], visible=not examples, elem_id="input-video")
                images = gr.File(label="Images (two or more; ordered by name)", file_count="multiple",
                                 file_types=["image"], visible=False)
                method = gr.Dropdown([(choice.label, choice.name) for choice in choices], value=default_method,
                                     label="Method", info="FLOW+GENERATOR; unavailable ones say why")
                frames = gr.Radio(FRAME_CHOICES, value=FRAME_CHOICES[0], label="Frames",
                                  info="×N: N−1 new frames between each pair; or resample to a frame rate")
                target_fps = gr.Number(60, label="Target frame rate", minimum=1, visible=False)
                image_fps = gr.Number(5, label="Frame rate of the images", minimum=0.1, visible=bool(examples))
                with gr.Accordion("More settings", open=False):
                    scene_cut = gr.Radio(SCENE_CUT_MODES, value="repeat", label="At a scene cut",
                                         info="hold the earlier frame, cross-fade, or interpolate anyway")
                    heat = gr.Slider(0, 1, value=0.3, step=0.05, label="Heat (v00's noise)")
                    seed = gr.Number(0, precision=0, label="Seed (v00's noise; empty: random)")
                    flow_scale = gr.Slider(0.25, 1, value=1, step=0.25, label="Flow scale",
                                           info="estimate the flow at this fraction of the size (0.5 for 4K)")
                    tile = gr.Dropdown(TILE_CHOICES, value="off", label="Tiles (pixels)",
                                       info="run the generator in tiles when a frame does not fit in memory")
                run = gr.Button("Interpolate", variant="primary", elem_id="run")
            with gr.Column():
                result = gr.Video(label="Result", autoplay=True, loop=True, interactive=False, elem_id="result")
                comparison = gr.Video(label="Input | output", loop=True, interactive=False)
                gif = gr.Image(label=f"GIF (at most {GIF_SIDE} pixels a side)", type="filepath", interactive=False)
                downloads = gr.File(label="Downloads: video, frames (zip), GIF", file_count="multiple",
                                    interactive=False)
                summary = gr.Markdown(elem_id="summary")

        source.change(lambda kind: (gr.update(visible=kind == "Example"), gr.update(visible=kind == "Video"),
                                    gr.update(visible=kind == "Images"), gr.update(visible=kind != "Video")),
                      source, [example, video, images, image_fps], api_name=False, queue=False)
        frames.change(lambda choice: gr.update(visible=choice == RATE_CHOICE), frames, target_fps,
                      api_name=False, queue=False)
        run.click(_on_zero_gpu(interpolate, gpu_seconds), [source, example, video, images, method, frames, target_fps, image_fps, scene_cut, heat,
                        seed, flow_scale, tile], [result, comparison, gif, downloads, summary],
                  api_name="interpolate", concurrency_limit=1, concurrency_id="device", show_progress_on=result)

        def end_session(request: gr.Request) -> None:
            sessions.end(request.session_hash)

        demo.unload(end_session)
    return demo


def _rate(value: float) -> Fraction:
    """A rate typed in the page, exact as typed (29.97 is 2997/100)."""
    return Fraction(str(value))


def _on_zero_gpu(function, seconds):
    """`function` under ZeroGPU's `spaces.GPU` (asking for `seconds(...)` of GPU) on such a Space;
    unchanged elsewhere."""
    try:
        import spaces
    except ImportError:
        return function
    return spaces.GPU(duration=seconds)(function)
