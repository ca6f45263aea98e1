"""Inside a Ray camera actor (`vidfiqa watch --ray`), the only sink: records wait here until the
driver collects them and hands them to the real sinks (live/ray_cameras.py).  Records are plain
data (arrays and numbers), so they travel as they are; the stream's wall clock is in the record."""

from __future__ import annotations

import threading
from collections import deque

from ..select.chain import TrackRecord

RELAY_LIMIT = 1000  # records an actor keeps for its driver (the oldest go first)


class RelaySink:
    name = "relay"

    def __init__(self, limit: int = RELAY_LIMIT):
        self._items: deque[TrackRecord] = deque()
        self._lock = threading.Lock()
        self.limit = limit
        self.lost: dict[str, int] = {}  # events per stream pushed out before the driver came for them

    def emit(self, record: TrackRecord) -> None:
        with self._lock:
            self._items.append(record)
            while len(self._items) > self.limit:
                gone = self._items.popleft()
                if gone.is_event:
                    name = str(gone.stream)
                    self.lost[name] = self.lost.get(name, 0) + 1

    def take(self) -> list[TrackRecord]:
        with self._lock:
            items, self._items = list(self._items), deque()
        return items

    def close(self) -> None:
        pass

    def summary(self) -> None:
        return None
