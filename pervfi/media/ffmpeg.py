"""imageio-ffmpeg's bundled ffmpeg: the binary, its capabilities, an encoder fed through a
pipe, and its error lines."""
from __future__ import annotations

import functools
import re
import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg

from pervfi.core.cpu_threads import ffmpeg_thread_options
from pervfi.core.errors import OutputError

# Output containers by file suffix → ffmpeg muxer name.
MUXERS = {"mp4": "mp4", "mkv": "matroska", "mov": "mov", "webm": "webm", "gif": "gif"}


def executable() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def run(args: list[str]) -> subprocess.CompletedProcess:
    """ffmpeg with `args` (banner hidden), output captured as text."""
    return subprocess.run([executable(), "-hide_banner", *args], capture_output=True, text=True, errors="replace")


def reason(text: str) -> str:
    """Why ffmpeg failed, from its messages (or an imageio error quoting them): the last line
    before its generic closing words, which says why ("moov atom not found", "Only VP8 or VP9
    or AV1 ... supported for WebM", "...: Permission denied"); warnings come before it."""
    own_words, _, quoted = text.rpartition("=== stderr ===")  # imageio's errors: its words, then ffmpeg's
    for part in (quoted, own_words):
        lines = [_SOURCE.sub("", line).strip() for line in part.splitlines()]
        lines = [line for line in lines if line and not _BANNER.match(line)]
        if lines:
            return next((line for line in reversed(lines) if not _GENERIC.search(line)), lines[0])
    return "ffmpeg failed without a message"


# ffmpeg's banner: its version, build and library versions.
_BANNER = re.compile(r"^(ffmpeg version|built with|configuration:|lib\w+\s+\d)")
# The "[webm @ 0x55d5fa616480] " that starts ffmpeg's messages: who says it, not what.
_SOURCE = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*")
# ffmpeg's closing lines, after the real reason, that say nothing about it (or only in general).
_GENERIC = re.compile(r"^(Error (opening (input|output) files?\b|opening input:|initializing output|while opening "
                      r"encoder|while filtering|submitting|writing|closing)|Could not write header|"
                      r"Conversion failed|Nothing was written|Terminating thread|Error sending frames|"
                      r"Task finished)|error code: -?\d+|\(incorrect codec parameters", re.IGNORECASE)


class Encoder:
    """An ffmpeg process encoding raw frames written to its stdin into `target`.

    Its encoder uses the process's thread budget (`cpu_threads.use_threads`) when one is set.
    Its messages go to a temporary file, so a failure is reported with ffmpeg's own reason
    (an OutputError naming `name`). It runs in its own session: a Ctrl-C in the terminal
    reaches only this program, which then stops ffmpeg itself.
    """

    def __init__(self, args: list[str], target: Path, name: Path) -> None:
        self.name = name
        self._messages = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [executable(), "-hide_banner", "-nostats", "-loglevel", "error", "-y", *args, *ffmpeg_thread_options(),
             str(target)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._messages, start_new_session=True)

    def write(self, data: bytes | memoryview) -> None:
        try:
            self._process.stdin.write(data)
        except (BrokenPipeError, OSError, ValueError):
            self._process.wait()
            self._fail()

    def finish(self) -> None:
        """Wait until ffmpeg has written everything; OutputError with its reason if it failed."""
        try:
            self._process.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # ffmpeg already quit: its status and messages say why
        if self._process.wait() != 0:
            self._fail()
        self._messages.close()

    def kill(self) -> None:
        """Stop ffmpeg at once (the output is being thrown away)."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        try:
            self._process.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        self._messages.close()

    def _fail(self) -> None:
        self._messages.seek(0)
        text = self._messages.read().decode(errors="replace")
        self._messages.close()
        raise OutputError(f"cannot encode {self.name}: {reason(text)}")


@functools.cache
def encoders(kind: str) -> frozenset[str]:
    """Names of the encoders of a kind ("V" video, "A" audio) this ffmpeg has."""
    listing = run(["-encoders"]).stdout
    return frozenset(re.findall(rf"^\s*{kind}\S*\s+(\S+)\s", listing, re.MULTILINE))


@functools.cache
def output_pixel_formats() -> frozenset[str]:
    """Pixel formats ffmpeg can convert to."""
    listing = run(["-pix_fmts"]).stdout
    return frozenset(re.findall(r"^\SO\S*\s+(\S+)\s", listing, re.MULTILINE))


@functools.cache
def trial_encode(muxer: str, codec_args: tuple[str, ...]) -> str | None:
    """Encode one small frame with `codec_args` into the container `muxer`: None when that
    works, else ffmpeg's reason (a codec the container does not take, an option out of the
    encoder's range). Checks an encoding before any real work is done."""
    with tempfile.TemporaryDirectory(prefix="pervfi-trial-") as folder:
        result = run(["-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=gray:s=64x64:r=1:d=1",
                      "-frames:v", "1", *codec_args, "-f", muxer, "-y", str(Path(folder) / "trial")])
    return None if result.returncode == 0 else reason(result.stderr)
