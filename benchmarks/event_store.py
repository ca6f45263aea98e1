"""The event store's queries (vidfiqa/live/event_queries.py) on a store of a million events.

    python benchmarks/event_store.py [--events 1000000] [--repeats 20] [--rebuild]

Builds (once; cached in $VIDFIQA_CACHE/event_store/, default ~/.cache/vidfiqa) a store of
synthetic events written the way the watch's sink writes them (``event_row``: every column, the
full event JSON with three picks and their components, a 128-float template), then times the
queries the live page and `vidfiqa events` ask, each through a fresh read-only ``EventQueries``
(open, query, close: what one HTTP request costs), median and max over the repeats.  Target
(issue 27): under 100 ms each.

The events: 8 cameras over 30 days; each camera's analysis restarted every 7 days (its person ids
count from 1 again); 30 % of events are regulars (10 a camera and run, one of them in view most
of the time: its events dominate), the rest visitors, 60 % of them new and 40 % coming back.
Built with ``executemany`` into a store without its event indexes, which are then made, as a
store that grew event by event has them; the persons' and cameras' figures by
``rebuild_summaries``.  No ANALYZE: the live store has no statistics either.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from benchinfo import Run  # noqa: E402

from vidfiqa.live.event_queries import SCHEMA, EventQueries, iso  # noqa: E402
from vidfiqa.sinks.event_store import INSERT_EVENT, event_row, open_writer, rebuild_summaries  # noqa: E402

CAMERAS = [f"cam{k}" for k in range(1, 9)]
DAYS = 30
RESTART_DAYS = 7
END = 1_780_000_000.0  # the newest event (2026-05-28); the store spans the DAYS before it
CACHE = Path(os.environ.get("VIDFIQA_CACHE", Path.home() / ".cache" / "vidfiqa")) / "event_store"
COMPONENTS = {"yaw": 12.5, "pitch": -4.25, "roll": 2.0, "inter_eye_px": 38.5, "sharpness": 0.71, "exposure": -0.4, "noise": 2.1,
              "compression": 0.12, "occlusion": 0.03}


def synthetic_events(n: int, seed: int = 27):
    """(event record, the store's person number, epoch) in time order."""
    rng = random.Random(seed)
    start = END - DAYS * 86400
    times = sorted(rng.uniform(start, END) for _ in range(n))
    next_id: dict[tuple[str, float], int] = {}
    regulars: dict[tuple[str, float], list[int]] = {}
    recent: dict[tuple[str, float], list[int]] = {}
    numbers: dict[tuple[str, float, int], int] = {}
    track = dict.fromkeys(CAMERAS, 0)
    vector = [round(rng.uniform(-0.09, 0.09), 6) for _ in range(128)]
    weights = [50] + [5] * 9  # one regular in view most of the time
    for k, wall in enumerate(times):
        camera = CAMERAS[k % len(CAMERAS)]
        epoch = start + ((wall - start) // (RESTART_DAYS * 86400)) * RESTART_DAYS * 86400 + CAMERAS.index(camera)
        run = (camera, epoch)
        next_id.setdefault(run, 1)
        if rng.random() < 0.3:
            people = regulars.setdefault(run, [])
            slot = rng.choices(range(10), weights)[0]
            while len(people) <= slot:
                people.append(next_id[run])
                next_id[run] += 1
            person_id = people[slot]
        else:
            back = recent.setdefault(run, [])
            if back and rng.random() < 0.4:
                person_id = rng.choice(back)
            else:
                person_id = next_id[run]
                next_id[run] += 1
                back.append(person_id)
                del back[:-20]
        key = (camera, epoch, person_id)
        person = numbers.setdefault(key, len(numbers) + 1)
        track[camera] += 1
        event_id = f"{camera}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(wall))}-{track[camera]:04d}-1"
        folder = f"events/{camera}/{event_id}"
        quality = round(rng.uniform(0.05, 0.95), 6)
        picks = []
        for r in range(3):
            pts = round(wall - epoch - 2.5 + 0.5 * r, 6)
            picks.append({"rank": r + 1, "frame_index": int(pts * 5), "pts": pts, "bbox": [612.4, 210.75, 688.1, 301.5],
                          "landmarks": [[630.1, 245.2], [664.8, 244.9], [647.3, 263.0], [633.7, 281.4], [661.2, 281.1]],
                          "detector_score": 0.987, "quality": round(quality - 0.02 * r, 6), "quality_smoothed": round(quality - 0.01, 6),
                          "components": COMPONENTS, "wall_time": iso(epoch + pts), "crop": f"{folder}/r{r + 1}_crop.png",
                          "context": f"{folder}/r{r + 1}_context.jpg", "face": f"{folder}/r{r + 1}_face.jpg"})
        event = {"schema": "vidfiqa.event/1", "event_id": event_id, "stream": camera, "wall_time": iso(wall), "track_id": track[camera],
                 "person_id": person_id, "segment": 1, "ended": "lost", "first_seen": iso(wall - 4.0), "last_seen": iso(wall - 1.2),
                 "latency_s": 1.2, "num_detections": 21, "quality_max": round(quality + 0.01, 6), "selected": picks,
                 "template": {"model": "mobilefacenet", "dim": 128, "rule": "quality_softmax", "temperature": 0.1, "faces": 21, "vector": vector}}
        yield event, person, key


def build(path: Path, n: int) -> None:
    """A store of ``n`` synthetic events at ``path`` (see the module docstring)."""
    tmp = path.with_name(path.name + ".part")
    tmp.unlink(missing_ok=True)
    conn = open_writer(tmp)
    conn.close()
    conn = sqlite3.connect(tmp, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")  # a fixture, not the sink: a crash here just means building again
    for index in ("events_time", "events_stream_time", "events_person_time"):
        conn.execute(f"DROP INDEX {index}")
    persons: dict[int, tuple] = {}
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    chunk = []
    for k, (event, person, key) in enumerate(synthetic_events(n)):
        chunk.append(event_row(event, person))
        persons.setdefault(person, key)
        if len(chunk) == 20000:
            conn.executemany(INSERT_EVENT, chunk)
            chunk = []
            print(f"\r{k + 1:,} events ({time.perf_counter() - t0:.0f} s)", end="", file=sys.stderr, flush=True)
    conn.executemany(INSERT_EVENT, chunk)
    conn.executemany("INSERT INTO persons (person, stream, epoch, person_id, first_ts, last_seen_ts, last_ts, visits) VALUES (?, ?, ?, ?, 0, 0, 0, 0)",
                     [(person, *key) for person, key in persons.items()])
    conn.execute("COMMIT")
    print(f"\nindexes and summaries ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    conn.execute("BEGIN")
    for statement in SCHEMA.split(";"):
        if "CREATE INDEX" in statement:
            conn.execute(statement)
    rebuild_summaries(conn)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    os.replace(tmp, path)
    print(f"built {path} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def timed(call, repeats: int) -> dict:
    times, rows = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        rows = call()
        times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2), "first_ms": round(times[0], 2),
            "rows": len(rows) if isinstance(rows, list) else int(rows is not None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rebuild", action="store_true", help="Build the store again even if it is cached.")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "event_store_vm.json")
    args = parser.parse_args()
    run = Run("event_store.py", sys.argv[1:])
    path = CACHE / f"events_{args.events}.sqlite"
    CACHE.mkdir(parents=True, exist_ok=True)
    built_s = None
    if args.rebuild or not path.exists():
        started = time.perf_counter()
        build(path, args.events)
        built_s = round(time.perf_counter() - started, 1)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    regular = conn.execute("SELECT person FROM persons ORDER BY visits DESC LIMIT 1").fetchone()[0]
    visitor = conn.execute("SELECT person FROM persons WHERE visits = 2 ORDER BY last_ts DESC LIMIT 1").fetchone()[0]
    store = {
        "events": conn.execute("SELECT count(*) FROM events").fetchone()[0],
        "persons": conn.execute("SELECT count(*) FROM persons").fetchone()[0],
        "cameras": conn.execute("SELECT count(*) FROM cameras").fetchone()[0],
        "most_visits": conn.execute("SELECT max(visits) FROM persons").fetchone()[0],
        "bytes": path.stat().st_size,
        "built_s": built_s,
    }
    deep = conn.execute("SELECT wall_ts, seq FROM events ORDER BY wall_ts DESC, seq DESC LIMIT 1 OFFSET 4999").fetchone()
    some_event = conn.execute("SELECT event_id FROM events WHERE seq = 500000 OR seq = (SELECT max(seq) FROM events) LIMIT 1").fetchone()[0]
    conn.close()
    afternoon = (END - 10 * 86400 - 8 * 3600, END - 10 * 86400 - 4 * 3600)  # four hours, ten days back
    with EventQueries(path) as q:
        page_one = q.events(limit=100)
    after = page_one[-1]["cursor"]

    def ask(method: str, **kwargs):
        def call():
            with EventQueries(path) as queries:
                return getattr(queries, method)(**kwargs)
        return call

    queries = {
        "events: newest 100": ask("events"),
        "events: second page (keyset)": ask("events", before=after),
        "events: page 51 (keyset, 5000 deep)": ask("events", before=f"{deep[0]!r}:{deep[1]}"),
        "events: one camera, newest 100": ask("events", camera="cam3"),
        "events: a 4-hour range 10 days back": ask("events", since=afternoon[0], until=afternoon[1]),
        "events: one camera in that range": ask("events", camera="cam3", since=afternoon[0], until=afternoon[1]),
        "events: since 1 day ago (ISO)": ask("events", since=iso(END - 86400)),
        "events: one person (the most visits)": ask("events", person=regular),
        "events: one person (a visitor)": ask("events", person=visitor),
        "person_visits: the most visits, newest 100": ask("person_visits", person=regular),
        "person: the most visits (all time)": ask("person", person=regular),
        "persons: newest 100": ask("persons"),
        "persons: one camera, newest 100": ask("persons", camera="cam5"),
        "persons: last 24 h": ask("persons", since=END - 86400),
        "persons: a 4-hour range 10 days back": ask("persons", since=afternoon[0], until=afternoon[1]),
        "persons: until 1 h ago (30 days walked)": ask("persons", until=END - 3600),
        "cameras": ask("cameras"),
        "event: one full record": ask("event", event_id=some_event),
    }
    results = {}
    for name, call in queries.items():
        results[name] = timed(call, args.repeats)
        print(f"{name:45s} median {results[name]['median_ms']:7.2f} ms  max {results[name]['max_ms']:7.2f} ms  rows {results[name]['rows']}")
    worst = max(r["max_ms"] for r in results.values())
    run.write(args.out, {"store": store, "repeats": args.repeats, "target_ms": 100, "met": worst < 100, "worst_max_ms": worst,
                         "queries": results, "note": "each query through a fresh read-only EventQueries: open, query, close"})


if __name__ == "__main__":
    main()
