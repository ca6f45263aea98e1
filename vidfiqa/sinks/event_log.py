"""``OUT/events.jsonl``: one line per event of `vidfiqa watch` (schema ``vidfiqa.event/1``),
appended, flushed and fsynced before the next sink sees the event: a line in the log is an event
kept.  Its images are already on disk (the event-folder sink comes first), and so is its row in
the event store (sinks/event_store.py).

The log is rotated so that it stays bounded: when a line would take it past ``max_bytes``
(``--log-max-mb``), or, with ``daily`` (``--log-daily``), at the first event of a new UTC day,
``events.jsonl`` becomes ``events.jsonl.1``, the ``.1`` before it ``.2`` and so on; at most
``keep`` (``--log-keep``) rotated files stay, the oldest is deleted.  A program that follows the
log reopens ``events.jsonl`` when it is replaced (``tail -F`` does)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import time
from pathlib import Path

from ..errors import OutputError
from ..export.entries import event_record
from ..select.chain import TrackRecord

LOG_FILE = "events.jsonl"


def log_files(out_dir: str | Path, file_name: str = LOG_FILE) -> list[Path]:
    """The log's files that exist, oldest first: the rotated ones (``.N`` ... ``.1``), then the current."""
    out = Path(out_dir)
    rotated = []
    for path in out.glob(f"{file_name}.*") if out.is_dir() else []:
        number = re.fullmatch(re.escape(file_name) + r"\.(\d+)", path.name)
        if number:
            rotated.append((int(number.group(1)), path))
    current = [out / file_name] if (out / file_name).is_file() else []
    return [path for _, path in sorted(rotated, reverse=True)] + current


def utc_day(seconds: float) -> dt.date:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).date()


class EventLogSink:
    name = "event_log"

    def __init__(self, out_dir: str | Path, file_name: str = LOG_FILE, max_bytes: int | None = None, keep: int = 5, daily: bool = False):
        self.path = Path(out_dir) / file_name
        self.max_bytes, self.keep, self.daily = max_bytes, max(0, int(keep)), daily
        self._lock = threading.Lock()  # the streams' threads append to one file
        try:
            self._day: dt.date | None = utc_day(self.path.stat().st_mtime)  # the day of the current file's last line
        except OSError:
            self._day = None
        self.rotations = 0

    def emit(self, record: TrackRecord) -> None:
        if not record.is_event:
            return
        text = json.dumps(event_record(record), separators=(",", ":"), allow_nan=False) + "\n"
        data = text.encode("utf-8")
        try:
            with self._lock:
                today = utc_day(time.time())
                size = self._size()
                if size and ((self.max_bytes is not None and size + len(data) > self.max_bytes) or (self.daily and self._day != today)):
                    self._rotate()
                    size = 0
                with open(self.path, "ab") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                if size == 0:
                    _fsync_folder(self.path.parent)  # the new file's name survives a power loss too
                self._day = today
        except OSError as err:
            raise OutputError.of(err, self.path) from err

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def _rotate(self) -> None:
        """events.jsonl -> .1 -> .2 ... -> .keep; the file past ``keep`` is deleted."""
        numbered = lambda n: self.path.with_name(f"{self.path.name}.{n}")  # noqa: E731
        for path in log_files(self.path.parent, self.path.name)[:-1]:
            if int(path.suffix[1:]) >= self.keep:  # also those an earlier, larger --log-keep left
                path.unlink(missing_ok=True)
        if self.keep == 0:
            self.path.unlink()
        else:
            for n in range(self.keep - 1, 0, -1):
                if numbered(n).exists():
                    os.replace(numbered(n), numbered(n + 1))
            os.replace(self.path, numbered(1))
        _fsync_folder(self.path.parent)
        self.rotations += 1

    def close(self) -> None:
        pass

    def summary(self) -> None:
        return None


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
