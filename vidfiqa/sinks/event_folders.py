"""The rolling gallery of `vidfiqa watch`: each event's images and ``event.json`` in
``OUT/events/<stream>/<event_id>/``, pruned per stream by count, age and total size
(``--keep-count``, ``--keep-days``, ``--keep-mb``).

Pruning is the one place events are removed: an index of the events (the event store,
sinks/event_store.py) is told first (:class:`EventIndex`), and the folders go only once it has
dropped their rows - so no index ever points at images that are gone."""

from __future__ import annotations

import json
import shutil
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

from ..atomic import atomic_write_bytes, atomic_write_text
from ..errors import OutputError
from ..export.entries import event_folder, event_record, native_face_of
from ..export.images import encode_image, pick_images
from ..select.chain import TrackRecord


@dataclass(frozen=True)
class Retention:
    keep_count: int | None = 1000  # events per stream
    keep_days: float | None = 30.0
    keep_mb: float | None = 2000.0  # per stream


class EventIndex(Protocol):
    """Something that lists events by their folder (the event store): told before events are pruned."""

    def forget(self, stream: str, event_ids: list[str]) -> None:
        """Drop these events of ``stream`` (their folders are removed after this returns); raise
        ``OutputError`` or ``OSError`` when it cannot: the folders are then kept for a later try."""


class EventFolderSink:
    """Writes each event's crops, context views and ``event.json``; prunes old events."""

    name = "event_folders"

    def __init__(self, out_dir: str | Path, retention: Retention | None = None, indexes: Sequence[EventIndex] = ()):
        """``indexes``: told of every event pruned, before its folder is removed."""
        self.out = Path(out_dir)
        self.indexes = list(indexes)
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError.of(err, self.out) from err
        self.retention = retention or Retention()
        self._kept: dict[str, deque] = {}  # stream -> deque[(path, created, bytes)], oldest first
        self._lock = threading.Lock()

    def emit(self, record: TrackRecord) -> None:
        if not record.is_event:
            return
        assert record.stream is not None and record.emitted_at is not None  # named by the watch delivery
        folder = event_folder(record)
        event = event_record(record)
        try:
            (self.out / folder).mkdir(parents=True, exist_ok=True)
            size = 0
            for item, (crop, context) in zip(event["selected"], pick_images(record.result)):
                native = native_face_of(record.result, item["rank"] - 1)
                for image, rel, ext in ((crop, item["crop"], ".png"), (context, item["context"], ".jpg"),
                                        *(((native, item["face"], ".jpg"),) if native is not None else ())):
                    data = encode_image(image, ext)
                    atomic_write_bytes(self.out / rel, data, durable=False)
                    size += len(data)
            atomic_write_text(self.out / folder / "event.json", json.dumps(event, indent=1, allow_nan=False) + "\n")
        except (OSError, OutputError) as err:
            # Nothing half-written stays behind: the whole folder is written again on the retry.
            shutil.rmtree(self.out / folder, ignore_errors=True)
            raise err if isinstance(err, OutputError) else OutputError.of(err, self.out / folder) from err
        self._keep(record.stream, self.out / folder, record.emitted_at, size)

    def close(self) -> None:
        pass

    def summary(self) -> None:
        return None

    def _keep(self, stream: str, folder: Path, created: float, size: int) -> None:
        with self._lock:
            kept = self._kept.get(stream)
            if kept is None:
                kept = self._kept[stream] = self._scan(stream, exclude=folder)
            kept.append((folder, created, size))
            r = self.retention
            total = sum(item[2] for item in kept)
            pruned = []
            while kept and len(kept) > 1 and (
                (r.keep_count is not None and len(kept) > r.keep_count)
                or (r.keep_days is not None and created - kept[0][1] > r.keep_days * 86400)
                or (r.keep_mb is not None and total > r.keep_mb * 1e6)
            ):
                pruned.append(kept.popleft())
                total -= pruned[-1][2]
            if pruned:
                self._prune(stream, kept, pruned)

    def _prune(self, stream: str, kept: deque, pruned: list) -> None:
        """Remove these events: from every index first, then their folders."""
        try:
            for index in self.indexes:
                index.forget(stream, [folder.name for folder, _, _ in pruned])
        except (OSError, OutputError):
            # The index still lists them, so their images stay; the next event of this stream
            # tries again.  The new event itself was written: it is not refused for this.
            kept.extendleft(reversed(pruned))
            return
        for folder, _, _ in pruned:
            shutil.rmtree(folder, ignore_errors=True)

    def _scan(self, stream: str, exclude: Path) -> deque:
        """Events already on disk from an earlier run count towards the limits."""
        root = self.out / "events" / stream
        found = []
        for folder in root.iterdir() if root.is_dir() else []:
            if folder == exclude or not folder.is_dir():
                continue
            stat = folder.stat()
            found.append((folder, stat.st_mtime, sum(f.stat().st_size for f in folder.iterdir() if f.is_file())))
        return deque(sorted(found, key=lambda item: item[1]))
