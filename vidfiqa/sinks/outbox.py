"""How `vidfiqa watch` hands one stream's records to the sinks: in order, and again later when a
sink could not take one (a full disk, a read-only folder).

A record goes to the sinks in list order; a sink that raises ``OSError`` or ``OutputError``
keeps the record (and every record after it: the order is kept) waiting, and it is offered to that
sink again after a delay that doubles up to SINK_RETRY_MAX_S - the sinks before it are not asked
again.  At most MAX_PENDING_EVENTS records wait (the oldest are dropped and counted as lost), so
a disk that never recovers costs bounded memory.  Each stream's analysis thread drives its own
outbox; the Ray driver drives one per stream for the records its actors send.

Every record is named here, before the first sink sees it (:class:`EventNamer`): the event's id
and the wall-clock second it was emitted, so every sink describes an event the same way.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable

from ..errors import OutputError
from ..export.entries import event_latency
from ..live.metrics import Metrics
from ..select.chain import TrackRecord
from .base import TrackSink

MAX_PENDING_EVENTS = 100  # records kept for a retry after a sink error (the oldest go first)
SINK_RETRY_MIN_S, SINK_RETRY_MAX_S = 1.0, 60.0
RECENT_NAMES = 1000  # event ids remembered to keep new ones unique


class EventNamer:
    """Gives each record its event id: ``<stream>-<UTC second>-<track id>-<segment>``.

    Track ids start again when a camera's analysis restarts: an id already given (or already a
    folder under ``OUT/events/<stream>/``, from an earlier run) gets a suffix ``-2``, ``-3`` ...,
    so no event replaces another's."""

    def __init__(self, out_dir: str | Path):
        self.events_dir = Path(out_dir) / "events"
        self._given: deque[str] = deque(maxlen=RECENT_NAMES)
        self._lock = threading.Lock()

    def __call__(self, record: TrackRecord) -> TrackRecord:
        now = time.time()
        stamp = dt.datetime.fromtimestamp(now, dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        base = f"{record.stream}-{stamp}-{record.track_id:04d}-{record.segment}"
        with self._lock:
            event_id, n = base, 1
            while event_id in self._given or (self.events_dir / str(record.stream) / event_id).exists():
                n += 1
                event_id = f"{base}-{n}"
            self._given.append(event_id)
        return record.named(event_id, now)


class SinkOutbox:
    """One stream's records on their way to the sinks (see the module docstring)."""

    def __init__(self, stream: str, sinks: list[TrackSink], metrics: Metrics, log: Callable[..., None], namer: EventNamer | None = None):
        self.stream, self.sinks, self.metrics, self.log, self.namer = stream, sinks, metrics, log, namer
        self._pending: deque[list] = deque()  # [record, index of the next sink to take it]
        self._lock = threading.Lock()  # add() from the analysis thread, write() also at shutdown
        self._retry_at = 0.0
        self._retry_delay = SINK_RETRY_MIN_S
        metrics.gauge("vidfiqa_events_pending", self.__len__, stream=stream)

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, record: TrackRecord) -> None:
        if self.namer is not None:
            record = self.namer(record)
        with self._lock:
            self._pending.append([record, 0])
            while len(self._pending) > MAX_PENDING_EVENTS:
                lost, _ = self._pending.popleft()
                if lost.is_event:
                    self.metrics.inc("vidfiqa_events_lost_total", stream=self.stream)
        self.write_due()

    def write_due(self) -> None:
        """Deliver the waiting records, oldest first, unless a retry is not due yet."""
        if self._pending and time.monotonic() >= self._retry_at:
            self.write()

    def write(self) -> None:
        with self._lock:
            while self._pending:
                entry = self._pending[0]
                record, first = entry
                for position in range(first, len(self.sinks)):
                    sink = self.sinks[position]
                    try:
                        sink.emit(record)
                    except (OutputError, OSError) as err:
                        entry[1] = position  # the sinks before it have the record: only this one and those after are asked again
                        self.metrics.inc("vidfiqa_sink_errors_total", stream=self.stream, sink=sink.name)
                        self.log("warning", "event not written, will retry", stream=self.stream, sink=sink.name, error=str(err),
                                 pending=len(self._pending), retry_in_s=round(self._retry_delay, 1))
                        self._retry_at = time.monotonic() + self._retry_delay
                        self._retry_delay = min(SINK_RETRY_MAX_S, 2 * self._retry_delay)
                        return
                self._pending.popleft()
                self._retry_delay = SINK_RETRY_MIN_S
                if record.is_event:
                    self.metrics.inc("vidfiqa_events_total", stream=self.stream)
                    if record.emitted_at is not None and record.wall_start is not None:
                        self.metrics.set("vidfiqa_event_latency_seconds", event_latency(record), stream=self.stream)

    def close(self) -> int:
        """A last try for records a sink refused; returns how many events are lost."""
        self.write()
        with self._lock:
            lost = sum(1 for record, _ in self._pending if record.is_event)
            self._pending.clear()
        if lost:
            self.metrics.inc("vidfiqa_events_lost_total", lost, stream=self.stream)
            self.log("error", "events not written at shutdown", stream=self.stream, lost=lost)
        return lost

