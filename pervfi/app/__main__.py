"""``python -m pervfi.app``: serve the demo page (Gradio) on this machine.

Analytics and share links are off and nothing is fetched from the network except missing
checkpoints on first use. Uploads and results live in a temporary folder that is removed
when the server stops (Ctrl-C or SIGTERM); each session's files go when the session ends.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from pervfi.core.cpu_threads import use_threads
from pervfi.core.errors import PerVFIError
from pervfi.models.checkpoints import DEFAULT_CHECKPOINT_DIR
from pervfi.runtime.console import EXIT_USAGE, ArgumentParser, add_threads_option, configure_logging, program_name
from pervfi.runtime.device import resolve_device

from .limits import ENVIRONMENT, Limits, default_limits
from .methods import default_method, method_choices

log = logging.getLogger("pervfi.app")
_WAIT_SECONDS = 0.2  # how often the main thread looks whether the server still runs

# The bundled examples of a source checkout (input/ beside the package), else ./input.
CHECKOUT_EXAMPLES = Path(__file__).resolve().parents[2] / "input"


def build_parser(limits: Limits) -> argparse.ArgumentParser:
    parser = ArgumentParser(prog=program_name("python -m pervfi.app"), description="The PerVFI demo page (Gradio).")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to serve on; 0.0.0.0 for every interface (default: %(default)s)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)),
                        help="port (default: %(default)s)")
    parser.add_argument("--ckpt-dir", type=Path, default=Path(DEFAULT_CHECKPOINT_DIR),
                        help="checkpoint folder (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: %(default)s)")
    parser.add_argument("--method", help="the method selected when the page opens (default: raft+pervfi when "
                                         "its weights are on disk, else dis+splat)")
    parser.add_argument("--examples", type=Path,
                        default=CHECKOUT_EXAMPLES if CHECKOUT_EXAMPLES.is_dir() else Path("input"),
                        help="folder of example sequences offered in the page (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors on stderr")
    add_threads_option(parser)
    hosting = parser.add_argument_group("limits for shared hosting (defaults from the environment variables named)")
    hosting.add_argument("--max-seconds", type=float, default=limits.max_seconds,
                         help=f"longest input clip in seconds (${ENVIRONMENT['max_seconds']}; %(default)s)")
    hosting.add_argument("--max-frames", type=int, default=limits.max_frames,
                         help=f"most output frames of one job (${ENVIRONMENT['max_frames']}; %(default)s)")
    hosting.add_argument("--max-side", type=int, default=limits.max_side,
                         help=f"largest frame side in pixels (${ENVIRONMENT['max_side']}; %(default)s)")
    hosting.add_argument("--queue-size", type=int, default=limits.queue_size,
                         help=f"jobs that may wait for the device (${ENVIRONMENT['queue_size']}; %(default)s)")
    hosting.add_argument("--max-upload-mb", type=int, default=int(os.environ.get("PERVFI_APP_MAX_UPLOAD_MB", 500)),
                         help="largest upload in megabytes ($PERVFI_APP_MAX_UPLOAD_MB; %(default)s)")
    return parser


def serve(args: argparse.Namespace) -> None:
    """Build the page and serve it until interrupted; the temporary folder goes with it."""
    limits = Limits(max_seconds=args.max_seconds, max_frames=args.max_frames, max_side=args.max_side,
                    queue_size=args.queue_size)
    resolve_device(args.device)  # a bad device is refused now rather than at the first job
    threads = use_threads(args.threads)
    choices = method_choices(args.ckpt_dir)
    method = args.method or default_method(choices)
    if method not in {choice.name for choice in choices}:
        raise PerVFIError(f"--method {method!r} is not one of {', '.join(choice.name for choice in choices)}")
    work = Path(tempfile.mkdtemp(prefix="pervfi-app-"))
    os.environ.setdefault("GRADIO_TEMP_DIR", str(work / "gradio"))  # Gradio's uploads and copies go there too
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    demo = None
    try:
        from .jobs import Studio
        from .ui import Sessions, build_demo

        studio = Studio(args.ckpt_dir, args.device, limits, args.examples)
        demo = build_demo(studio, Sessions(work / "sessions"), choices, method)
        demo.queue(max_size=limits.queue_size, default_concurrency_limit=1)
        log.info("PerVFI demo: %s; %d CPU thread%s; jobs in %s (removed on exit)", limits.describe(), threads,
                 "s" if threads > 1 else "", work)
        # Gradio's own lines (its URL, how to share) are for its launch() API: this tool says it in its words
        demo.launch(server_name=args.host, server_port=args.port, share=False, inbrowser=False,
                    max_file_size=f"{args.max_upload_mb}mb", quiet=True, footer_links=["api"],
                    prevent_thread_lock=True)
        log.info("serving on http://%s:%d (Ctrl-C stops it)", args.host, args.port)
        while demo.is_running:
            time.sleep(_WAIT_SECONDS)
    finally:
        if demo is not None:
            demo.close()
        shutil.rmtree(work, ignore_errors=True)


def _serving_problem(error: OSError) -> str:
    """Why the server could not start, in this tool's terms (Gradio's message about a taken port
    names its own launch() parameter)."""
    if str(error).startswith("Cannot find empty port"):
        return "the port is in use; choose another with --port"
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _stop(signum: int, frame: object) -> None:
    """SIGTERM stops the server like Ctrl-C, so the temporary folder is removed; a second
    signal does not interrupt that."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(0)


def main(argv: list[str] | None = None) -> int:
    try:
        limits = default_limits()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    args = build_parser(limits).parse_args(argv)
    configure_logging(args.quiet)
    signal.signal(signal.SIGTERM, _stop)
    try:
        serve(args)
    except (PerVFIError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:  # e.g. the port is taken
        print(f"error: cannot serve on {args.host}:{args.port}: {_serving_problem(err)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
