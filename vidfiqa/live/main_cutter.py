"""Cutting a camera's picks from its main stream, beside the analysis rather than inside it.

Cutting a pick decodes the main stream from the keyframe before it (half a keyframe interval of
full-size frames on average: about 0.1 s of a core for 720p with a 2 s interval), finds the face
again and scores it.  Done in the analysis thread, that time was taken from the substream's
frames: a busy box dropped more of them.  :class:`MainCutter` does it in a thread of its own at a
lower CPU priority (Linux lets a thread have its own nice value), so it uses the time the
analysis leaves; records reach the stream's outbox in the order the analysis finished them.

Bounded: when more than ``max_waiting`` records wait (the box has no time left over), the oldest
goes on uncut, its picks saying why.  At shutdown what waits is cut within a deadline, the rest
passed on uncut: every open track is still emitted.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import replace
from typing import Callable

from ..select.chain import TrackRecord
from ..select.recut import MainStreamCut
from ..sinks.outbox import SinkOutbox

CUTTER_NICE = 10  # the cutter thread's nice value above the process's: it yields to the analysis
MAX_WAITING = 50  # records waiting for the cut before the oldest goes on uncut
SHUTDOWN_CUT_S = 5.0  # at shutdown, waiting records are cut for at most this long


class MainCutter(threading.Thread):
    def __init__(self, name: str, cut: MainStreamCut, outbox: SinkOutbox, log: Callable[..., None], max_waiting: int = MAX_WAITING):
        super().__init__(name=f"vidfiqa-cut-{name}", daemon=True)
        self.stream, self.cut, self.outbox, self.log, self.max_waiting = name, cut, outbox, log, max_waiting
        self._waiting: deque[TrackRecord] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._deadline: float | None = None

    def submit(self, record: TrackRecord) -> None:
        """Queue a finished track (any: rejected ones keep their place in the order)."""
        with self._cond:
            self._waiting.append(record)
            overflow = [self._waiting.popleft()] if len(self._waiting) > self.max_waiting else []
            self._cond.notify()
        for record in overflow:  # outside the lock: the outbox writes to the sinks
            self.outbox.add(self._uncut(record, "the main-stream cut fell behind (the box had no time left over)"))

    def run(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + CUTTER_NICE)
        except (OSError, AttributeError):
            pass  # not Linux, or not allowed: the cut still runs, at the analysis's priority
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._waiting or self._closing)
                if not self._waiting:
                    return  # closing, and nothing left
                # Everything that waits is cut together: while the cut was busy, tracks that
                # ended meanwhile share the decoding of their GOPs (recut.py cut_many).
                records = list(self._waiting)
                self._waiting.clear()
            late = self._deadline is not None and time.monotonic() > self._deadline
            done = [self._uncut(r, "the watch stopped before the main-stream cut") for r in records] if late else self._cut(records)
            for record in done:
                self.outbox.add(record)

    def _cut(self, records: list[TrackRecord]) -> list[TrackRecord]:
        todo = [k for k, r in enumerate(records) if r.accepted and len(r.result.chosen)]
        try:
            cut = self.cut.cut_many([records[k].result for k in todo])
        except Exception as err:  # a cut that fails must not lose the events: they go on with the analysed images
            self.log("error", "main-stream cut failed", stream=self.stream, error=f"{type(err).__name__}: {err}")
            return [self._uncut(r, f"the main-stream cut failed ({type(err).__name__})") for r in records]
        out = list(records)
        for k, result in zip(todo, cut):
            out[k] = replace(records[k], result=result)
        return out

    def _uncut(self, record: TrackRecord, reason: str) -> TrackRecord:
        if not record.accepted or not len(record.result.chosen):
            return record
        return replace(record, result=self.cut.fallback(record.result, reason))

    def close(self, deadline_s: float = SHUTDOWN_CUT_S) -> None:
        """Cut what waits within ``deadline_s``, pass on the rest uncut, and end."""
        with self._cond:
            self._closing = True
            self._deadline = time.monotonic() + deadline_s
            self._cond.notify()
        self.join(deadline_s + 10)

    def __len__(self) -> int:
        return len(self._waiting)
