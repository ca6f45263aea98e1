"""`vidfiqa watch` on two-stream cameras: the substream analysed, the picks cut from the main
stream (vidfiqa/live/main_ring.py, vidfiqa/select/recut.py): from two local files, over RTSP with
two mounts of the GStreamer test server, with a bounded ring, a main stream that dies, SIGTERM."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import Broker, LogLines, RtspServer, events_of, free_port, mqtt_listener, needs_rtsp, signalled_watch, street_crowd_camera, wait_for
from vidfiqa.live.config import load_stream
from vidfiqa.live.watch import Logger, Watcher
from vidfiqa.sinks import WatchOutputs

@pytest.fixture(scope="module")
def camera(tmp_path_factory) -> dict[str, Path]:
    """One camera's substream (640x360) and main stream (1280x720): 4 plays of the crowd, 17 s."""
    root = tmp_path_factory.mktemp("two_streams")
    return {"sub": street_crowd_camera(root / "sub.mp4", 640, 360, repeats=4, crf=23),
            "main": street_crowd_camera(root / "main.mp4", 1280, 720, repeats=4, crf=23)}


def stream_file(tmp_path: Path, url: str, main_url: str, **extra) -> Path:
    keys = {"name": "cam", "url": url, "main_url": main_url, "read_timeout_s": 3.0, "open_timeout_s": 5.0, "reconnect_min_s": 0.3,
            "reconnect_max_s": 2.0, "max_track_s": 2.0, **extra}
    lines = ["[stream]", *(f"{k} = {json.dumps(v)}" for k, v in keys.items())]
    path = tmp_path / "cam.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def watch(tmp_path: Path, path: Path, seconds: float, during=None, outputs: WatchOutputs | None = None) -> tuple[Watcher, list]:
    """A Watcher of one stream file for ``seconds`` (``during(watcher)`` runs meanwhile)."""
    lines: list = []
    watcher = Watcher([load_stream(path)], tmp_path / "out", outputs or WatchOutputs(), log=Logger("json", stream=LogLines(lines)))
    thread = threading.Thread(target=watcher.run, args=(seconds,), daemon=True)
    thread.start()
    try:
        if during is not None:
            during(watcher)
    finally:
        thread.join(seconds + 60)
    assert not thread.is_alive()
    return watcher, lines


def picks(out: Path) -> list[dict]:
    return [p for e in events_of(out) for p in e["selected"]]


def check_main_picks(out: Path, share: float) -> list[dict]:
    """At least ``share`` of the events' picks cut from the main stream, each within a frame of
    the pick and twice the analysed face's size, its native face image written."""
    chosen = picks(out)
    main = [p for p in chosen if p["source"]["stream"] == "main"]
    assert chosen and len(main) >= share * len(chosen), [p["source"] for p in chosen if p["source"]["stream"] != "main"]
    for pick in main:
        source = pick["source"]
        assert source["size"] == [1280, 720] and abs(source["frame_offset"]) <= 1 and abs(source["time_error_s"]) <= 0.06, source
        face = cv2.imread(str(out / pick["face"]))
        # twice the pixels of the analysed face (the main detector draws its box a little tighter or looser)
        assert face is not None and face.shape[0] >= 1.6 * 1.5 * (pick["bbox"][2] - pick["bbox"][0]), (face.shape, pick["bbox"])
        assert cv2.imread(str(out / pick["crop"])).shape == (112, 112, 3)
    return main


def test_a_two_file_camera_cuts_its_picks_from_the_main_file(camera, tmp_path, mosquitto):
    """Events carry the main stream's images, and so does MQTT: the snapshot is the face at the
    main frame's resolution (a real mosquitto)."""
    port = free_port()
    broker = Broker(mosquitto, port, tmp_path).start()
    listener, received = mqtt_listener(port, "vidfiqa/cam/snapshot")
    try:
        watcher, lines = watch(tmp_path, stream_file(tmp_path, str(camera["sub"]), str(camera["main"]), loop=True), 14,
                               outputs=WatchOutputs(mqtt_url=f"mqtt://127.0.0.1:{port}"))
    finally:
        listener.loop_stop()
        broker.stop()
    out = tmp_path / "out"
    check_main_picks(out, 0.9)
    # Each snapshot is an event's best pick as the native-resolution face from the main stream
    # (not the 112x112 aligned crop of the substream).
    faces = {(out / e["selected"][0]["face"]).read_bytes() for e in events_of(out) if e["selected"] and "face" in e["selected"][0]}
    snapshots = [payload for _, payload, _ in received]
    assert snapshots and all(payload in faces for payload in snapshots), len(snapshots)
    assert any(cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR).shape[0] > 112 for payload in snapshots)
    summary = json.loads((out / "watch_summary.json").read_text())["streams"]["cam"]["main_stream"]
    assert summary["from_main"] >= 0.9 * summary["picks"] and summary["sync_error_s"]["median"] <= 0.02, summary
    assert watcher.metrics.get("vidfiqa_main_picks_total", stream="cam", source="main", reason="") == summary["from_main"]


@needs_rtsp
def test_a_two_stream_rtsp_camera_cuts_its_picks_from_the_main_mount(camera, tmp_path):
    """The same over RTSP: /cam and /main of one server, each its own RTP session with RTCP
    sender reports; the summary says how the streams were lined up and what it measured."""
    server = RtspServer(camera["sub"], free_port(), main=camera["main"]).start()
    try:
        watcher, lines = watch(tmp_path, stream_file(tmp_path, server.url, server.main_url), 15)
    finally:
        server.kill()
    out = tmp_path / "out"
    check_main_picks(out, 0.9)
    summary = json.loads((out / "watch_summary.json").read_text())["streams"]["cam"]["main_stream"]
    assert summary["sync"] in ("rtcp", "arrival") and summary["sync_error_s"]["p95"] <= 0.06, summary
    assert "hunter2" not in summary["url"] and "hunter2" not in "".join(lines)


def test_the_main_ring_stays_within_its_bounds(camera, tmp_path):
    """Over a long replay the ring holds at most main_ring_s seconds and main_ring_mb MiB
    (sampled from /metrics' gauges while it runs), evicting whole GOPs, and recent picks still
    come from it."""
    samples: list[tuple[float, float]] = []

    def sample(watcher):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            samples.append((watcher.metrics.get("vidfiqa_main_ring_seconds", stream="cam"), watcher.metrics.get("vidfiqa_main_ring_bytes", stream="cam")))
            time.sleep(0.25)

    path = stream_file(tmp_path, str(camera["sub"]), str(camera["main"]), loop=True, main_ring_s=3.0, main_ring_mb=1.5)
    watcher, _ = watch(tmp_path, path, 21, during=sample)
    assert max(s for s, _ in samples) <= 3.0 and max(b for _, b in samples) <= 1.5 * 2**20, max(samples)
    assert max(b for _, b in samples) > 0.2 * 2**20  # it did hold the stream
    assert watcher.metrics.get("vidfiqa_main_packets_evicted_total", stream="cam") > 100
    # Picks the short ring still held are cut from it; the others say the ring had let them go.
    check_main_picks(tmp_path / "out", 0.5)
    fallen = [p["source"]["reason"] for p in picks(tmp_path / "out") if p["source"]["stream"] == "analysed"]
    assert all(reason == "older than the main stream's ring (3 s, 1.5 MiB)" for reason in fallen), fallen


@needs_rtsp
def test_a_main_stream_that_dies_falls_back_to_the_analysed_frames(camera, tmp_path):
    """The main stream's server killed mid-run (the substream's goes on): later picks keep the
    analysed images, say why, and are counted; events keep coming."""
    sub, main = RtspServer(camera["sub"], free_port()).start(), RtspServer(camera["main"], free_port()).start()

    def kill_main(watcher):
        assert wait_for(lambda: watcher.metrics.get("vidfiqa_main_picks_total", stream="cam", source="main", reason="") >= 2, 12)
        main.kill()

    try:
        watcher, lines = watch(tmp_path, stream_file(tmp_path, sub.url, main.url), 15, during=kill_main)
    finally:
        sub.kill()
        main.kill()
    chosen = picks(tmp_path / "out")
    fallen = [p for p in chosen if p["source"]["stream"] == "analysed"]
    assert fallen and any(p["source"]["stream"] == "main" for p in chosen)
    assert all("face" not in p and p["source"]["reason"] for p in fallen)
    counted = sum(v for (name, labels), v in watcher.metrics.snapshot().items()
                  if name == "vidfiqa_main_picks_total" and ("source", "analysed") in labels)
    assert counted == len(fallen) and "main stream reconnecting" in "".join(lines)


def test_sigterm_emits_every_open_track_with_its_main_stream_picks(camera, tmp_path):
    path = stream_file(tmp_path, str(camera["sub"]), str(camera["main"]), loop=True, max_track_s=60.0)
    out = tmp_path / "out"
    code, log, stop_s = signalled_watch(path, out, [signal.SIGTERM], seen_s=3)
    assert code == 0, log
    shutdown = [e for e in events_of(out) if e["ended"] == "shutdown" and e["selected"]]
    assert shutdown and stop_s < 8, (stop_s, log[-2000:])
    assert all(p["source"]["stream"] == "main" for e in shutdown for p in e["selected"]), [p["source"] for e in shutdown for p in e["selected"]]
