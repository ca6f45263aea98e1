"""The event store (sinks/event_store.py) and its queries (live/event_queries.py): queries against
a brute-force reading of the same events, pagination, retention that keeps rows and images in
step, the JSON-lines log's rotation, start-up import, and `vidfiqa events` with its one-line
errors.  The store under a real watcher killed with SIGKILL: tests/live/test_event_store_watch.py."""

from __future__ import annotations

import json
import random
import sqlite3

import numpy as np
import pytest

from vidfiqa.errors import ConfigError, InputError, OutputError
from vidfiqa.faces import Faces, object_column
from vidfiqa.live.event_queries import MAX_LIMIT, EventQueries, QueryError, iso, parse_time
from vidfiqa.select import QualitySeries, TrackRecord, TrackResult
from vidfiqa.sinks import Retention, WatchOutputs, watch_sinks
from vidfiqa.sinks.event_log import EventLogSink, log_files
from vidfiqa.sinks.event_store import EventStoreSink, rebuild_summaries
from vidfiqa.sinks.outbox import EventNamer

T0 = 1_780_000_000.0  # 2026-05-28


# ------------------------------------------------------------------------ synthetic events
def synthetic_event(n: int, stream: str, wall: float, person_id: int | None, quality: float, epoch: float) -> dict:
    """A `vidfiqa.event/1` record as event_record writes it (two picks, components, a template)."""
    event_id = f"{stream}-{n:05d}"
    folder = f"events/{stream}/{event_id}"
    picks = []
    for r in range(2):
        pts = round(wall - epoch - 2 + 0.4 * r, 6)
        picks.append({"rank": r + 1, "frame_index": 10 * n + r, "pts": pts, "bbox": [10.0, 12.0, 60.0, 70.0],
                      "landmarks": [[20.0, 30.0]] * 5, "detector_score": 0.9, "quality": round(quality - 0.01 * r, 6),
                      "quality_smoothed": round(quality, 6), "components": {"yaw": 3.5 + r, "sharpness": 0.8},
                      "wall_time": iso(epoch + pts), "crop": f"{folder}/r{r + 1}_crop.png", "context": f"{folder}/r{r + 1}_context.jpg"})
    return {"schema": "vidfiqa.event/1", "event_id": event_id, "stream": stream, "wall_time": iso(wall), "track_id": n,
            "person_id": person_id, "segment": 1, "ended": "lost", "first_seen": iso(wall - 3), "last_seen": iso(wall - 1),
            "latency_s": 1.0, "num_detections": 12, "quality_max": round(quality + 0.02, 6), "selected": picks,
            **({"best_face": ["turned away: yaw 47°"]} if n % 7 == 0 else {}),
            "template": {"model": "ediffiqa_t_mfn", "dim": 4, "rule": "quality_weighted", "temperature": 0.1, "faces": 3,
                         "vector": [0.5, -0.5, 0.5, round(0.5 - n * 1e-6, 6)]}}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """400 events of 3 cameras over 10 days, written in shuffled order (so insertion order is not
    time order), with ties in time; each camera's analysis restarted once (person ids count from
    1 again: other persons).  Returns (folder, events with their store 'person' and 'seq')."""
    rng = random.Random(7)
    folder = tmp_path_factory.mktemp("store")
    events = []
    for n in range(400):
        stream = ("door", "hall", "yard")[n % 3]
        epoch = T0 if n < 200 else T0 + 5 * 86400  # the restart
        wall = round(epoch + 60 + rng.randrange(0, 5 * 86400 // 30) * 30, 3)  # ties: every 30 s
        person_id = rng.choice([1, 1, 1, 2, 3]) if n % 5 else rng.randrange(4, 60)
        events.append((synthetic_event(n, stream, wall, person_id, round(rng.uniform(0.1, 0.9), 3), epoch), epoch))
    rng.shuffle(events)
    sink = EventStoreSink(folder)
    rows = []
    for seq, (event, epoch) in enumerate(events, start=1):
        assert sink.add(event, epoch)
        rows.append({**event, "seq": seq, "epoch": epoch, "ts": parse_time(event["wall_time"])})
    assert not sink.add(events[0][0], events[0][1]), "an event already stored is not stored twice"
    sink.close()
    # The store's persons: one per (camera, run of its analysis, person_id).
    keys = sorted({(r["stream"], r["epoch"], r["person_id"]) for r in rows}, key=lambda k: min(x["seq"] for x in rows if (x["stream"], x["epoch"], x["person_id"]) == k))
    numbers = {key: k + 1 for k, key in enumerate(keys)}
    for r in rows:
        r["person"] = numbers[(r["stream"], r["epoch"], r["person_id"])]
    return folder, rows


def newest_first(rows):
    return sorted(rows, key=lambda r: (r["ts"], r["seq"]), reverse=True)


def all_pages(query, page: int, **filters) -> list[dict]:
    """Every item of a query, page by page through the cursors."""
    out, before = [], None
    while True:
        items = query(limit=page, before=before, **filters)
        out += items
        if len(items) < page:
            return out
        before = items[-1]["cursor"]


# ------------------------------------------------------------------------ queries
def test_event_queries_match_a_brute_force_reading(store):
    folder, rows = store
    with EventQueries(folder) as q:
        assert [e["event_id"] for e in q.events(limit=50)] == [r["event_id"] for r in newest_first(rows)[:50]]
        # Keyset pages (37 a page, ties in time broken by insertion order) give every event once, in order.
        assert [e["event_id"] for e in all_pages(q.events, 37)] == [r["event_id"] for r in newest_first(rows)]
        since, until = T0 + 2 * 86400, T0 + 6.5 * 86400
        cases = [dict(camera="hall"), dict(since=since), dict(until=until), dict(since=iso(since), until=iso(until)),
                 dict(camera="yard", since=str(since)), dict(person=rows[0]["person"]), dict(person=rows[5]["person"], until=until)]
        for filters in cases:
            low, high = parse_time(filters.get("since")), parse_time(filters.get("until"))
            expected = [r for r in newest_first(rows) if filters.get("camera", r["stream"]) == r["stream"]
                        and filters.get("person", r["person"]) == r["person"]
                        and (low is None or r["ts"] >= low) and (high is None or r["ts"] <= high)]
            got = all_pages(q.events, 29, **filters)
            assert [e["event_id"] for e in got] == [r["event_id"] for r in expected], filters
        assert q.events(camera="nobody") == []
        assert q.person_visits(rows[0]["person"], limit=MAX_LIMIT) == q.events(person=rows[0]["person"], limit=MAX_LIMIT)


def test_every_field_of_an_event_is_kept(store):
    folder, rows = store
    row = next(r for r in rows if "best_face" in r)
    with EventQueries(folder) as q:
        full = q.event(row["event_id"])
        listed = next(e for e in q.events(limit=MAX_LIMIT) if e["event_id"] == row["event_id"])
        assert q.event("cam-nothing") is None
    event = {k: v for k, v in row.items() if k not in ("seq", "epoch", "ts", "person")}
    assert full == {**event, "person": row["person"]}, "the whole record, template vector included"
    best = event["selected"][0]
    assert listed["quality"] == best["quality"] and listed["crop"] == best["crop"] and listed["image"] == best["crop"]
    assert listed["components"] == best["components"] and listed["best_face"] == event["best_face"] and listed["selected"] == event["selected"]
    assert (listed["camera"], listed["person_id"], listed["first_seen"], listed["latency_s"]) == (event["stream"], event["person_id"], event["first_seen"], 1.0)
    conn = sqlite3.connect(folder / "events.sqlite")
    blob, model, dim = conn.execute("SELECT template, template_model, template_dim FROM events WHERE event_id = ?", (row["event_id"],)).fetchone()
    assert np.allclose(np.frombuffer(blob, np.float32), event["template"]["vector"]) and (model, dim) == ("ediffiqa_t_mfn", 4)
    assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 1
    plans = [" ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN SELECT * FROM events WHERE {w} ORDER BY wall_ts DESC, seq DESC LIMIT 5"))
             for w in ("1", "stream = 'hall'", "person = 3", "wall_ts BETWEEN 1 AND 2")]
    # Each walks an index in its order: no full scan, no sort (but of equal times, by seq, in the person index).
    assert all("USING INDEX" in p and ("TEMP B-TREE" not in p or "RIGHT PART" in p) for p in plans), plans


def test_persons_match_a_brute_force_reading(store):
    folder, rows = store
    since, until = T0 + 1 * 86400, T0 + 6 * 86400
    with EventQueries(folder) as q:
        for filters in (dict(), dict(camera="door"), dict(since=since), dict(since=since, until=until), dict(camera="hall", until=until)):
            low, high = parse_time(filters.get("since")), parse_time(filters.get("until"))
            inside = [r for r in rows if filters.get("camera", r["stream"]) == r["stream"]
                      and (low is None or r["ts"] >= low) and (high is None or r["ts"] <= high)]
            by_person: dict[int, list] = {}
            for r in inside:
                by_person.setdefault(r["person"], []).append(r)
            expected = sorted(by_person, key=lambda p: (max(r["ts"] for r in by_person[p]), p), reverse=True)
            got = all_pages(q.persons, 13, **filters)
            assert [p["person"] for p in got] == expected, filters
            for entry in got:
                visits = by_person[entry["person"]]
                best = max(visits, key=lambda r: (r["selected"][0]["quality"], r["ts"]))
                assert entry["visits"] == len(visits) and entry["best_event"] == best["event_id"] and entry["image"] == best["selected"][0]["crop"]
                assert entry["last_event"] == iso(max(r["ts"] for r in visits)) and entry["camera"] == visits[0]["stream"]
                assert entry["first_seen"] == min(r["first_seen"] for r in visits) and entry["person_id"] == visits[0]["person_id"]
        one = q.person(rows[0]["person"])
        assert one is not None and one["visits"] == sum(r["person"] == rows[0]["person"] for r in rows)
        assert q.person(99999) is None
        cameras = q.cameras()
    assert [(c["camera"], c["events"]) for c in cameras] == [(s, sum(r["stream"] == s for r in rows)) for s in ("door", "hall", "yard")]
    assert [c["persons"] for c in cameras] == [len({r["person"] for r in rows if r["stream"] == s}) for s in ("door", "hall", "yard")]
    # Person ids restart with the camera's analysis: person_id 1 of one camera is two persons of the store.
    assert len({r["person"] for r in rows if r["stream"] == "door" and r["person_id"] == 1}) == 2


def test_bad_query_values_are_refused_in_one_line(store):
    folder, _ = store
    with EventQueries(folder) as q:
        for call in (lambda: q.events(since="yesterday"), lambda: q.events(until="2026-13-01"), lambda: q.events(since=float("nan")),
                     lambda: q.events(since=-5), lambda: q.events(since=True), lambda: q.events(limit=0), lambda: q.events(limit=MAX_LIMIT + 1),
                     lambda: q.events(limit="ten"), lambda: q.events(limit=2.5), lambda: q.events(camera="a b"), lambda: q.events(camera="x" * 65),
                     lambda: q.events(person="twelve"), lambda: q.events(person=0), lambda: q.events(before="page2"),
                     lambda: q.persons(before="1.5"), lambda: q.person_visits(None), lambda: q.event(""), lambda: q.persons(until="soon")):
            with pytest.raises(QueryError) as err:
                call()
            assert isinstance(err.value, ValueError) and isinstance(err.value, ConfigError)
            assert "\n" not in str(err.value) and str(err.value).split(":")[0] in ("since", "until", "limit", "camera", "person", "before", "event")
    now = 1_800_000_000.0
    assert parse_time("90s", now=now) == now - 90 and parse_time("2h", now=now) == now - 7200 and parse_time("7d", now=now) == now - 7 * 86400
    assert parse_time("2026-06-01T14:00:00Z") == parse_time("2026-06-01T16:00:00+02:00") == parse_time(1780322400) == parse_time("1780322400")
    with pytest.raises(InputError, match="no event store in"):
        EventQueries(folder.parent)
    (folder.parent / "junk.sqlite").write_bytes(b"not a database at all" * 10)
    with pytest.raises(InputError, match="is not an event store"):
        EventQueries(folder.parent / "junk.sqlite")


# ------------------------------------------------------------------------ the sinks together
def _result(track_id: int, quality: float = 0.5) -> TrackResult:
    n = 5
    series = QualitySeries(frame_index=np.arange(n), pts=np.linspace(0, 1, n), quality=np.full(n, quality), quality_smoothed=np.full(n, quality),
                           detector_score=np.full(n, 0.9), boxes=np.tile([10.0, 10, 60, 60], (n, 1)))
    crop = np.zeros((1, 112, 112, 3), np.uint8)
    chosen = Faces.create([[10, 10, 60, 60]], np.zeros((1, 5, 2)), [0.9], frame_index=3, timestamp=0.5, track_id=track_id,
                          crops=crop, quality=[quality], embeddings=np.ones((1, 4)), context=object_column([crop[0]]))
    return TrackResult(track_id=track_id, ended="lost", series=series, chosen=chosen, chosen_smoothed=np.array([quality]))


def _emit_all(sinks, namer, tracks, streams=("cam", "door"), wall_start=1e9):
    for track in tracks:
        record = namer(TrackRecord(_result(track, 0.05 * (track % 15) + 0.1), stream=streams[track % len(streams)], wall_start=wall_start,
                                   person_id=1 + track % 4))
        for sink in sinks:
            sink.emit(record)


def _rows_and_folders(out):
    with EventQueries(out) as q:
        rows = {(e["camera"], e["event_id"]) for e in q.events(limit=MAX_LIMIT)}
    folders = {(f.parent.name, f.name) for f in (out / "events").glob("*/*") if f.is_dir()}
    return rows, folders


def _summaries(out):
    conn = sqlite3.connect(out / "events.sqlite")
    return [conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("persons", "cameras")]


def test_retention_prunes_rows_with_their_images(tmp_path, monkeypatch):
    """The store is pruned by the event folders' retention, rows first: rows and folders always
    name the same events; when the store cannot drop rows, the images stay too (and go at the
    next event); and the summaries kept as rows come and go equal the ones rebuilt from scratch."""
    out = tmp_path / "out"
    outputs = WatchOutputs(retention=Retention(keep_count=3, keep_days=None, keep_mb=None))
    sinks = watch_sinks(out, outputs, None, lambda *a, **k: None)
    store_sink = sinks[1]
    assert [s.name for s in sinks] == ["event_folders", "event_store", "event_log"], "images, then the row, then the log line"
    namer = EventNamer(out)
    _emit_all(sinks, namer, range(1, 11))
    rows, folders = _rows_and_folders(out)
    assert rows == folders and len(rows) == 6, (rows, folders)  # 3 per camera
    assert len((out / "events.jsonl").read_text().splitlines()) == 10  # the log keeps every event

    def refuses(stream, event_ids):
        raise OutputError("cannot write the event store: database or disk is full")
    monkeypatch.setattr(store_sink, "forget", refuses)
    _emit_all(sinks, namer, range(11, 15))
    rows, folders = _rows_and_folders(out)
    assert rows == folders and len(rows) == 10, "nothing pruned while the store cannot drop rows"
    monkeypatch.undo()
    _emit_all(sinks, namer, range(15, 17))
    rows, folders = _rows_and_folders(out)
    assert rows == folders and len(rows) == 6
    assert store_sink.summary()["events_removed"] == 10
    incremental = _summaries(out)
    store_sink.close()
    conn = sqlite3.connect(out / "events.sqlite", isolation_level=None)
    rebuild_summaries(conn)
    conn.close()
    assert _summaries(out) == incremental


def test_the_store_agrees_with_the_event_folders_at_start(tmp_path):
    """A run without the store (--no-store) prunes images the store still lists and writes events
    it never sees; the next run with it removes the rows whose images are gone and imports the
    event folders it lacks.  A new store imports every folder, matching persons as the live store
    did (the start of each camera's analysis estimated from the picks)."""
    out = tmp_path / "out"
    namer = EventNamer(out)
    retention = Retention(keep_count=4, keep_days=None, keep_mb=None)
    with_store = watch_sinks(out, WatchOutputs(retention=retention), None, lambda *a, **k: None)
    _emit_all(with_store, namer, range(1, 9), wall_start=1_780_000_000.25)
    for sink in with_store:
        sink.close()
    with EventQueries(out) as q:
        live = {e["event_id"]: e["person"] for e in q.events(limit=MAX_LIMIT)}
    without = watch_sinks(out, WatchOutputs(retention=retention, store=False), None, lambda *a, **k: None)
    assert [s.name for s in without] == ["event_folders", "event_log"]
    _emit_all(without, namer, range(9, 13), wall_start=1_780_000_000.75)  # a later run: another start
    store = EventStoreSink(out)
    store.close()
    rows, folders = _rows_and_folders(out)
    assert rows == folders and len(rows) == 8
    assert (store.removed_at_start, store.imported, store.written) == (4, 4, 0)
    (out / "events.sqlite").unlink()
    fresh = EventStoreSink(out)
    fresh.close()
    assert _rows_and_folders(out)[0] == folders and fresh.imported == 8
    with EventQueries(out) as q:
        imported = {e["event_id"]: (e["camera"], e["person_id"], e["person"]) for e in q.events(limit=MAX_LIMIT)}
    run = {event_id: 1 if int(event_id.split("-")[-2]) < 9 else 2 for event_id in imported}  # ids end in -<track>-<segment>
    # One person per camera, run and person_id: the two runs' person 1 of a camera are two persons.
    assert len({p for *_, p in imported.values()}) == len({(c, pid, run[e]) for e, (c, pid, _) in imported.items()})
    # The first run's events are grouped into persons as the live store grouped them.
    kept = [e for e in imported if e in live]
    assert kept and all((live[a] == live[b]) == (imported[a][2] == imported[b][2]) for a in kept for b in kept)


def test_the_log_rotates_by_size_and_by_day_keeping_a_bounded_number_of_files(tmp_path):
    namer = EventNamer(tmp_path)
    sink = EventLogSink(tmp_path, max_bytes=3000, keep=2)
    records = [namer(TrackRecord(_result(t), stream="cam", wall_start=1e9, person_id=1)) for t in range(1, 13)]
    for record in records:
        sink.emit(record)
    files = log_files(tmp_path)
    assert [f.name for f in files] == ["events.jsonl.2", "events.jsonl.1", "events.jsonl"]
    assert all(f.stat().st_size <= 3000 for f in files)
    lines = [json.loads(line)["event_id"] for f in files for line in f.read_text().splitlines()]
    assert lines == [r.event_id for r in records][-len(lines):], "the newest events, in order"
    sink.keep = 1  # a smaller --log-keep: the files past it go at the next rotation
    sink._day = None
    sink.daily, sink.max_bytes = True, None
    sink.emit(records[0])  # a new day (the file's day is unknown): rotated
    assert [f.name for f in log_files(tmp_path)] == ["events.jsonl.1", "events.jsonl"]
    assert (tmp_path / "events.jsonl").read_text().count("\n") == 1
    sink.emit(records[1])  # the same day: appended
    assert (tmp_path / "events.jsonl").read_text().count("\n") == 2


# ------------------------------------------------------------------------ vidfiqa events
@pytest.fixture
def cli(capsys):
    from vidfiqa.cli import main

    def run(*args):
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err
    return run


def test_the_events_command_filters_and_refuses_bad_input_in_one_line(store, cli, tmp_path):
    folder, rows = store
    code, out, err = cli("events", folder, "--camera", "hall", "--since", iso(T0 + 86400), "--until", str(T0 + 4 * 86400), "--format", "json",
                         "--limit", "1000")
    assert code == 0, err
    expected = [r["event_id"] for r in newest_first(rows) if r["stream"] == "hall" and T0 + 86400 <= r["ts"] <= T0 + 4 * 86400]
    assert [e["event_id"] for e in json.loads(out)] == expected and expected
    person = rows[3]["person"]
    code, out, _ = cli("events", folder / "events.sqlite", "--person", person, "--format", "json", "--limit", "1000")
    assert [e["event_id"] for e in json.loads(out)] == [r["event_id"] for r in newest_first(rows) if r["person"] == person]
    code, out, err = cli("events", folder, "--persons", "--camera", "door", "--limit", "5")
    assert code == 0 and len(out.strip().splitlines()) == 6 and "door" in out and "--before" in err  # a header and five persons
    code, out, _ = cli("events", folder, "--persons", "--person", person, "--format", "json")
    assert [p["person"] for p in json.loads(out)] == [person]
    code, out, err = cli("events", folder, "--limit", "3")
    first = newest_first(rows)[0]
    assert code == 0 and first["event_id"] in out.splitlines()[1] and str(folder / first["selected"][0]["crop"]) in out.replace("\n", "")
    cursor = err.split("--before ")[1].strip()
    code, out, _ = cli("events", folder, "--limit", "1", "--before", cursor, "--format", "json")
    assert json.loads(out)[0]["event_id"] == newest_first(rows)[3]["event_id"]
    bad = [((tmp_path / "nowhere",), "no event store at"), ((tmp_path,), "no event store in"), ((folder, "--since", "last tuesday"), "--since:"),
           ((folder, "--format", "xml"), "--format:"), ((folder, "--limit", "0"), "--limit:"), ((folder, "--person", "bob"), "--person:"),
           ((folder, "--camera", "../etc"), "--camera:"), ((folder, "--before", "x"), "--before:")]
    for args, says in bad:
        code, out, err = cli("events", *args)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and says in err and "Traceback" not in err, (args, err)
