"""What the benchmark scripts share: the median wall time of a call over several runs."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(fn: Callable[[], object], runs: int) -> float:
    """Median seconds of `runs` calls of `fn`, after one warm-up call (allocator, caches,
    one-time setup)."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
