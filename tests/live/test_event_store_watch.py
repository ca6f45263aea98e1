"""The event store under a real `vidfiqa watch`: two real clips replayed as cameras, the watcher
killed with SIGKILL while it writes; every event the JSON-lines log acknowledged is in the store,
whole, read while the watcher ran, after it died, after a restart, and rebuilt from the event
folders; `vidfiqa events` answers throughout."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from conftest import DATA, REPO, need, wait_for
from vidfiqa.live.event_queries import MAX_LIMIT, EventQueries
from vidfiqa.sinks.event_store import EventStoreSink


def acknowledged(out) -> list[dict]:
    """The events of events.jsonl (a last line a kill cut short was never acknowledged)."""
    path = out / "events.jsonl"
    events = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    return events


def events_command(*args) -> tuple[int, list[dict]]:
    result = subprocess.run([sys.executable, "-m", "vidfiqa", "events", *map(str, args), "--format", "json", "--limit", str(MAX_LIMIT)],
                            capture_output=True, text=True, timeout=60)
    return result.returncode, json.loads(result.stdout) if result.returncode == 0 else result.stderr


def test_events_survive_a_sigkill_of_the_watcher(tmp_path):
    streams = []
    for name, clip in (("face", "liveportrait_d12.mp4"), ("drive", "tpsmm_driving.mp4")):
        path = tmp_path / f"{name}.toml"
        # One face in view throughout: max_track_s makes an event every 1.5 s per camera.
        path.write_text(f'[stream]\nname = "{name}"\nurl = "{need(DATA / "videos" / clip)}"\nloop = true\nmax_track_s = 1.5\n')
        streams.append(path)
    out = tmp_path / "out"
    with open(tmp_path / "watch.log", "w") as log:
        watcher = subprocess.Popen([sys.executable, "-m", "vidfiqa.cli", "watch", *map(str, streams), "-o", str(out), "--no-metrics",
                                    "--log-format", "json"], stderr=log, cwd=REPO)
        try:
            assert wait_for(lambda: len(acknowledged(out)) >= 2, 90), (tmp_path / "watch.log").read_text()[-2000:]
            # While the watcher writes, the store answers (a read-only connection beside the writer).
            code, running = events_command(out)
            assert code == 0 and {e["event_id"] for e in acknowledged(out)[:2]} <= {e["event_id"] for e in running}
            assert wait_for(lambda: len(acknowledged(out)) >= 6 and {e["stream"] for e in acknowledged(out)} == {"face", "drive"}, 60)
            watcher.send_signal(signal.SIGKILL)
            watcher.wait(timeout=30)
        finally:
            if watcher.poll() is None:
                watcher.kill()
    assert watcher.returncode == -signal.SIGKILL
    logged = acknowledged(out)
    assert not (out / "watch_summary.json").exists(), "killed: nothing was written at shutdown"

    # Read as the watcher left it: every acknowledged event, whole.
    with EventQueries(out) as q:
        stored = {e["event_id"]: e for e in q.events(limit=MAX_LIMIT)}
        assert {e["event_id"] for e in logged} <= set(stored)
        lines = {json.loads(line)["event_id"]: line for line in (out / "events.jsonl").read_text().splitlines() if line.endswith("}")}
        for event in logged:
            full = q.event(event["event_id"])
            assert full == {**event, "person": stored[event["event_id"]]["person"]}
            # Read back in its own order and numbers, the template's float32 vector included: the log line itself.
            assert json.dumps({k: v for k, v in full.items() if k != "person"}, separators=(",", ":")) == lines[event["event_id"]]
            assert (out / stored[event["event_id"]]["image"]).is_file()
        persons = q.persons(limit=MAX_LIMIT)
    assert {p["camera"] for p in persons} == {"face", "drive"} and sum(p["visits"] for p in persons) == len(stored)
    code, after = events_command(out, "--camera", "drive")
    assert code == 0 and {e["event_id"] for e in after} == {e for e, v in stored.items() if v["camera"] == "drive"}

    # A restart: the store agrees with the event folders (one folder may be ahead of its row).
    restarted = EventStoreSink(out)
    restarted.close()
    folders = {f.name for f in (out / "events").glob("*/*") if (f / "event.json").is_file()}
    with EventQueries(out) as q:
        assert {e["event_id"] for e in q.events(limit=MAX_LIMIT)} == folders >= {e["event_id"] for e in logged}

    # Without the store file, a new one is filled from the folders, with the same persons.
    (out / "events.sqlite").unlink()
    rebuilt = EventStoreSink(out)
    rebuilt.close()
    assert rebuilt.imported == len(folders)
    with EventQueries(out) as q:
        again = {e["event_id"]: e["person"] for e in q.events(limit=MAX_LIMIT)}
    common = sorted(set(again) & set(stored))
    assert len(common) == len(stored)
    assert all((stored[a]["person"] == stored[b]["person"]) == (again[a] == again[b]) for a in common for b in common)
