"""Bounded background stages: decode ahead of the model and encode behind it.

Both keep at most `depth` items in flight, so memory does not grow with the length of a
sequence. Errors raised in a stage's thread reach the main thread at its next call.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_END = object()
# How long a blocked put waits before it looks again whether it should stop.
_POLL_SECONDS = 0.1


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class ReadAhead:
    """Iterates `items` in a background thread, `depth` items ahead of the consumer."""

    def __init__(self, items: Iterable[Any], depth: int) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(items,), name="pervfi-reader", daemon=True)
        self._thread.start()

    def _run(self, items: Iterable[Any]) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, re-raised there
            self._put(_Failure(error))

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def close(self) -> None:
        """Stop the thread (also when the consumer gives up early) and wait for it."""
        self._stop.set()
        self._thread.join()


class WriteBehind:
    """Hands items to `consume` in a background thread, at most `depth` waiting."""

    def __init__(self, consume: Callable[[Any], None], depth: int) -> None:
        self._consume = consume
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pervfi-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self._error is None:
                try:
                    self._consume(item)
                except BaseException as error:  # noqa: BLE001 - re-raised in the producer
                    self._error = error

    def put(self, item: Any) -> None:
        self._raise_error()
        self._queue.put(item)

    def close(self, check: bool = True) -> None:
        """Wait until everything queued is consumed; re-raise the consumer's error if any
        and `check` (not when the producer is already failing with an error of its own)."""
        self._queue.put(_END)
        self._thread.join()
        if check:
            self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error
