"""The event store of `vidfiqa watch` (``OUT/events.sqlite``): its schema, and the queries the
live page and `vidfiqa events` ask of it.

The store is written by one sink (:class:`vidfiqa.sinks.event_store.EventStoreSink`) and read
here through read-only connections (``file:...?mode=ro``), so these queries work while a watcher
writes (SQLite's WAL mode: a reader sees the last committed event and never blocks the writer)
and after it stopped.  Only the standard library is imported: the HTTP server and the command
line stay light.

**Persons.** A camera numbers its persons from 1 each time its analysis starts (a watcher
restart, a Ray actor placed again), so a camera's ``person_id`` names a person only within one
run of that camera.  The store therefore gives every person a number of its own, ``person``,
unique across cameras and runs and never reused: the key of :meth:`EventQueries.persons`,
:meth:`EventQueries.person` and :meth:`EventQueries.person_visits`.  Results carry both (``person``
and the event's ``camera`` / ``person_id``).

**Time.** An event's time is its ``wall_time``: when it was emitted, seconds after the person
left (or after ``max_track_s`` of a long visit).  ``since`` / ``until`` filter on it (both
inclusive); lists are newest first.  Times are taken as epoch seconds (a number or a string of
one), ISO 8601 with an offset or ``Z`` (``2026-06-01T14:00:00Z``), ISO 8601 without one (this
machine's local time), or a duration before now (``90s``, ``30m``, ``2h``, ``7d``).

**Pages.** Lists are cut at ``limit`` (1 to :data:`MAX_LIMIT`); every item carries a ``cursor``,
and the next page is the same query with ``before=`` the last item's cursor (keyset pagination:
no offset, so a page costs the same however deep it is, and events written meanwhile do not shift
it).

Bad values raise :class:`QueryError` (a ``ValueError`` and a ``ConfigError``) with a one-line
message: the command line exits 2 with it, the HTTP API answers 400.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import sqlite3
import threading
import time
from array import array
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import ConfigError, InputError

STORE_FILE = "events.sqlite"
SCHEMA_VERSION = 1
MAX_LIMIT = 1000
CAMERA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # stream names (live/config.py)

# Every column of an event is one field of its `vidfiqa.event/1` record (export/entries.py
# event_record), times both as the record's ISO text and as epoch seconds (``*_ts``) for the
# indexes; ``event`` is the rest of the record: its picks are in ``selected`` and its template's
# vector in ``template`` (EventQueries.event puts them back).
SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL,
    applied TEXT NOT NULL,
    vidfiqa TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- insertion order: the tie-break of equal times
    event_id TEXT NOT NULL UNIQUE,
    stream TEXT NOT NULL,
    wall_time TEXT NOT NULL,
    wall_ts REAL NOT NULL,
    first_seen TEXT,
    first_ts REAL,
    last_seen TEXT NOT NULL,
    last_ts REAL NOT NULL,
    track_id INTEGER NOT NULL,
    person_id INTEGER,                      -- the camera's, per run of its analysis
    person INTEGER,                         -- the store's (persons.person)
    segment INTEGER NOT NULL,
    ended TEXT NOT NULL,
    latency_s REAL,
    num_detections INTEGER NOT NULL,
    quality_max REAL,
    picks INTEGER NOT NULL,
    best_quality REAL,                      -- the best pick's (selected[0])
    best_crop TEXT,                         -- image paths relative to the watch output
    best_context TEXT,
    best_face_image TEXT,                   -- cut from the main stream, when there is one
    best_components TEXT,                   -- JSON object
    selected TEXT NOT NULL,                 -- JSON list: every pick, best first
    best_face_reasons TEXT,                 -- JSON list: the event's best_face (why it is poor), or NULL
    template BLOB,                          -- float32 unit vector
    template_model TEXT,
    template_dim INTEGER,
    event TEXT NOT NULL                     -- JSON: the event record, its selected (null here) and template vector in the columns above
);
CREATE INDEX IF NOT EXISTS events_time ON events(wall_ts);
CREATE INDEX IF NOT EXISTS events_stream_time ON events(stream, wall_ts);
-- Covering: a person's visits in a time range are counted and their best found in the index alone.
CREATE INDEX IF NOT EXISTS events_person_time ON events(person, wall_ts, best_quality, first_ts, last_ts);
CREATE TABLE IF NOT EXISTS persons (
    person INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    epoch REAL NOT NULL,                    -- wall clock at the start of the camera's analysis (TrackRecord.wall_start)
    person_id INTEGER NOT NULL,
    first_ts REAL NOT NULL,                 -- earliest first_seen of its events
    last_seen_ts REAL NOT NULL,             -- latest last_seen
    last_ts REAL NOT NULL,                  -- latest event time (wall_ts): the order of the list
    visits INTEGER NOT NULL,
    best_seq INTEGER,                       -- its event with the best pick
    best_quality REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS persons_key ON persons(stream, person_id, epoch);
CREATE INDEX IF NOT EXISTS persons_time ON persons(last_ts);
CREATE INDEX IF NOT EXISTS persons_stream_time ON persons(stream, last_ts);
CREATE TABLE IF NOT EXISTS cameras (
    stream TEXT PRIMARY KEY,
    events INTEGER NOT NULL,
    persons INTEGER NOT NULL,
    first_ts REAL NOT NULL,
    last_ts REAL NOT NULL
) WITHOUT ROWID;
"""


class QueryError(ConfigError, ValueError):
    """A query value that cannot be used (one line: what, and what is expected)."""


# ------------------------------------------------------------------------------ values
def iso(wall: float) -> str:
    """Epoch seconds as the events' ISO 8601 UTC text (the format of ``export.entries.iso``,
    repeated here so that reading the store does not import the pipeline)."""
    return dt.datetime.fromtimestamp(wall, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_seconds(text: str) -> float:
    """An event's ISO 8601 time (``...Z``) as epoch seconds."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


AGO = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d)")
AGO_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(value: Any, what: str = "time", now: float | None = None) -> float | None:
    """Epoch seconds of a query time (see the module docstring for the forms); None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise QueryError(f"{what}: {value!r} is not a time")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        ago = AGO.fullmatch(text)
        try:
            if ago:
                seconds = (time.time() if now is None else now) - float(ago.group(1)) * AGO_SECONDS[ago.group(2)]
            elif re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
                seconds = float(text)
            else:
                stamp = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
                seconds = stamp.timestamp()  # naive: this machine's local time
        except (ValueError, OverflowError, OSError):
            raise QueryError(f"{what}: {value!r} is not a time (epoch seconds, ISO 8601 such as 2026-06-01T14:00:00Z, "
                             "or a duration before now such as 30m, 2h, 7d)") from None
    else:
        raise QueryError(f"{what}: {value!r} is not a time")
    if not math.isfinite(seconds) or not 0 <= seconds < 1e11:
        raise QueryError(f"{what}: {value!r} is outside the years 1970-5000")
    return seconds


def whole_number(value: Any) -> int:
    """An int from an int, a float without a fraction or a string of one; ValueError (or
    TypeError) for anything else, booleans included."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    return int(value.strip()) if isinstance(value, str) else int(value)


def parse_limit(value: Any, what: str = "limit") -> int:
    """A page size: an integer from 1 to MAX_LIMIT (a string of one is taken too)."""
    try:
        number = whole_number(value)
    except (TypeError, ValueError):
        raise QueryError(f"{what}: {value!r} is not a whole number from 1 to {MAX_LIMIT}") from None
    if not 1 <= number <= MAX_LIMIT:
        raise QueryError(f"{what}: {number} is not from 1 to {MAX_LIMIT}")
    return number


def parse_camera(value: Any) -> str | None:
    """A camera (stream) name, or None for every camera."""
    if value is None:
        return None
    if not isinstance(value, str) or not CAMERA_NAME.fullmatch(value):
        raise QueryError(f"camera: {value!r} is not a camera name (1-64 ASCII letters, digits, - or _)")
    return value


def parse_person(value: Any) -> int | None:
    """A person of the store (``person``: a positive integer), or None."""
    if value is None:
        return None
    try:
        number = whole_number(value)
    except (TypeError, ValueError):
        raise QueryError(f"person: {value!r} is not a person number (a positive whole number)") from None
    if number < 1:
        raise QueryError(f"person: {number} is not a person number (a positive whole number)")
    return number


def parse_cursor(value: Any) -> tuple[float, int] | None:
    """A page cursor (an item's ``cursor``: ``<epoch seconds>:<number>``), or None."""
    if value is None:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?(?:e[+-]?\d+)?):(\d+)", value.strip()) if isinstance(value, str) else None
    if match is None:
        raise QueryError(f"before: {value!r} is not a cursor (the 'cursor' of the last item of the previous page)")
    return float(match.group(1)), int(match.group(2))


def cursor(seconds: float, number: int) -> str:
    return f"{seconds!r}:{number}"


def template_vector(blob: bytes | None) -> list[float] | None:
    """A stored template (float32 bytes) as the event's list of floats."""
    if blob is None:
        return None
    values = array("f")
    values.frombytes(blob)
    return [round(float(v), 6) for v in values]


# ------------------------------------------------------------------------------ opening
def store_path(path: str | Path) -> Path:
    """The store of a watch output folder (``DIR/events.sqlite``) or the store file itself."""
    path = Path(path)
    return path / STORE_FILE if path.is_dir() else path


def open_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write (``mode=ro``), in autocommit mode: each method makes its
    own read transaction."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=5.0)
    conn.row_factory = sqlite3.Row
    return conn


# ------------------------------------------------------------------------------ the queries
EVENT_COLUMNS = ("seq, event_id, stream, wall_time, wall_ts, first_seen, last_seen, track_id, person_id, person, segment, ended, latency_s, "
                 "num_detections, quality_max, picks, best_quality, best_crop, best_context, best_face_image, best_components, selected, "
                 "best_face_reasons")


def event_item(row: sqlite3.Row) -> dict[str, Any]:
    """An event as the lists give it: its fields, its picks, and its best image for the page."""
    return {
        "event_id": row["event_id"],
        "camera": row["stream"],
        "person": row["person"],
        "person_id": row["person_id"],
        "wall_time": row["wall_time"],
        "first_seen": row["first_seen"],
        "last_seen": row["last_seen"],
        "track_id": row["track_id"],
        "segment": row["segment"],
        "ended": row["ended"],
        "latency_s": row["latency_s"],
        "num_detections": row["num_detections"],
        "quality_max": row["quality_max"],
        "picks": row["picks"],
        "quality": row["best_quality"],
        "image": row["best_face_image"] or row["best_crop"],  # the main stream's face when there is one
        "crop": row["best_crop"],
        "context": row["best_context"],
        "face": row["best_face_image"],
        "components": json.loads(row["best_components"]) if row["best_components"] else None,
        "best_face": json.loads(row["best_face_reasons"]) if row["best_face_reasons"] else None,
        "selected": json.loads(row["selected"]),
        "cursor": cursor(row["wall_ts"], row["seq"]),
    }


def sql_filter(terms: dict[str, Any], keyset: tuple[str, str, tuple[float, Any] | None] = ("", "", None),
               always: tuple[str, ...] = ()) -> tuple[str, list[Any]]:
    """``WHERE ...`` (or "") and its arguments: every ``column op ?`` term whose value is not None,
    the ``always`` conditions, and a keyset page's "after the cursor" on (time column, tie-breaker
    column) when ``keyset``'s cursor is given."""
    where, args = list(always), []
    for condition, value in terms.items():
        if value is not None:
            where.append(condition)
            args.append(value)
    time_column, tie_column, after = keyset
    if after is not None:
        where.append(f"({time_column} < ? OR ({time_column} = ? AND {tie_column} < ?))")
        args += [after[0], after[0], after[1]]
    return ("WHERE " + " AND ".join(where) if where else ""), args


class EventQueries:
    """Read-only queries over one event store (see the module docstring).

    ``path``: a watch output folder or its ``events.sqlite``.  Image paths in the results are
    relative to :attr:`root`, the watch output.  One instance may serve several threads (each
    method holds the connection for its one read transaction)."""

    def __init__(self, path: str | Path):
        self.path = store_path(path)
        if not self.path.is_file():
            where = "no event store in" if Path(path).is_dir() else "no event store at"
            raise InputError(f"{where} {path} (`vidfiqa watch -o DIR` writes DIR/{STORE_FILE})", path=path)
        self.root = self.path.parent
        try:
            self._conn = open_read_only(self.path)
            version = self._conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        except sqlite3.DatabaseError as err:
            raise InputError(f"{self.path} is not an event store ({err})", path=self.path) from None
        if version != SCHEMA_VERSION:
            raise InputError(f"{self.path} is an event store of schema version {version}; this vidfiqa reads version {SCHEMA_VERSION}",
                             path=self.path)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "EventQueries":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- reading
    def _read(self) -> "_Reading":
        return _Reading(self)

    def events(self, camera: str | None = None, since: Any = None, until: Any = None, person: int | None = None,
               limit: int = 100, before: str | None = None) -> list[dict[str, Any]]:
        """Events newest first: of one camera, of one person (the store's ``person``), within
        [since, until]; ``before``: the previous page's last ``cursor``."""
        camera, person, limit = parse_camera(camera), parse_person(person), parse_limit(limit)
        low, high, after = parse_time(since, "since"), parse_time(until, "until"), parse_cursor(before)
        where, args = sql_filter({"stream = ?": camera, "person = ?": person, "wall_ts >= ?": low, "wall_ts <= ?": high},
                                 keyset=("wall_ts", "seq", after))
        sql = f"SELECT {EVENT_COLUMNS} FROM events {where} ORDER BY wall_ts DESC, seq DESC LIMIT ?"
        with self._read() as conn:
            return [event_item(row) for row in conn.execute(sql, [*args, limit])]

    def event(self, event_id: str) -> dict[str, Any] | None:
        """One event's whole record (``vidfiqa.event/1``, template vector included) with the
        store's ``person``; None when the store does not hold it (never written, or pruned)."""
        if not isinstance(event_id, str) or not 0 < len(event_id) <= 200:
            raise QueryError(f"event: {event_id!r} is not an event id")
        with self._read() as conn:
            row = conn.execute("SELECT event, selected, template, person FROM events WHERE event_id = ?", (event_id,)).fetchone()
        if row is None:
            return None
        event = json.loads(row["event"])
        event["selected"] = json.loads(row["selected"])
        if event.get("template") is not None:
            event["template"]["vector"] = template_vector(row["template"])
        return {**event, "person": row["person"]}

    def person(self, person: int) -> dict[str, Any] | None:
        """One person of the store over all its events, or None (unknown, or every event pruned)."""
        number = parse_person(person)
        if number is None:
            raise QueryError("person: a person number is needed")
        with self._read() as conn:
            rows = self._persons_by_number(conn, [number], None, None)
        return rows[0] if rows else None

    def person_visits(self, person: int, since: Any = None, until: Any = None, limit: int = 100, before: str | None = None) -> list[dict[str, Any]]:
        """A person's events (visits) newest first: :meth:`events` of that person."""
        if parse_person(person) is None:
            raise QueryError("person: a person number is needed")
        return self.events(person=person, since=since, until=until, limit=limit, before=before)

    def persons(self, camera: str | None = None, since: Any = None, until: Any = None, limit: int = 100,
                before: str | None = None, changed_since: Any = None) -> list[dict[str, Any]]:
        """The persons seen, the one seen last first (by their last event within [since, until]):
        per person its camera, first and last seen, visits (events) and its best face (its event,
        quality, image, components and ``best_face`` reasons) - all within [since, until].
        ``changed_since``: only the persons with an event at or after this time (what a page that
        shows the list asks for every few seconds), their figures still those of [since, until]."""
        camera, limit = parse_camera(camera), parse_limit(limit)
        low, high, after = parse_time(since, "since"), parse_time(until, "until"), parse_cursor(before)
        changed = parse_time(changed_since, "changed_since")
        pick_low = low if changed is None else changed if low is None else max(low, changed)
        with self._read() as conn:
            if high is None:
                # A person's last event is its newest at all: the persons table, in its order, is exact.
                where, args = sql_filter({"stream = ?": camera, "last_ts >= ?": pick_low}, keyset=("last_ts", "person", after))
                sql = f"SELECT person FROM persons {where} ORDER BY last_ts DESC, person DESC LIMIT ?"
                chosen = [row[0] for row in conn.execute(sql, [*args, limit])]
            else:
                chosen = self._persons_in_range(conn, camera, pick_low, high, after, limit)
            return self._persons_by_number(conn, chosen, low, high)

    def cameras(self) -> list[dict[str, Any]]:
        """Every camera with events in the store: how many events and persons, first and last event."""
        with self._read() as conn:
            rows = conn.execute("SELECT stream, events, persons, first_ts, last_ts FROM cameras ORDER BY stream").fetchall()
        return [{"camera": row["stream"], "events": row["events"], "persons": row["persons"], "first_event": iso(row["first_ts"]),
                 "last_event": iso(row["last_ts"])} for row in rows]

    # ---------------------------------------------------------------- persons, in detail
    @staticmethod
    def _persons_in_range(conn: sqlite3.Connection, camera: str | None, low: float | None, high: float, after: tuple[float, int] | None,
                          limit: int) -> list[int]:
        """The persons whose last event up to ``high`` is within [low, high], newest first: the
        events of the range are walked newest first until ``limit`` persons are found (on camera
        footage a few hundred events hold a hundred persons; a range a few regulars fill is walked
        further)."""
        where, args = sql_filter({"wall_ts <= ?": high, "wall_ts >= ?": low, "stream = ?": camera}, keyset=("wall_ts", "person", after),
                                 always=("person IS NOT NULL",))
        seen: set[int] = set()
        chosen: list[int] = []
        last_in_range = "SELECT max(wall_ts) FROM events WHERE person = ? AND wall_ts <= ?"
        for person, when in conn.execute(f"SELECT person, wall_ts FROM events {where} ORDER BY wall_ts DESC, person DESC", args):
            if person in seen:
                continue
            seen.add(person)
            # On a later page a person whose last event in the range is above the cursor was listed already.
            if after is not None and conn.execute(last_in_range, (person, high)).fetchone()[0] != when:
                continue
            chosen.append(person)
            if len(chosen) == limit:
                break
        return chosen

    @staticmethod
    def _persons_by_number(conn: sqlite3.Connection, persons: list[int], low: float | None, high: float | None) -> list[dict[str, Any]]:
        """The persons' entries, in the order given; their figures within [low, high] (None: all)."""
        out = []
        for number in persons:
            row = conn.execute("SELECT * FROM persons WHERE person = ?", (number,)).fetchone()
            if row is None:
                continue
            if low is None and high is None:
                visits, first, last_seen, last, best = row["visits"], row["first_ts"], row["last_seen_ts"], row["last_ts"], row["best_seq"]
            else:
                span = (number, -math.inf if low is None else low, math.inf if high is None else high)
                visits, first, last_seen, last = conn.execute(
                    "SELECT count(*), min(coalesce(first_ts, wall_ts)), max(last_ts), max(wall_ts) FROM events "
                    "WHERE person = ? AND wall_ts BETWEEN ? AND ?", span).fetchone()
                if not visits:
                    continue
                best = conn.execute("SELECT seq FROM events WHERE person = ? AND wall_ts BETWEEN ? AND ? "
                                    "ORDER BY best_quality DESC, wall_ts DESC LIMIT 1", span).fetchone()[0]
            shown = conn.execute("SELECT event_id, best_quality, best_crop, best_face_image, best_components, best_face_reasons "
                                 "FROM events WHERE seq = ?", (best,)).fetchone()
            out.append({
                "person": number,
                "camera": row["stream"],
                "person_id": row["person_id"],
                "first_seen": iso(first),
                "last_seen": iso(last_seen),
                "last_event": iso(last),
                "visits": visits,
                "best_event": shown["event_id"] if shown else None,
                "quality": shown["best_quality"] if shown else None,
                "image": (shown["best_face_image"] or shown["best_crop"]) if shown else None,
                "crop": shown["best_crop"] if shown else None,
                "face": shown["best_face_image"] if shown else None,
                "components": json.loads(shown["best_components"]) if shown and shown["best_components"] else None,
                "best_face": json.loads(shown["best_face_reasons"]) if shown and shown["best_face_reasons"] else None,
                "cursor": cursor(last, number),
            })
        return out


class _Reading:
    """One read transaction (a consistent snapshot across a method's statements), one thread at a time."""

    def __init__(self, queries: EventQueries):
        self.queries = queries

    def __enter__(self) -> sqlite3.Connection:
        self.queries._lock.acquire()
        conn = self.queries._conn
        try:
            conn.execute("BEGIN")
        except sqlite3.Error:
            self.queries._lock.release()
            raise
        return conn

    def __exit__(self, *exc) -> None:
        try:
            self.queries._conn.execute("COMMIT")
        finally:
            self.queries._lock.release()

