"""A stand-in for the Hugging Face Hub's file endpoint on 127.0.0.1, for download tests.

It speaks what `huggingface_hub.hf_hub_download` needs (point HF_ENDPOINT at `url`):
HEAD and GET on ``/{repo_id}/resolve/{revision}/{filename}``, answered with the headers the
Hub sends (``X-Repo-Commit``, ``ETag``, ``Content-Length``); the revision is ``main`` or the one
commit, `COMMIT`, any other is a 404 with ``X-Error-Code: RevisionNotFound``; a file it does not
hold is a 404 with ``X-Error-Code: EntryNotFound``. Every request is recorded. It also serves
`plain` files ({path: bytes}) at ``/{path}``, as an ordinary web site (for weight files that
come from their authors' site, not the Hub).

A file can be made to break in transit: its first GET announces the full length, sends
`cut_after` bytes and closes the connection; every later GET of it (the client's retries) is
refused with 503, as from a server that went down. A file can also stall: its GET sends
`stall_after` bytes and then nothing until the server stops (to interrupt the client meanwhile).

The server runs in daemon threads, each connection times out, and it shuts itself down after
`lifetime_s` seconds at the latest, so a hung test cannot keep it alive.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"  # any 40-hex commit id


@dataclass
class Request:
    method: str
    filename: str  # inside the repository, or the whole path for other requests
    revision: str | None = None  # as the request named it (None for other requests)


@dataclass
class HubServer:
    """Serve `files` ({filename: bytes}) of the model repository `repo_id` at revision main."""

    repo_id: str
    files: dict[str, bytes]
    cut_after: dict[str, int] = field(default_factory=dict)  # filename -> bytes sent before closing
    stall_after: dict[str, int] = field(default_factory=dict)  # filename -> bytes sent before stalling
    lifetime_s: float = 60.0
    plain: dict[str, bytes] = field(default_factory=dict)  # path -> bytes, served at /{path}
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._watchdog = threading.Timer(self.lifetime_s, self._httpd.shutdown)
        self._watchdog.daemon = True

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "HubServer":
        self._thread.start()
        self._watchdog.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._watchdog.cancel()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def count(self, method: str, filename: str | None = None) -> int:
        """How many `method` requests were made (for `filename`, if given)."""
        with self._lock:
            return sum(r.method == method and filename in (None, r.filename) for r in self.requests)

    def revisions(self, filename: str) -> set[str | None]:
        """The revisions the requests for `filename` named."""
        with self._lock:
            return {r.revision for r in self.requests if r.filename == filename}


def _handler_for(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    prefix = f"/{hub.repo_id}/resolve/"

    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # seconds a connection may stay silent

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def _answer(self, send_body: bool) -> None:
            revision, filename = self.path[len(prefix):].split("/", 1) if self.path.startswith(prefix) else (None, None)
            if filename is None and self.path.lstrip("/") in hub.plain:
                filename, revision = self.path.lstrip("/"), "main"
            hub.record(Request(self.command, filename or self.path, revision))
            body = (hub.plain if filename in hub.plain else hub.files).get(filename) if filename else None
            if body is None or revision not in ("main", COMMIT):
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound" if body is None else "RevisionNotFound")
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            breaks = send_body and filename in hub.cut_after
            if breaks and hub.count("GET", filename) > 1:
                self.send_error(503, "server went away")
                return
            self.send_response(200)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if not send_body:
                return
            if filename in hub.stall_after:
                self.wfile.write(body[: hub.stall_after[filename]])
                self.wfile.flush()
                hub._stopping.wait(hub.lifetime_s)
                return
            self.wfile.write(body[: hub.cut_after[filename]] if breaks else body)
            self.wfile.flush()

        def log_message(self, format: str, *args) -> None:  # keep test output clean
            pass

    return Handler
