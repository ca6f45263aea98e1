"""``OUT/events.sqlite``: every event of `vidfiqa watch` in a SQLite database, for the live page
and `vidfiqa events` (the schema and the queries: ``live/event_queries.py``; docs/cameras.md).

One writer - this sink, whose connection is guarded by a lock, since every camera's thread may
emit - in WAL mode, so that readers never block it and it never blocks them.

**An event acknowledged is an event kept.**  Programs see an event when its ``events.jsonl``
line appears (sinks/event_log.py).  This sink comes before the log in the watch's sink list, and
each event is committed with ``synchronous=FULL`` (the WAL is fsynced at every commit) before the
log sees the event: a SIGKILL or a power loss after the log line cannot lose the row.  The order
alone is the guarantee.  In addition, on start-up the store is made to agree with the event
folders, which hold what retention keeps (each with its ``event.json``, the same record as its
log line): a folder without a row (the store was deleted, or a run had it off: ``--no-store``;
or the watcher died between the images and the row) is imported from its ``event.json``, and a
row without a folder (pruned while the store was off) is removed.

**Retention.**  The rows are pruned with the images, by one code path: the event-folder sink's
retention (``--keep-count``, ``--keep-days``, ``--keep-mb``) calls :meth:`EventStoreSink.forget`
for the events it is about to prune, and deletes their folders only once their rows are gone.
A crash between the two leaves images without their row (the next start imports them again, and
retention prunes both), never a row pointing at nothing.

**Persons.**  A camera numbers its persons from 1 each time its analysis starts; the store gives
each (camera, start of its analysis, person_id) a number of its own, ``person``, never reused
(``live/event_queries.py``).  The start is the record's ``wall_start``; an imported event has
only its picks' wall-clock times and stream times, which give the start to a millisecond, so
imported events are matched to persons within :data:`EPOCH_TOLERANCE_S`.

Another database (a server) can replace this one behind the same protocol: a sink that takes the
events (``emit``) and drops pruned ones (``forget``, :class:`~vidfiqa.sinks.event_folders.EventIndex`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from array import array
from pathlib import Path
from typing import Any, Callable, Iterator

from .._version import __version__
from ..errors import ConfigError, OutputError
from ..export.entries import event_record
from ..live.event_queries import CAMERA_NAME, SCHEMA, SCHEMA_VERSION, STORE_FILE, iso, iso_seconds
from ..select.chain import TrackRecord

EPOCH_TOLERANCE_S = 0.01  # two starts of one camera's analysis are seconds apart; an imported event's start is known to 1 ms

#: The columns an event fills, in the order of :func:`event_row`'s values.
EVENT_FIELDS = ("event_id", "stream", "wall_time", "wall_ts", "first_seen", "first_ts", "last_seen", "last_ts", "track_id", "person_id",
                "person", "segment", "ended", "latency_s", "num_detections", "quality_max", "picks", "best_quality", "best_crop",
                "best_context", "best_face_image", "best_components", "selected", "best_face_reasons", "template", "template_model",
                "template_dim", "event")
INSERT_EVENT = (f"INSERT INTO events ({', '.join(EVENT_FIELDS)}) VALUES ({', '.join('?' * len(EVENT_FIELDS))}) "
                "ON CONFLICT(event_id) DO NOTHING")


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def event_row(event: dict[str, Any], person: int | None) -> tuple:
    """The column values (:data:`EVENT_FIELDS`) of one ``vidfiqa.event/1`` record."""
    selected = event["selected"]
    best = selected[0] if selected else {}
    template = event.get("template")
    # The picks and the template's vector live in their own columns, not twice (the picks are
    # most of an event; a vector is 4 bytes a value there against about 10 as JSON text); the
    # picks' key stays in place, null, so that the record is read back in its own order.
    stored = {**event, "selected": None}
    blob = None
    if template is not None:
        blob = array("f", template["vector"]).tobytes()
        stored["template"] = {k: v for k, v in template.items() if k != "vector"}
    first = event.get("first_seen")
    return (
        event["event_id"], event["stream"], event["wall_time"], iso_seconds(event["wall_time"]),
        first, iso_seconds(first) if first else None, event["last_seen"], iso_seconds(event["last_seen"]),
        event["track_id"], event.get("person_id"), person, event.get("segment", 1), event["ended"], event.get("latency_s"),
        event["num_detections"], event.get("quality_max"), len(selected), best.get("quality"), best.get("crop"), best.get("context"),
        best.get("face"), compact(best["components"]) if best.get("components") is not None else None, compact(selected),
        compact(event["best_face"]) if event.get("best_face") else None,
        blob, template.get("model") if template else None, template.get("dim") if template else None, compact(stored),
    )


def estimated_epoch(event: dict[str, Any]) -> float | None:
    """The start of the camera's analysis (``TrackRecord.wall_start``) from a pick's wall-clock
    time and stream time: to a millisecond (the events' times are ISO text with milliseconds)."""
    for pick in event.get("selected", []):
        if pick.get("wall_time") and pick.get("pts") is not None:
            return iso_seconds(pick["wall_time"]) - float(pick["pts"])
    return None


def open_writer(path: Path) -> sqlite3.Connection:
    """The store's one writing connection: WAL, a commit fsynced, the schema in place and of this
    version (an older one would be migrated here; a newer one is refused)."""
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10.0)
    except sqlite3.Error as err:
        raise OutputError(f"cannot open the event store {path}: {err}", path=path) from err
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise OutputError(f"cannot write {path}: the file system does not allow SQLite's WAL mode (journal_mode is {mode})", path=path)
        # FULL: the WAL is fsynced at every commit, so a committed event survives a power loss,
        # as the fsynced events.jsonl line after it does.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("BEGIN IMMEDIATE")
        for statement in _statements(SCHEMA):
            conn.execute(statement)
        version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        if version is None:
            conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (SCHEMA_VERSION, iso(time.time()), __version__))
        elif version > SCHEMA_VERSION:
            conn.execute("ROLLBACK")
            raise ConfigError(f"{path} was written by a newer vidfiqa (schema version {version}; this one writes {SCHEMA_VERSION}): "
                              "upgrade vidfiqa, or move the file away to start a new store")
        conn.execute("COMMIT")
    except sqlite3.OperationalError as err:  # a full disk, a read-only folder: worth another try
        conn.close()
        raise OutputError(f"cannot open the event store {path}: {err}", path=path) from err
    except sqlite3.Error as err:
        conn.close()
        raise OutputError(f"cannot open the event store {path}: {err} (move the file away: a new store is filled from events.jsonl)",
                          path=path) from err
    except BaseException:
        conn.close()
        raise
    return conn


def _statements(script: str) -> Iterator[str]:
    """The statements of a schema script (none of ours holds a ';' inside), comments dropped,
    so that they run inside the caller's transaction (``executescript`` would commit first)."""
    text = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    for statement in text.split(";"):
        if statement.strip():
            yield statement


def rebuild_summaries(conn: sqlite3.Connection) -> None:
    """Recompute the persons' and cameras' figures from the events (the writer keeps them as it
    goes; this is for a store filled in bulk, and to check the writer against)."""
    conn.execute("""
        WITH figures AS (SELECT person, min(coalesce(first_ts, wall_ts)) AS f, max(last_ts) AS s, max(wall_ts) AS l, count(*) AS n
                         FROM events WHERE person IS NOT NULL GROUP BY person),
             best AS (SELECT person, seq, best_quality FROM
                        (SELECT person, seq, best_quality, row_number() OVER (PARTITION BY person ORDER BY best_quality DESC, wall_ts DESC) AS r
                         FROM events WHERE person IS NOT NULL) WHERE r = 1)
        UPDATE persons SET first_ts = figures.f, last_seen_ts = figures.s, last_ts = figures.l, visits = figures.n,
                           best_seq = best.seq, best_quality = best.best_quality
        FROM figures JOIN best USING (person) WHERE persons.person = figures.person""")
    conn.execute("DELETE FROM persons WHERE person NOT IN (SELECT DISTINCT person FROM events WHERE person IS NOT NULL)")
    conn.execute("DELETE FROM cameras")
    conn.execute("""INSERT INTO cameras SELECT stream, count(*), (SELECT count(*) FROM persons WHERE persons.stream = events.stream), min(wall_ts), max(wall_ts)
                    FROM events GROUP BY stream""")


class EventStoreSink:
    """Writes every event's row (see the module docstring); ``forget`` drops pruned events."""

    name = "event_store"

    def __init__(self, out_dir: str | Path, file_name: str = STORE_FILE, log: Callable[..., None] | None = None):
        """Opens ``OUT/file_name``.  A store that cannot be opened for want of room or permission
        (a full disk) is opened at the first event instead, which waits meanwhile as for any sink
        that refuses it; a file that is not a store, or one of a newer vidfiqa, stops the watch
        before it starts."""
        self.out = Path(out_dir)
        self.path = self.out / file_name
        self._lock = threading.RLock()  # the cameras' threads; opening and importing nest inside emit
        self._conn: sqlite3.Connection | None = None
        self.written = self.imported = self.removed = self.removed_at_start = 0
        try:
            with self._lock:
                self._open()
        except OutputError as err:
            if not isinstance(err.__cause__, (sqlite3.OperationalError, OSError)):
                raise
            if log is not None:
                log("warning", "event store not opened; it is tried again at the next event", error=str(err))

    @property
    def _db(self) -> sqlite3.Connection:
        assert self._conn is not None, "opened by _open()"
        return self._conn

    def _open(self) -> None:
        """Open the store (once) and make it agree with the disk (the module docstring)."""
        if self._conn is not None:
            return
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError.of(err, self.out) from err
        self._conn = open_writer(self.path)
        try:
            self._agree_with_folders()
        except (sqlite3.Error, OutputError) as err:
            self._conn.close()
            self._conn = None
            if isinstance(err, OutputError):
                raise
            raise OutputError(f"cannot write the event store {self.path}: {err}", path=self.path) from err

    # ------------------------------------------------------------------ the sink
    def emit(self, record: TrackRecord) -> None:
        if not record.is_event:
            return
        event = event_record(record)
        with self._lock:
            if self.add(event, record.wall_start):
                self.written += 1

    def add(self, event: dict[str, Any], epoch: float | None = None) -> bool:
        """Store one ``vidfiqa.event/1`` record (a dict) in its own transaction; False if it is
        there already.  ``epoch``: the start of its camera's analysis (``TrackRecord.wall_start``;
        None: estimated from its picks)."""
        with self._lock:
            self._open()
            with self._writing():
                return self._add(event, epoch)

    def forget(self, stream: str, event_ids: list[str]) -> None:
        """Remove these events' rows (their images are about to be pruned), in one transaction."""
        if not event_ids:
            return
        with self._lock:
            self._open()
            with self._writing():
                seqs = [row[0] for chunk in _chunks(event_ids, 500)
                        for row in self._db.execute(f"SELECT seq FROM events WHERE stream = ? AND event_id IN ({', '.join('?' * len(chunk))})",
                                                    (stream, *chunk))]
                self.removed += self._delete(seqs)

    def close(self) -> None:
        with self._lock:
            if self._conn is None:
                return
            try:
                # Fold the WAL into the database: a reader opening it later finds one file.
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # a reader holds a snapshot: the next writer checkpoints
            self._conn.close()
            self._conn = None

    def summary(self) -> dict[str, Any]:
        return {"path": str(self.path), "events_written": self.written, "events_imported": self.imported,
                "events_removed": self.removed + self.removed_at_start}

    # ------------------------------------------------------------------ rows
    def _writing(self) -> "_Transaction":
        return _Transaction(self._db, self.path)

    def _add(self, event: dict[str, Any], epoch: float | None) -> bool:
        """Insert one event and count it into its person and camera; False if already there."""
        db = self._db
        if db.execute("SELECT 1 FROM events WHERE event_id = ?", (event["event_id"],)).fetchone():
            return False
        person, new_person = None, False
        if event.get("person_id") is not None:
            person, new_person = self._person_of(event["stream"], int(event["person_id"]), epoch if epoch is not None else estimated_epoch(event))
        row = event_row(event, person)
        seq = db.execute(INSERT_EVENT, row).lastrowid
        wall, first, last_seen, quality = row[3], row[5], row[7], row[17]
        if person is not None:
            db.execute("""UPDATE persons SET first_ts = min(first_ts, ?), last_seen_ts = max(last_seen_ts, ?), last_ts = max(last_ts, ?),
                                  visits = visits + 1,
                                  best_seq = CASE WHEN best_seq IS NULL OR coalesce(?, -1) > coalesce(best_quality, -1) THEN ? ELSE best_seq END,
                                  best_quality = CASE WHEN best_seq IS NULL OR coalesce(?, -1) > coalesce(best_quality, -1) THEN ? ELSE best_quality END
                          WHERE person = ?""",
                       (first if first is not None else wall, last_seen, wall, quality, seq, quality, quality, person))
        db.execute("""INSERT INTO cameras VALUES (?, 1, ?, ?, ?) ON CONFLICT(stream) DO UPDATE SET events = events + 1,
                      persons = persons + excluded.persons, first_ts = min(first_ts, excluded.first_ts), last_ts = max(last_ts, excluded.last_ts)""",
                   (event["stream"], int(new_person), wall, wall))
        return True

    def _person_of(self, stream: str, person_id: int, epoch: float | None) -> tuple[int, bool]:
        """The store's person for a camera's person of the analysis that started at ``epoch``,
        and whether it is new."""
        db = self._db
        epoch = time.time() if epoch is None else epoch  # no start known: a person of its own
        found = db.execute("SELECT person FROM persons WHERE stream = ? AND person_id = ? AND epoch BETWEEN ? AND ?",
                           (stream, person_id, epoch - EPOCH_TOLERANCE_S, epoch + EPOCH_TOLERANCE_S)).fetchone()
        if found:
            return int(found[0]), False
        # Its figures start empty (+inf, -inf) and are taken in by the caller's update.
        added = db.execute("INSERT INTO persons (stream, epoch, person_id, first_ts, last_seen_ts, last_ts, visits) VALUES (?, ?, ?, ?, ?, ?, 0)",
                           (stream, epoch, person_id, float("inf"), float("-inf"), float("-inf")))
        assert added.lastrowid is not None
        return added.lastrowid, True

    def _delete(self, seqs: list[int]) -> int:
        """Delete these events and recount their persons and cameras: the one path every removal takes."""
        if not seqs:
            return 0
        db = self._db
        persons: dict[int, str] = {}
        events_gone: dict[str, int] = {}
        for chunk in _chunks(seqs, 500):
            marks = ", ".join("?" * len(chunk))
            for person, stream in db.execute(f"SELECT person, stream FROM events WHERE seq IN ({marks})", chunk):
                events_gone[stream] = events_gone.get(stream, 0) + 1
                if person is not None:
                    persons[person] = stream
            db.execute(f"DELETE FROM events WHERE seq IN ({marks})", chunk)
        persons_gone = dict.fromkeys(events_gone, 0)
        for person, stream in persons.items():
            visits, first, last_seen, last = db.execute(
                "SELECT count(*), min(coalesce(first_ts, wall_ts)), max(last_ts), max(wall_ts) FROM events WHERE person = ?", (person,)).fetchone()
            if not visits:
                db.execute("DELETE FROM persons WHERE person = ?", (person,))
                persons_gone[stream] += 1
                continue
            best = db.execute("SELECT seq, best_quality FROM events WHERE person = ? ORDER BY best_quality DESC, wall_ts DESC LIMIT 1",
                              (person,)).fetchone()
            db.execute("UPDATE persons SET first_ts = ?, last_seen_ts = ?, last_ts = ?, visits = ?, best_seq = ?, best_quality = ? WHERE person = ?",
                       (first, last_seen, last, visits, best[0], best[1], person))
        for stream, gone in events_gone.items():
            # Counted down, not recounted: a prune comes with every event once retention is full.
            first = db.execute("SELECT min(wall_ts) FROM events WHERE stream = ?", (stream,)).fetchone()[0]
            last = db.execute("SELECT max(wall_ts) FROM events WHERE stream = ?", (stream,)).fetchone()[0]
            if first is None:
                db.execute("DELETE FROM cameras WHERE stream = ?", (stream,))
            else:
                db.execute("UPDATE cameras SET events = events - ?, persons = persons - ?, first_ts = ?, last_ts = ? WHERE stream = ?",
                           (gone, persons_gone[stream], first, last, stream))
        return len(seqs)

    # ------------------------------------------------------------------ agreeing with the disk
    def _agree_with_folders(self) -> None:
        """Remove the rows whose event folder is gone; import the folders without a row."""
        root = self.out / "events"
        streams = {name for name in os.listdir(root) if CAMERA_NAME.fullmatch(name)} if root.is_dir() else set()
        streams |= {stream for (stream,) in self._db.execute("SELECT stream FROM cameras")}
        gone: list[int] = []
        missing: list[Path] = []
        for stream in sorted(streams):
            with os.scandir(root / stream) if (root / stream).is_dir() else _nothing() as entries:
                on_disk = {entry.name for entry in entries if entry.is_dir()}
            stored = dict(self._db.execute("SELECT event_id, seq FROM events WHERE stream = ?", (stream,)).fetchall())
            gone += [seq for event_id, seq in stored.items() if event_id not in on_disk]
            missing += [root / stream / name for name in sorted(on_disk - stored.keys())]
        if gone:
            with self._writing():
                self.removed_at_start += self._delete(gone)
        events = []
        for folder in missing:
            try:
                event = json.loads((folder / "event.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # no event.json: a folder left half-written by a crash (retention prunes it)
            if isinstance(event, dict) and event.get("event_id") == folder.name and event.get("stream") == folder.parent.name:
                events.append(event)
        events.sort(key=lambda e: str(e.get("wall_time")))  # rows in time order, as live ones are
        for start in range(0, len(events), 500):
            with self._writing():
                for event in events[start:start + 500]:
                    try:
                        self.imported += self._add(event, None)
                    except (KeyError, TypeError, ValueError, IndexError):
                        continue  # not a vidfiqa.event/1 record this store can read


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on an error); SQLite's errors become an
    OutputError (a full disk, a read-only file: the outbox offers the event again later)."""

    def __init__(self, db: sqlite3.Connection, path: Path):
        self.db, self.path = db, path

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            raise OutputError(f"cannot write the event store {self.path}: {err}", path=self.path) from err
        return self.db

    def __exit__(self, kind, err, trace) -> None:
        if kind is None:
            try:
                self.db.execute("COMMIT")
                return
            except sqlite3.OperationalError as commit_err:
                kind, err = type(commit_err), commit_err
        try:
            self.db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite rolled back already (a full disk can end the transaction itself)
        if isinstance(err, sqlite3.OperationalError):
            raise OutputError(f"cannot write the event store {self.path}: {err}", path=self.path) from err


@contextlib.contextmanager
def _nothing() -> Iterator[list]:
    yield []


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
