"""Memory sizes as people write them ("8GB", "512MiB") and the host's memory as the
kernel reports it. Free of PyTorch, so the tools check `--max-memory` before loading it.
"""
from __future__ import annotations

import re
from pathlib import Path

# Decimal units as disks and cards are sold (8GB = 8·10⁹ bytes), binary ones spelled with
# an i (8GiB = 8·2³⁰); a bare number is bytes.
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
          "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]i?)?b?\s*", re.IGNORECASE)


def parse_memory(text: str) -> int:
    """Bytes from a size such as ``8GB``, ``1.5G``, ``512MiB`` or ``4000000000``;
    ValueError (one line, naming the text) unless it is a positive size."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a memory size (e.g. 8GB, 512MB, 1.5GiB)")
    size = int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])
    if size <= 0:
        raise ValueError(f"a memory size must be positive, got {text!r}")
    return size


def format_bytes(size: float) -> str:
    """A size for messages: "3.2 GB", "640 MB" (decimal units, as `parse_memory` reads)."""
    return f"{size / 10**9:.1f} GB" if size >= 10**9 else f"{size / 10**6:.0f} MB"


def _kilobytes(path: str, field: str) -> int | None:
    """A "Field:   123 kB" line of a /proc file, in bytes (None where there is no /proc)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def available_ram() -> int | None:
    """Memory the system can give without swapping (Linux MemAvailable); None elsewhere."""
    return _kilobytes("/proc/meminfo", "MemAvailable")


def process_ram() -> int | None:
    """This process's resident memory (Linux VmRSS); None elsewhere."""
    return _kilobytes("/proc/self/status", "VmRSS")
