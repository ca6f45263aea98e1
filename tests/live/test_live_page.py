"""The live page of `vidfiqa watch` and its JSON API (live/web.py, live/page/), served by the
metrics server: the API's answers and pages over a synthetic store, bad query values and every
way of asking for a file outside the events folder refused (400/404, never the file), and the
page in headless Chromium during a real replayed-camera run (the people seen with their images
loaded, a camera filter, a person's visits)."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request

import pytest
from PIL import Image

from conftest import DATA, REPO, free_port, need, wait_for
from vidfiqa.live.event_queries import EventQueries, iso
from vidfiqa.live.metrics import Metrics, MetricsServer
from vidfiqa.live.web import FrameRates, LiveSite, loopback
from vidfiqa.sinks.event_store import EventStoreSink

T0 = 1_780_000_000.0
SECRET = b"not for the web"


def png(path, shade: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (shade, 90, 120)).save(path)


def synthetic_event(n: int, stream: str, wall: float, person_id: int) -> dict:
    """A `vidfiqa.event/1` record with its crop written under events/ (a PNG)."""
    event_id = f"{stream}-{n:04d}"
    folder = f"events/{stream}/{event_id}"
    pick = {"rank": 1, "frame_index": n, "pts": 1.0 + n, "bbox": [1.0, 2.0, 30.0, 40.0], "landmarks": [[5.0, 6.0]] * 5, "detector_score": 0.9,
            "quality": round(0.3 + 0.01 * n, 4), "quality_smoothed": 0.5, "wall_time": iso(wall - 1),
            "components": {"yaw": 10.0 - n, "pitch": 2.0, "roll": 0.0, "inter_eye_px": 40.0, "sharpness": 0.5, "exposure": -0.2,
                           "noise": 1.5, "compression": 0.05, "occlusion": 0.02},
            "crop": f"{folder}/r1_crop.png", "context": f"{folder}/r1_context.jpg"}
    return {"schema": "vidfiqa.event/1", "event_id": event_id, "stream": stream, "wall_time": iso(wall), "track_id": n, "person_id": person_id,
            "segment": 1, "ended": "lost", "first_seen": iso(wall - 3), "last_seen": iso(wall - 1), "latency_s": 1.0, "num_detections": 9,
            "quality_max": 0.6, "selected": [pick], **({"best_face": ["blurred"]} if n % 4 == 0 else {}), "template": None}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A watch output of 30 events (cameras door and yard, a few persons each), its images on
    disk, a secret file beside the events folder and links that point out of it, served by a real
    MetricsServer with the site; yields (server's base URL, output folder, events)."""
    root = tmp_path_factory.mktemp("watch")
    (root / "secret.png").write_bytes(SECRET)
    events = []
    sink = EventStoreSink(root)
    for n in range(30):
        stream = ("door", "yard")[n % 2]
        event = synthetic_event(n, stream, T0 + 60 * n, person_id=1 + n % 3)
        png(root / event["selected"][0]["crop"], 5 * n)
        (root / event["selected"][0]["crop"]).parent.joinpath("event.json").write_text(json.dumps(event))
        assert sink.add(event, T0)
        events.append(event)
    sink.close()
    (root / "events" / "door" / "leak.png").symlink_to(root / "secret.png")
    (root / "events" / "outside").symlink_to(root)
    live = {"door": {"up": True, "analysing": True, "fps": 4.5, "seconds_since_frame": 0.1, "last_error": None, "last_error_at": None,
                     "events_emitted": 15},
            "gate": {"up": False, "analysing": True, "fps": 0.0, "seconds_since_frame": None, "last_error": "Connection refused",
                     "last_error_at": iso(T0), "events_emitted": 0}}
    server = MetricsServer(Metrics(), 0, lambda: {"ok": True}, site=LiveSite(root, lambda: live))
    yield f"http://127.0.0.1:{server.port}", root, events
    server.close()


def get(url: str, host: str | None = None, method: str = "GET") -> tuple[int, dict, bytes]:
    """One request with the target sent exactly as given (no client-side normalisation of dots)."""
    base, target = re.match(r"(http://[^/]+)(/.*)", url).groups()
    conn = http.client.HTTPConnection(base[len("http://"):], timeout=10)
    try:
        conn.putrequest(method, target, skip_host=host is not None, skip_accept_encoding=True)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


def get_json(url: str) -> tuple[int, dict]:
    status, _, body = get(url)
    return status, json.loads(body)


def test_the_api_answers_the_store_s_queries_in_pages(site):
    base, root, events = site
    newest_first = sorted(events, key=lambda e: e["wall_time"], reverse=True)
    status, page = get_json(f"{base}/api/events?limit=12")
    assert status == 200 and [e["event_id"] for e in page["items"]] == [e["event_id"] for e in newest_first[:12]]
    assert page["next"] == page["items"][-1]["cursor"]
    seen = [e["event_id"] for e in page["items"]]
    while page["next"]:
        page = get_json(f"{base}/api/events?limit=12&before={page['next']}")[1]
        seen += [e["event_id"] for e in page["items"]]
    assert seen == [e["event_id"] for e in newest_first] and page["next"] is None
    status, door = get_json(f"{base}/api/events?camera=door&since={T0 + 600}&until={iso(T0 + 1200)}")
    assert status == 200 and {e["camera"] for e in door["items"]} == {"door"} and len(door["items"]) == 6

    with EventQueries(root) as q:
        persons = q.persons()
        full = q.event(events[4]["event_id"])
    status, listed = get_json(f"{base}/api/persons")
    assert status == 200 and listed["items"] == persons and listed["next"] is None
    # Each person with its best face's components and reasons (what the page shows beneath it).
    assert all(p["components"]["inter_eye_px"] == 40.0 for p in listed["items"]) and any(p["best_face"] == ["blurred"] for p in listed["items"])
    # changed_since: only the persons seen since then, their figures over the whole range still.
    status, changed = get_json(f"{base}/api/persons?changed_since={T0 + 60 * 28}")
    assert status == 200 and changed["items"] == [p for p in persons if p["last_event"] >= iso(T0 + 60 * 28)] and len(changed["items"]) == 2
    one = persons[-1]
    status, person = get_json(f"{base}/api/persons/{one['person']}?limit=2")
    assert status == 200 and person["person"] == one and len(person["items"]) == 2 and person["next"] == person["items"][-1]["cursor"]
    assert all(v["person"] == one["person"] for v in person["items"])
    status, event = get_json(f"{base}/api/events/{events[4]['event_id']}")
    assert status == 200 and event == full

    # The cameras: the watch's live state joined with the store's; a camera only in the store is not watched.
    status, cameras = get_json(f"{base}/api/cameras")
    by_name = {c["camera"]: c for c in cameras["items"]}
    assert status == 200 and list(by_name) == ["door", "gate", "yard"]
    assert by_name["door"]["up"] and by_name["door"]["fps"] == 4.5 and by_name["door"]["events"] == 15 and by_name["door"]["watched"]
    assert by_name["door"]["last"]["event_id"] == newest_first[1]["event_id"] and by_name["door"]["last"]["image"].startswith("events/door/")
    assert not by_name["gate"]["up"] and by_name["gate"]["last_error"] == "Connection refused" and by_name["gate"]["events"] == 0
    assert not by_name["yard"]["watched"] and not by_name["yard"]["up"] and by_name["yard"]["persons"] == 3


@pytest.mark.parametrize("target, says", [
    ("/api/events?since=yesterday", "since:"),
    ("/api/events?until=2026-13-01", "until:"),
    ("/api/events?limit=0", "limit:"),
    ("/api/events?limit=1001", "limit:"),
    ("/api/events?limit=ten", "limit:"),
    ("/api/events?camera=../door", "camera:"),
    ("/api/events?person=-3", "person:"),
    ("/api/events?before=yesterday", "before:"),
    ("/api/events?camera=door&camera=yard", "camera: given twice"),
    ("/api/events?colour=red", "colour: not a parameter"),
    ("/api/events?since=%ff", "query:"),
    ("/api/persons?person=2", "person: not a parameter"),
    ("/api/persons?changed_since=soon", "changed_since:"),
    ("/api/persons?since=1e400", "since:"),
    ("/api/persons/abc", "person:"),
    ("/api/persons/0", "person:"),
    ("/api/persons/1?camera=door", "camera: not a parameter"),
    ("/api/events/..%2f..%2fsecret", "event:"),
    ("/api/cameras?limit=5", "limit: not a parameter"),
])
def test_bad_query_values_are_a_400_with_a_one_line_error(site, target, says):
    base, _, _ = site
    status, headers, body = get(base + target)
    error = json.loads(body)["error"]
    assert status == 400 and headers["Content-Type"] == "application/json" and error.startswith(says) and "\n" not in error, (target, error)


def test_what_is_not_there_is_a_404(site):
    base, _, _ = site
    for target in ("/api/persons/99999", "/api/events/door-9999", "/api/nothing", "/nothing", "/person/x"):
        status, _, body = get(base + target)
        assert status == 404, target


@pytest.mark.parametrize("target", [
    "/images/../secret.png",
    "/images/events/../secret.png",
    "/images/events/door/../../secret.png",
    "/images/events/%2e%2e/secret.png",
    "/images/%2e%2e%2fsecret.png",
    "/images/events%2f..%2f..%2fsecret.png",
    "/images/events/door/%2E%2E%2F%2E%2E%2Fsecret.png",
    "/images//etc/passwd",
    "/images/%2fetc%2fpasswd",
    "/images/events/..%5c..%5csecret.png",
    "/images/events/door/a%00.png",
    "/images/events/door/",
    "/images/C:%5cWindows%5cwin.ini",
    "/images/events/%252e%252e/secret.png",
    "/images/secret.png",
    "/images/events.sqlite",
    "/images/events",
    "/images/events/door",
    "/images/events/door/leak.png",
    "/images/events/outside/secret.png",
    "/images/events/door/door-0000/event.json",
    "/images/events/door/door-9998/r1_crop.png",
    "/images/events/%ff.png",
])
def test_no_path_outside_the_events_folder_can_be_asked_for(site, target):
    """``..`` however encoded, absolute paths, backslashes, NUL, links pointing out of the
    folder, folders (no listing), files that are not images: a 400 or a 404, never the file."""
    base, _, _ = site
    status, _, body = get(base + target)
    assert status in (400, 404) and SECRET not in body and b"root:" not in body, (target, status)
    assert "error" in json.loads(body)


def test_images_pages_and_hosts(site):
    base, root, events = site
    crop = events[3]["selected"][0]["crop"]
    status, headers, body = get(f"{base}/images/{crop}")
    assert status == 200 and headers["Content-Type"] == "image/png" and body == (root / crop).read_bytes()
    assert Image.open(io.BytesIO(body)).size == (16, 16)
    status, headers, body = get(f"{base}/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and '<base href="./">' in body.decode()
    assert "script-src 'self'" in headers["Content-Security-Policy"] and "http" not in body.decode().replace("http-equiv", "")
    status, _, body = get(f"{base}/person/3")
    assert status == 200 and '<base href="../">' in body.decode()
    for name, kind in (("page.js", "text/javascript"), ("page.css", "text/css")):
        status, headers, body = get(f"{base}/{name}")
        assert status == 200 and headers["Content-Type"].startswith(kind) and b"http://" not in body and b"https://" not in body
    status, headers, body = get(f"{base}/api/cameras", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
    # Another site's name resolved to 127.0.0.1 (DNS rebinding) gets nothing; the loopback names do.
    status, _, body = get(f"{base}/api/events", host="attacker.example:80")
    assert status == 403 and b"door" not in body
    assert get(f"{base}/api/events", host="localhost:8080")[0] == 200
    assert loopback("[::1]:9107") and loopback("127.0.0.1") and not loopback("127.0.0.1.attacker.example") and not loopback("[::2]:1")
    # /metrics and /health as before.
    assert get(f"{base}/health")[0] == 200 and get(f"{base}/metrics")[0] == 200


def test_without_a_store_the_lists_say_so(tmp_path):
    server = MetricsServer(Metrics(), 0, lambda: {"ok": True}, site=LiveSite(tmp_path, lambda: {"cam": {"up": True}}, store=False))
    try:
        base = f"http://127.0.0.1:{server.port}"
        status, body = get_json(f"{base}/api/events")
        assert status == 503 and "--no-store" in body["error"]
        status, body = get_json(f"{base}/api/cameras")
        assert status == 200 and body["items"][0]["camera"] == "cam" and body["items"][0]["events"] == 0
    finally:
        server.close()
    server = MetricsServer(Metrics(), 0, lambda: {"ok": True}, site=LiveSite(tmp_path))  # a store not created yet
    try:
        status, body = get_json(f"http://127.0.0.1:{server.port}/api/persons")
        assert status == 503 and "no event store yet" in body["error"]
    finally:
        server.close()


def test_frame_rates_over_the_last_seconds():
    counts = {"cam": 0.0}
    rates = FrameRates(lambda name: counts[name], window_s=10.0)
    rates.sample(["cam"], now=100.0)
    assert rates.rate("cam") is None and rates.rate("other") is None
    for t in range(101, 131):
        counts["cam"] += 5 if t <= 115 else 2
        rates.sample(["cam"], now=float(t))
    assert rates.rate("cam") == pytest.approx(2.0, abs=0.01)  # the last 10 s, not the average since the start


# ------------------------------------------------------------------------------ the page, live
def dump(chromium: str, url: str) -> str:
    """The page's DOM after it ran (Chromium's virtual time: its fetches and images finish first)."""
    return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120).stdout


def attribute(dom: str, name: str) -> str | None:
    match = re.search(rf'<body[^>]*\s{name}="([^"]*)"', dom)
    return match.group(1) if match else None


def cards(dom: str) -> list[tuple[str, str]]:
    """(person, camera) of every person card on the page."""
    return re.findall(r'<a class="card[^"]*"[^>]*data-person="(\d+)" data-camera="([^"]+)"', dom)


def test_the_page_shows_the_people_seen_during_a_replayed_camera_run(tmp_path, chromium):
    streams = []
    for name, clip in (("face", "liveportrait_d12.mp4"), ("drive", "tpsmm_driving.mp4")):
        path = tmp_path / f"{name}.toml"
        path.write_text(f'[stream]\nname = "{name}"\nurl = "{need(DATA / "videos" / clip)}"\nloop = true\nmax_track_s = 1.5\n')
        streams.append(path)
    out, port = tmp_path / "out", free_port()
    base = f"http://127.0.0.1:{port}"

    def persons() -> list[dict]:
        try:
            with urllib.request.urlopen(f"{base}/api/persons", timeout=5) as answer:
                return json.loads(answer.read())["items"]
        except OSError:
            return []

    with open(tmp_path / "watch.log", "w") as log:
        watcher = subprocess.Popen([sys.executable, "-m", "vidfiqa.cli", "watch", *map(str, streams), "-o", str(out), "--metrics-port", str(port),
                                    "--log-format", "json"], stderr=log, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            assert wait_for(lambda: {p["camera"] for p in persons()} == {"face", "drive"}, 120), (tmp_path / "watch.log").read_text()[-2000:]
            seen = persons()

            dom = dump(chromium, f"{base}/")
            assert attribute(dom, "data-ready") == "1" and attribute(dom, "data-error") is None, dom[-3000:]
            shown = cards(dom)
            assert {(str(p["person"]), p["camera"]) for p in seen} <= set(shown), (seen, shown)
            assert int(attribute(dom, "data-persons")) == len(shown) >= 2
            # Every image loaded (a face per person and each camera's last face): none broken.
            images, loaded = int(attribute(dom, "data-images")), int(attribute(dom, "data-images-loaded"))
            assert attribute(dom, "data-images-broken") == "0" and images == loaded >= len(shown) + 2, (images, loaded)
            assert dom.count('data-loaded="1"') == loaded
            for camera in ("face", "drive"):  # each camera's state: up, analysed frames per second
                tile = re.search(rf'<a class="camera ([a-z]+)[^"]*"[^>]*data-camera="{camera}" data-up="(\d)"', dom)
                assert tile and tile.groups() == ("up", "1"), camera
            assert re.search(r"<b>\d+\.\d</b> frames/s analysed", dom)

            # A camera filter in the URL: only that camera's people.
            drive = dump(chromium, f"{base}/?camera=drive")
            assert attribute(drive, "data-ready") == "1" and {c for _, c in cards(drive)} == {"drive"}
            assert attribute(drive, "data-images-broken") == "0"

            # A person's page: every visit, with its picks' images.
            person = next(p for p in seen if p["camera"] == "face")
            page = dump(chromium, f"{base}/person/{person['person']}")
            visits = re.findall(r'<div class="visit[^"]*" data-event="([^"]+)" data-camera="face"', page)
            assert len(visits) == int(attribute(page, "data-visits")) >= person["visits"] >= 1
            assert attribute(page, "data-images-broken") == "0" and int(attribute(page, "data-images-loaded")) >= 2 * len(visits)

            # A bad value in the URL: the API's one-line error on the page.
            bad = dump(chromium, f"{base}/?since=yesterday")
            assert (attribute(bad, "data-error") or "").startswith("since: 'yesterday' is not a time")
        finally:
            watcher.send_signal(signal.SIGTERM)
            try:
                watcher.wait(timeout=60)
            finally:
                if watcher.poll() is None:
                    watcher.kill()
    assert watcher.returncode == 0, (tmp_path / "watch.log").read_text()[-2000:]
