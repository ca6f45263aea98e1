"""Decode ahead in a background thread.

PyAV and decord release the GIL while decoding, and onnxruntime while running a model, so
decoding the next frames on one core while the other detects and scores this one gives close to
``max(decode, process)`` per frame instead of their sum on a 2-core machine.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
_DONE = object()


class Prefetcher(Iterator[T]):
    """Iterate ``items`` in a daemon thread, at most ``depth`` items ahead.

    Exceptions raised by ``items`` are re-raised in the consumer.  ``busy_s`` is the time the
    thread spent producing items (the decode cost, even though it overlaps other work).
    """

    def __init__(self, items: Iterable[T], depth: int = 4):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self.busy_s = 0.0
        self._thread = threading.Thread(target=self._produce, args=(iter(items),), name="vidfiqa-decode", daemon=True)
        self._thread.start()

    def _produce(self, items: Iterator[T]) -> None:
        try:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    item = next(items)
                except StopIteration:
                    break
                self.busy_s += time.perf_counter() - start
                self._put(item)
        except BaseException as err:  # handed to the consumer, which raises it
            self._put(_Failure(err))
        self._put(_DONE)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __next__(self) -> T:
        item = self._queue.get()
        if item is _DONE:
            self._queue.put(_DONE)  # stay exhausted
            raise StopIteration
        if isinstance(item, _Failure):
            raise item.error
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error
