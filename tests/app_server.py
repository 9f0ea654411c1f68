"""The demo app as a real server in a subprocess, for the tests that drive it over HTTP."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 240  # importing Gradio and PyTorch on two busy cores takes a while
STOP_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class AppServer:
    url: str
    process: subprocess.Popen
    temp: Path  # the server's TMPDIR: its working folder lives here while it runs
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, as a host stops a service; the exit status."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def start_app(folder: Path, *args: str, env: dict[str, str] | None = None) -> AppServer:
    """`python -m pervfi.app` on a free local port, offline, with its own temporary folder;
    returns once the page answers."""
    temp = folder / "tmp"
    temp.mkdir(parents=True)
    port = free_port()
    log = folder / "server.log"
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TMPDIR": str(temp), **(env or {})}
    full_env.pop("GRADIO_TEMP_DIR", None)
    command = [sys.executable, "-m", "pervfi.app", "--port", str(port), *args]
    with open(log, "w") as sink:
        process = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=sink, stderr=subprocess.STDOUT)
    server = AppServer(f"http://127.0.0.1:{port}/", process, temp, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with status {process.returncode}:\n{server.output()}")
        try:
            with urllib.request.urlopen(server.url, timeout=5):
                return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    server.stop()
    raise RuntimeError(f"the app did not answer within {START_TIMEOUT} s:\n{server.output()}")
