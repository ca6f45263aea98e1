"""`vidfiqa watch --ray`: cameras as Ray actors on a local instance (2 CPUs); one actor is
killed and its camera comes back; events, metrics and health cover every camera on the driver."""

from __future__ import annotations

import json
import threading
import time

from conftest import REPO, LogLines, events_of, need_module, wait_for
from vidfiqa.live.config import load_stream
from vidfiqa.live.watch import Logger, Watcher

SAMPLE = REPO / "samples" / "astronaut.mp4"


def unix(stamp: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_cameras_run_as_ray_actors_and_a_killed_one_comes_back(tmp_path):
    ray = need_module("ray", "the ray extra: pip install -e '.[ray]'")
    import functools

    from vidfiqa.live.ray_cameras import RayCameras

    ray_before = ray.is_initialized()  # another test in this process may have started Ray: then it stays

    configs = []
    for k in range(2):
        # The sample's face is in view throughout: max_track_s makes an event every 3 s.
        path = tmp_path / f"cam{k}.toml"
        path.write_text(f'[stream]\nname = "cam{k}"\nurl = "{SAMPLE}"\nloop = true\nmax_track_s = 3.0\n'
                        'reconnect_min_s = 0.5\nreconnect_max_s = 2.0\nray_num_cpus = 1.0\n')
        configs.append(load_stream(path))
    out = tmp_path / "out"
    lines: list[str] = []
    watcher = Watcher(configs, out, cameras=functools.partial(RayCameras, address="local", num_cpus=2), log=Logger("json", stream=LogLines(lines)),
                      metrics_port=0)
    runner = threading.Thread(target=watcher.run, args=(240,), daemon=True)
    runner.start()
    try:
        both = lambda: {e["stream"] for e in events_of(out)} == {"cam0", "cam1"}  # noqa: E731
        assert wait_for(both, 150), f"events from both actors reach the driver: {events_of(out)[:2]} {lines[-5:]}"
        health = watcher.health()
        assert health["ok"] and all(s["up"] and s["ray"]["actor_up"] for s in health["streams"].values()), health
        # The driver serves /metrics for the cameras that run elsewhere.
        import urllib.request

        text = urllib.request.urlopen(f"http://127.0.0.1:{watcher.server.port}/metrics", timeout=5).read().decode()
        assert 'vidfiqa_frames_processed_total{stream="cam0"}' in text and 'vidfiqa_frames_processed_total{stream="cam1"}' in text

        analysed_before = watcher.metrics.get("vidfiqa_frames_processed_total", stream="cam0")
        victim = watcher.cameras.placements[0]
        killed_at = time.time()
        ray.kill(victim.actor)
        assert wait_for(lambda: not watcher.health()["streams"]["cam0"]["up"], 10), "health shows the camera down"
        assert watcher.health()["degraded"]
        assert wait_for(lambda: victim.placements == 2 and watcher.health()["streams"]["cam0"]["up"], 90), \
            f"the camera is placed again and reconnects: {lines[-5:]}"
        new = lambda: [e for e in events_of(out) if e["stream"] == "cam0" and unix(e["first_seen"]) > killed_at]  # noqa: E731
        assert wait_for(lambda: bool(new()), 60), "the new actor's events reach the same sinks"
        template = new()[0]["template"]  # the track's template travels with the event
        assert template["dim"] == 128 and abs(sum(v * v for v in template["vector"]) - 1) < 1e-4
        # The dead actor's counts are kept; the new one's add on.
        assert watcher.metrics.get("vidfiqa_frames_processed_total", stream="cam0") > analysed_before
        assert watcher.metrics.get("vidfiqa_ray_actor_deaths_total", group="cam0") == 1
        assert watcher.cameras.placements[1].placements == 1, "the other camera was not disturbed"
    finally:
        watcher.stop.set()
        runner.join(timeout=120)
    assert not runner.is_alive()
    summary = json.loads((out / "watch_summary.json").read_text())
    assert [g["placements"] for g in summary["ray"]["groups"]] == [2, 1]
    assert summary["streams"]["cam0"]["events"] >= 2 and summary["streams"]["cam1"]["events"] >= 1
    # The driver writes the event store: every actor's events are in it (the actors' only sink is a relay).
    from vidfiqa.live.event_queries import EventQueries

    with EventQueries(out) as queries:
        assert {e["event_id"] for e in queries.events(limit=1000)} == {e["event_id"] for e in events_of(out)}
        assert {c["camera"] for c in queries.cameras()} == {"cam0", "cam1"}
    assert any('"camera actor lost' in line for line in lines)
    assert ray.is_initialized() == ray_before, "a local instance the watch started is shut down, one it joined is left"


def test_a_ray_address_where_nothing_listens_is_one_line_at_once(tmp_path):
    import socket
    import subprocess
    import sys

    need_module("ray", "the ray extra: pip install -e '.[ray]'")
    with socket.socket() as probe:  # a free port, closed again: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stream = tmp_path / "cam.toml"
    stream.write_text(f'[stream]\nname = "cam"\nurl = "{SAMPLE}"\n')
    started = time.monotonic()
    for address in (f"127.0.0.1:{port}", "not-an-address"):
        res = subprocess.run([sys.executable, "-m", "vidfiqa", "watch", str(stream), "-o", str(tmp_path / "out"), "--ray", address,
                              "--no-metrics"], capture_output=True, text=True, timeout=120)
        assert res.returncode == 2, res.stderr
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert lines[-1].startswith("vidfiqa: error: --ray") and "Traceback" not in res.stderr, res.stderr
    assert time.monotonic() - started < 60, "refused at once, not after Ray's own minutes of retries"


def test_an_actors_relay_keeps_the_newest_records_and_counts_lost_events_per_stream():
    from types import SimpleNamespace

    from vidfiqa.sinks.relay import RelaySink

    relay = RelaySink(limit=3)
    records = [SimpleNamespace(stream=stream, is_event=event, wall_start=100.0) for stream, event in
               (("a", True), ("a", True), ("a", False), ("b", True), ("b", True), ("b", True))]
    for record in records:
        relay.emit(record)  # type: ignore[arg-type]
    kept = relay.take()
    assert [r.stream for r in kept] == ["b", "b", "b"] and relay.lost == {"a": 2}, "a record that is no event is no lost event"
    assert all(r.wall_start == 100.0 for r in kept), "the stream's wall-clock start travels with each record"
    assert relay.take() == []
