"""``OUT/events.jsonl``: one line per event of `vidfiqa watch` (schema ``vidfiqa.event/1``),
appended, flushed and fsynced before the next sink sees the event: a line in the log is an event
kept.  Its images are already on disk (the event-folder sink comes first)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from ..errors import OutputError
from ..export.entries import event_record
from ..select.chain import TrackRecord


class EventLogSink:
    name = "event_log"

    def __init__(self, out_dir: str | Path, file_name: str = "events.jsonl"):
        self.path = Path(out_dir) / file_name
        self._lock = threading.Lock()  # the streams' threads append to one file

    def emit(self, record: TrackRecord) -> None:
        if not record.is_event:
            return
        text = json.dumps(event_record(record), separators=(",", ":"), allow_nan=False)
        try:
            with self._lock, open(self.path, "a", encoding="utf-8") as handle:
                handle.write(text + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            raise OutputError.of(err, self.path) from err

    def close(self) -> None:
        pass

    def summary(self) -> None:
        return None
