"""`vidfiqa watch` against a real RTSP server (GStreamer's, started here on 127.0.0.1): it
reconnects after the server dies, notices a stalled stream, is not held up by a hanging webhook,
and flushes open tracks on SIGTERM.  Plus stream-file validation and credential redaction."""

from __future__ import annotations

import dataclasses
import http.server
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import REPO, Broker, LogLines, RtspServer, events_of, free_port, mqtt_listener, needs_rtsp, signalled_watch, small_disk, wait_for
from vidfiqa.errors import ConfigError
from vidfiqa.faces import Faces, object_column
from vidfiqa.live.config import load_stream
from vidfiqa.sinks import Retention, WatchOutputs
from vidfiqa.redact import redact_text, redact_url
from vidfiqa.select import QualitySeries, TrackResult
from vidfiqa.live.watch import Logger, Watcher

SAMPLE = REPO / "samples" / "astronaut.mp4"
@pytest.fixture(scope="module")
def people_clip(tmp_path_factory) -> Path:
    """The sample clip's face for 8 s, then 2 s without anyone, six times (60 s): a person
    arrives and leaves every 10 s, so tracks end and events fire while the stream goes on."""
    path = tmp_path_factory.mktemp("rtsp") / "people.mp4"
    with av.open(str(SAMPLE)) as src:
        frames = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
    empty = cv2.GaussianBlur(frames[0], (0, 0), 40)
    with av.open(str(path), "w") as dst:
        stream = dst.add_stream("libx264", rate=15, options={"preset": "ultrafast", "crf": "28", "g": "15"})
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for _ in range(6):
            for image in frames + [empty] * 30:
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return path


@pytest.fixture(scope="module")
def small_clip(people_clip, tmp_path_factory) -> Path:
    """The same clip at 320x240: what the camera sends after it comes back in another mode."""
    path = tmp_path_factory.mktemp("rtsp") / "people_small.mp4"
    with av.open(str(people_clip)) as src, av.open(str(path), "w") as dst:
        stream = dst.add_stream("libx264", rate=15, options={"preset": "ultrafast", "crf": "28", "g": "15"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for frame in src.decode(video=0):
            small = cv2.resize(frame.to_ndarray(format="rgb24"), (320, 240), interpolation=cv2.INTER_AREA)
            for packet in stream.encode(av.VideoFrame.from_ndarray(small, format="rgb24")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return path


@pytest.fixture
def rtsp(people_clip):
    server = RtspServer(people_clip, free_port()).start()
    yield server
    server.kill()


def stream_file(tmp_path: Path, url: str, **extra) -> Path:
    lines = ["[stream]", 'name = "cam"', f'url = "{url}"', "read_timeout_s = 2.0", "open_timeout_s = 3.0",
             "reconnect_min_s = 0.3", "reconnect_max_s = 2.0"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    path = tmp_path / "cam.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def watcher_for(tmp_path: Path, url: str, log_lines: list, max_track_s: float | None = None, stream: dict | None = None,
                **kwargs) -> Watcher:
    """A Watcher of one stream file (``stream``: extra keys for it); its log lines go to ``log_lines``."""
    extra = {**({"max_track_s": max_track_s} if max_track_s else {}), **(stream or {})}
    cfg = load_stream(stream_file(tmp_path, url, **extra))
    outputs = {key: kwargs.pop(key) for key in list(kwargs) if key.startswith(("webhook_", "mqtt_"))}
    return Watcher([cfg], tmp_path / "out", WatchOutputs(**outputs), log=Logger("json", stream=LogLines(log_lines)), **kwargs)


def run_in_thread(watcher: Watcher, seconds: float) -> threading.Thread:
    thread = threading.Thread(target=watcher.run, args=(seconds,), daemon=True)
    thread.start()
    return thread


# ------------------------------------------------------------------------ configuration
def test_stream_files_are_validated_with_file_and_field(tmp_path):
    good = stream_file(tmp_path, "rtsp://u:p@127.0.0.1:8554/x", top_k=2, fps_cap=5)
    cfg = load_stream(good)
    assert cfg.settings.top_k == 2 and cfg.fps_cap == 5.0  # a pipeline key may sit in [stream]
    bad = tmp_path / "bad.toml"
    cases = {
        '[stream]\nname = "a"\nurl = "rtsp://h/x"\nreconect_max_s = 3\n': "reconect_max_s",
        '[stream]\nname = "a"\nurl = "ftp://h/x"\n': "url",
        '[stream]\nname = "a"\nurl = "rtsp:///x"\n': "url",
        '[stream]\nname = "a b"\nurl = "rtsp://h/x"\n': "name",
        '[stream]\nname = "a"\nurl = "rtsp://h/x"\ntransport = "sctp"\n': "transport",
        '[stream]\nname = "a"\nurl = "rtsp://h/x"\n[pipeline]\ntop_k = 0\n': "top_k",
        '[stream]\nname = "a"\nurl = "rtsp://h/x"\nread_timeout_s = "soon"\n': "read_timeout_s",
        '[stream]\nname = "a"\n': "url",
        '[camera]\nname = "a"\n': "camera",
        # A malformed URL was "internal error: ValueError: Invalid IPv6 URL" and stopped every camera.
        '[stream]\nname = "a"\nurl = "rtsp://user:pw@[127.0.0.1:8554/cam"\n': "not a valid URL",
        '[stream]\nname = "a"\nurl = "rtsp://127.0.0.1:99999/cam"\n': "url",  # was retried forever
        '[stream]\nname = "a"\nurl = "rtsp://127.0.0.1:0/cam"\n': "1-65535",
        f'[stream]\nname = "{"c" * 240}"\nurl = "rtsp://h/x"\n': "at most 64",  # every event failed: File name too long
        '[stream]\nname = "kamera\u00e4"\nurl = "rtsp://h/x"\n': "ASCII",
    }
    for text, field in cases.items():
        bad.write_text(text)
        with pytest.raises(ConfigError) as err:
            load_stream(bad)
        assert str(bad) in str(err.value) and field in str(err.value), str(err.value)
        assert "pw@" not in str(err.value)


def test_every_bundled_stream_example_loads(monkeypatch):
    monkeypatch.chdir(REPO)  # replay.toml's url is relative to the repository
    for path in sorted((REPO / "streams").glob("*.toml")):
        cfg = load_stream(path)
        assert cfg.name == path.stem


def test_credentials_are_redacted():
    url = "rtsp://admin:s3cr3t@10.0.0.5:554/live?token=abc&channel=1"
    assert redact_url(url) == "rtsp://***@10.0.0.5:554/live?token=***&channel=1"
    assert "s3cr3t" not in redact_text(f"{url}: Connection refused (s3cr3t)", url)


def test_cli_bad_configuration_is_one_line(tmp_path):
    bad = tmp_path / "x.toml"
    bad.write_text('[stream]\nname = "x"\nurl = "rtsp://127.0.0.1:1/x"\nbogus = 1\n')
    result = subprocess.run([sys.executable, "-m", "vidfiqa.cli", "watch", str(bad), "-o", str(tmp_path / "o")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "bogus" in result.stderr.strip().splitlines()[-1] and str(bad) in result.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        good = stream_file(tmp_path, "rtsp://127.0.0.1:1/x")
        result = subprocess.run([sys.executable, "-m", "vidfiqa.cli", "watch", str(good), "-o", str(tmp_path / "o"), "--metrics-port", str(port)],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and f"--metrics-port {port}" in result.stderr.strip().splitlines()[-1]
    # Bad files among good ones - an unknown key, a malformed URL - are reported and skipped, and
    # the good stream runs (a replayed clip, analysed at the default 5 frames a second).
    replay = tmp_path / "replay.toml"
    replay.write_text(f'[stream]\nname = "replay"\nurl = "{SAMPLE}"\nloop = true\n')
    malformed = tmp_path / "malformed.toml"
    malformed.write_text('[stream]\nname = "cam"\nurl = "rtsp://user:pw5ecret@[127.0.0.1:8554/cam"\n')
    result = subprocess.run([sys.executable, "-m", "vidfiqa.cli", "watch", str(bad), str(malformed), str(replay), "-o", str(tmp_path / "o2"),
                             "--no-metrics", "--duration", "10"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "bogus" in result.stderr and "skipped" in result.stderr and "not a valid URL" in result.stderr
    assert "internal error" not in result.stderr and "pw5ecret" not in result.stderr
    summary = json.loads((tmp_path / "o2" / "watch_summary.json").read_text())
    assert list(summary["streams"]) == ["replay"] and summary["streams"]["replay"]["frames_processed"] > 30


# ------------------------------------------------------------------------ a real RTSP server
@needs_rtsp
def test_reconnects_after_the_server_restarts_and_keeps_emitting(rtsp, small_clip, tmp_path):
    logs: list[str] = []
    watcher = watcher_for(tmp_path, rtsp.url, logs, metrics_port=0)
    thread = run_in_thread(watcher, 90)
    m = watcher.metrics
    assert wait_for(lambda: len(events_of(tmp_path / "out")) >= 1, 30), "an event within 30 s (a person leaves every 10 s)"
    health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{watcher.server.port}/health", timeout=5).read())
    assert health["ok"] and health["streams"]["cam"]["up"]
    rtsp.kill()
    killed_at = time.time()
    assert wait_for(lambda: m.get("vidfiqa_stream_up", stream="cam") == 0.0, 15)
    time.sleep(3)
    rtsp.clip = small_clip  # the camera comes back at another resolution
    rtsp.start()
    assert wait_for(lambda: m.get("vidfiqa_stream_up", stream="cam") == 1.0, 30), "reconnected after the restart"
    assert wait_for(lambda: any(e["wall_time"] > _iso(killed_at + 3) and e["ended"] != "stream_lost" for e in events_of(tmp_path / "out")), 40), \
        "events keep coming after the restart"
    metrics_text = urllib.request.urlopen(f"http://127.0.0.1:{watcher.server.port}/metrics", timeout=5).read().decode()
    # After the recovery /health still says what went wrong, and when, and that the stream is up now.
    recovered = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{watcher.server.port}/health", timeout=5).read())["streams"]["cam"]
    assert recovered["up"] and recovered["worker_up"] and recovered["last_error"]
    assert _iso(killed_at - 1) < recovered["last_error_at"] < _iso(time.time() + 1), recovered
    watcher.stop.set()
    thread.join(60)
    assert m.get("vidfiqa_reconnects_total", stream="cam") >= 1
    assert any('"resolution changed"' in line for line in logs)
    late = [e for e in events_of(tmp_path / "out") if e["wall_time"] > _iso(killed_at + 3)]
    assert any(max(s["bbox"][2] for s in e["selected"]) <= 320 for e in late), "events from the 320x240 stream"
    assert 'vidfiqa_frames_decoded_total{stream="cam"}' in metrics_text and "vidfiqa_queue_depth" in metrics_text
    everything = "".join(logs) + (tmp_path / "out" / "events.jsonl").read_text() + (tmp_path / "out" / "watch_summary.json").read_text()
    assert "hunter2" not in everything and "viewer" not in everything, "credentials leaked"
    event = events_of(tmp_path / "out")[0]
    assert event["stream"] == "cam" and event["selected"] and (tmp_path / "out" / event["selected"][0]["crop"]).is_file()


@needs_rtsp
def test_a_stalled_stream_is_detected_and_reopened(rtsp, tmp_path):
    logs: list[str] = []
    watcher = watcher_for(tmp_path, rtsp.url, logs)
    thread = run_in_thread(watcher, 60)
    m = watcher.metrics
    assert wait_for(lambda: m.get("vidfiqa_frames_decoded_total", stream="cam") > 15, 20)
    rtsp.process.send_signal(signal.SIGSTOP)  # connected, but no more data
    try:
        assert wait_for(lambda: m.get("vidfiqa_stalls_total", stream="cam") >= 1, 15), "stall noticed within read_timeout_s + margin"
        assert m.get("vidfiqa_stream_up", stream="cam") == 0.0
    finally:
        rtsp.process.send_signal(signal.SIGCONT)
    before = m.get("vidfiqa_frames_decoded_total", stream="cam")
    assert wait_for(lambda: m.get("vidfiqa_frames_decoded_total", stream="cam") > before + 15, 40), "frames flow again"
    watcher.stop.set()
    thread.join(60)
    assert any("stalled" in line for line in logs)


@needs_rtsp
def test_a_hanging_webhook_does_not_stall_decoding(rtsp, tmp_path):
    received, hang = [], threading.Event()

    class Hanging(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            hang.wait(30)  # never answers in time

        def log_message(self, *args):
            pass

    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hanging)
    hook.daemon_threads = True
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    logs: list[str] = []
    watcher = watcher_for(tmp_path, rtsp.url, logs, webhook_url=f"http://127.0.0.1:{hook.server_address[1]}/events", webhook_timeout_s=1.0,
                          max_track_s=3.0)
    thread = run_in_thread(watcher, 60)
    m = watcher.metrics
    try:
        assert wait_for(lambda: len(events_of(tmp_path / "out")) >= 2, 40)
        t0, f0 = time.monotonic(), m.get("vidfiqa_frames_decoded_total", stream="cam")
        time.sleep(5)
        rate = (m.get("vidfiqa_frames_decoded_total", stream="cam") - f0) / (time.monotonic() - t0)
        assert rate > 10, f"decoding runs at the stream's 15 fps while the webhook hangs (got {rate:.1f})"
        assert received, "the webhook was called"
        # A worker blocked by the webhook would drop nearly every frame; one that goes on drops only
        # what a slow moment of a 2-core machine costs with a 4-frame queue (measured up to 25 %).
        dropped = m.get("vidfiqa_frames_dropped_total", stream="cam", reason="overload")
        assert dropped < 0.5 * m.get("vidfiqa_frames_decoded_total", stream="cam"), dropped
    finally:
        watcher.stop.set()
        hang.set()
        thread.join(60)
        hook.shutdown()
    assert m.get("vidfiqa_webhook_failures_total") >= 1
    # max_track_s = 3: the 8-second visits were emitted in segments, numbered per track
    events = events_of(tmp_path / "out")
    split = [e for e in events if e["ended"] == "max_duration"]
    assert split and any(e["segment"] >= 2 and e["track_id"] == split[0]["track_id"] for e in events)


@needs_rtsp
def test_sigterm_flushes_open_tracks(rtsp, tmp_path):
    out = tmp_path / "out"
    # The face is on screen from the start of the clip: stop once it has been seen a while.
    code, log, _ = signalled_watch(stream_file(tmp_path, rtsp.url), out, [signal.SIGTERM], seen_s=4)
    assert code == 0, log
    events = events_of(out)
    assert any(e["ended"] == "shutdown" and e["selected"] for e in events), events
    summary = json.loads((out / "watch_summary.json").read_text())
    assert summary["streams"]["cam"]["events"] == len(events)
    assert "hunter2" not in log


@needs_rtsp
def test_run_on_a_stream_that_dies_says_so(rtsp, tmp_path):
    """`vidfiqa run rtsp://...` whose server is killed mid-stream exited 0 with status
    "complete" and no warning, though README promises both for a stream that dies.  Now the
    gallery of what came before is kept, its status says stopped_early and why, and the command
    warns on stderr."""
    out = tmp_path / "g"
    process = subprocess.Popen([sys.executable, "-m", "vidfiqa.cli", "run", rtsp.url, "-o", str(out), "-q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert wait_for(lambda: (out / "manifest.json").is_file() or process.poll() is not None, 60)
        time.sleep(6)  # a person has come and gone: a track is written
        assert process.poll() is None, "the run ended before the server was killed"
        rtsp.kill()
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "stopped_early", manifest["status"]
    assert "hunter2" not in err and "hunter2" not in json.dumps(manifest)
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "stream" in warning[0] and warning[0].removeprefix("warning: ") in manifest["message"], err
    assert manifest["stats"]["frames_processed"] > 10 and manifest["tracks"], manifest["stats"]
    assert process.returncode == 0, err  # the gallery of what was seen is the result


def _iso(wall: float) -> str:
    from vidfiqa.export.entries import iso

    return iso(wall)


def test_frame_queue_drops_oldest_frames_but_keeps_markers():
    from vidfiqa.live.stream import Connected, FrameQueue

    q = FrameQueue(3, overload_size=3)  # never shrinks: the plain drop-oldest rule
    q.put(Connected(10, 10, 1, 25.0))
    dropped = [q.put(i) for i in range(10)]
    assert dropped == [0, 0, 0] + [1] * 7 and q.dropped == 7 and len(q) == 4
    items = [q.get(0.01) for _ in range(4)]
    assert isinstance(items[0], Connected) and items[1:] == [7, 8, 9]
    assert q.get(0.01) is None


def test_frame_queue_absorbs_a_burst_but_keeps_only_the_newest_under_sustained_overload():
    from vidfiqa.live.stream import FrameQueue

    q = FrameQueue(8, overload_size=2)
    # A burst: 10 frames arrive while the analysis is busy, 2 are dropped, 8 wait.
    assert sum(q.put(i) for i in range(10)) == 2 and len(q) == 8 and q.limit == 8
    # Sustained: every put keeps dropping; after 8 such puts in a row the queue holds 2 frames.
    dropped = [q.put(i) for i in range(10, 16)]
    assert dropped == [1] * 5 + [7] and len(q) == 2 and q.limit == 2
    assert [q.get(0.01), q.get(0.01)] == [14, 15]
    assert q.dropped == 2 + 5 + 7
    # The analysis caught up (found the queue empty): the full depth is back.
    assert q.get(0.01) is None and q.limit == 8
    assert sum(q.put(i) for i in range(8)) == 0 and len(q) == 8


def _result(track_id: int) -> TrackResult:
    """A finished five-detection track with one chosen frame."""
    n = 5
    series = QualitySeries(frame_index=np.arange(n), pts=np.linspace(0, 1, n), quality=np.full(n, 0.5), quality_smoothed=np.full(n, 0.5),
                           detector_score=np.full(n, 0.9), boxes=np.tile([10.0, 10, 60, 60], (n, 1)))
    crop = np.zeros((1, 112, 112, 3), np.uint8)
    chosen = Faces.create([[10, 10, 60, 60]], np.zeros((1, 5, 2)), [0.9], frame_index=3, timestamp=0.5, track_id=track_id,
                          crops=crop, quality=[0.5], embeddings=np.ones((1, 4)), context=object_column([crop[0]]))
    return TrackResult(track_id=track_id, ended="lost", series=series, chosen=chosen, chosen_smoothed=np.array([0.5]))


def test_rolling_gallery_keeps_the_newest_events(tmp_path):
    from vidfiqa.export.entries import event_record
    from vidfiqa.select import TrackRecord
    from vidfiqa.sinks import EventFolderSink, EventLogSink
    from vidfiqa.sinks.outbox import EventNamer

    folders, log, namer = EventFolderSink(tmp_path, Retention(keep_count=3, keep_days=None, keep_mb=None)), EventLogSink(tmp_path), EventNamer(tmp_path)
    for track in range(1, 7):
        record = namer(TrackRecord(_result(track), stream="cam", wall_start=1e9))
        folders.emit(record)
        log.emit(record)
        event = event_record(record)
        assert event["selected"][0]["frame_index"] == 3 and (tmp_path / event["selected"][0]["crop"]).is_file()
    kept = sorted(p.name for p in (tmp_path / "events" / "cam").iterdir())
    assert len(kept) == 3 and all(name.endswith(("0004-1", "0005-1", "0006-1")) for name in kept)
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 6  # the log keeps every event


def test_a_person_who_comes_back_keeps_their_person_id(tmp_path):
    """The bundled sample replayed as a camera: every loop the astronaut leaves (the clip jumps
    back to its start: a cut) and comes back within person_memory_s, so every event names the
    same person.  (Forgetting after person_memory_s is tested on PersonMemory itself, in
    tests/select/test_persons.py.)"""
    sample = REPO / "samples" / "astronaut.mp4"
    path = tmp_path / "cam.toml"
    path.write_text(f'[stream]\nname = "cam"\nurl = "{sample}"\nloop = true\nperson_memory_s = 600\n')
    watcher = Watcher([load_stream(path)], tmp_path / "out", WatchOutputs(), log=Logger("json", stream=open(tmp_path / "log", "w")))
    watcher.run(duration_s=17.0)  # two plays of the 8 s clip and the start of a third
    events = [e for e in events_of(tmp_path / "out") if e["selected"]]
    assert len(events) >= 2, events
    persons = [e["person_id"] for e in events]
    assert all(isinstance(p, int) for p in persons) and len(set(persons)) == 1, persons


def test_a_watch_refuses_a_folder_another_run_holds(tmp_path):
    """`watch` holds its output folder like `run` (vidfiqa/folder_lock.py): a second watcher
    into it is refused before it writes anything, and the folder is free once the first ends."""
    from vidfiqa.folder_lock import FolderInUse

    path = tmp_path / "cam.toml"
    path.write_text(f'[stream]\nname = "cam"\nurl = "{REPO / "samples" / "astronaut.mp4"}"\n')
    cfg, out = load_stream(path), tmp_path / "out"
    first = Watcher([cfg], out, WatchOutputs(), log=Logger("json", stream=open(tmp_path / "log1", "w")))
    with pytest.raises(FolderInUse, match="watch output folder .* is in use by another vidfiqa run"):
        Watcher([cfg], out, WatchOutputs(), log=Logger("json", stream=open(tmp_path / "log2", "w")))
    first.run(duration_s=30.0)  # the clip ends first
    assert (out / "watch_summary.json").is_file()
    second = Watcher([cfg], out, WatchOutputs(), log=Logger("json", stream=open(tmp_path / "log3", "w")))
    second.lock.release()


def test_a_silent_metrics_connection_is_closed():
    """A client that connects to /metrics and sends nothing held a server thread forever (400 of
    them, 400 threads).  Now its socket times out; scrapes meanwhile are answered."""
    from vidfiqa.live.metrics import Metrics, MetricsServer

    server = MetricsServer(Metrics(), 0, lambda: {"ok": True}, idle_timeout_s=1.0)
    try:
        silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health", timeout=5) as answer:
            assert json.loads(answer.read()) == {"ok": True}
        started = time.monotonic()
        for conn in silent:
            conn.settimeout(10)
            assert conn.recv(1) == b"", "the server closed the idle connection"
            conn.close()
        assert time.monotonic() - started < 4
    finally:
        server.close()


def test_the_reconnect_delay_never_exceeds_its_maximum():
    """The +-25 % jitter never takes a delay past the cap: with the largest jitter a delay of 8 s
    doubled stays 8 s (it was 9.77 s with reconnect_max_s = 8), and early retries still back off."""
    from vidfiqa.live.stream import reconnect_delay

    largest, smallest = (lambda a, b: b), (lambda a, b: a)
    assert [reconnect_delay(k, 0.5, 8.0, largest) for k in range(1, 8)] == [0.625, 1.25, 2.5, 5.0, 8.0, 8.0, 8.0]
    assert [reconnect_delay(k, 0.5, 8.0, smallest) for k in range(1, 7)] == [0.375, 0.75, 1.5, 3.0, 6.0, 6.0]
    assert max(reconnect_delay(k, 0.5, 8.0) for k in range(1, 12) for _ in range(200)) <= 8.0
    # At the cap the delay still spreads (75-100 % of it): it was exactly 8.0 for every camera.
    capped = [reconnect_delay(12, 0.5, 8.0) for _ in range(400)]
    assert min(capped) >= 6.0 and min(capped) < 6.5 and max(capped) > 7.5 and len(set(capped)) > 300


def test_webhook_sends_basic_auth_from_the_url_and_a_header_from_the_environment(monkeypatch):
    """A webhook URL with user:password@ used to be looked up as the host 'user:password@host'
    and never delivered.  A real local HTTP receiver checks the Authorization header; a token
    header comes from an environment variable; the password reaches no log line."""
    import base64

    from vidfiqa.sinks.webhook import WebhookSink, header_from_env
    from vidfiqa.live.metrics import Metrics

    received: list[dict] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "auth": self.headers.get("Authorization"), "token": self.headers.get("X-Token"),
                             "event": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    logged: list[str] = []
    monkeypatch.setenv("HOOK_TOKEN_HEADER", "X-Token: t0ken-123")
    try:
        sink = WebhookSink(f"http://hookuser:wh5ecret@127.0.0.1:{port}/hook?x=1", Metrics(), timeout_s=5, retries=1,
                           log=lambda *a, **k: logged.append(repr((a, k))), headers=header_from_env("HOOK_TOKEN_HEADER"))
        sink.put({"event_id": "e1"})
        sink.close()
        failing = WebhookSink(f"http://hookuser:wh5ecret@127.0.0.1:{port}/hook", Metrics(), timeout_s=5, retries=1,
                              log=lambda *a, **k: logged.append(repr((a, k))))
        server.shutdown()
        server.server_close()
        failing.put({"event_id": "e2"})  # nobody listens any more: the failure is logged
        failing.close()
    finally:
        server.shutdown()
    assert sink.delivered == 1 and len(received) == 1
    assert received[0]["path"] == "/hook?x=1" and received[0]["event"] == {"event_id": "e1"}
    assert received[0]["auth"] == "Basic " + base64.b64encode(b"hookuser:wh5ecret").decode()
    assert received[0]["token"] == "t0ken-123"
    assert failing.delivered == 0 and logged and not any("wh5ecret" in line for line in logged), logged
    monkeypatch.setenv("HOOK_TOKEN_HEADER", "no colon here")
    with pytest.raises(ConfigError, match="Name: value"):
        header_from_env("HOOK_TOKEN_HEADER")


def test_a_full_disk_delays_events_and_a_failing_analysis_restarts(people_clip, tmp_path, monkeypatch):
    """Watching into a full disk used to kill the camera's worker for good after one
    `[Errno 28]`, while /health said ok and empty event folders stayed behind.  Now the events
    wait and are retried with backoff, /health says so, and when space is freed they are written
    (no event lost, nothing half-written left); an analysis that fails restarts.  On a real
    tmpfs filled to the last block where the machine allows mounting one, else with ENOSPC
    injected at the sink."""
    import errno

    from vidfiqa.pipeline.processor import TrackProcessor
    from vidfiqa.sinks.event_folders import EventFolderSink

    disk = tmp_path / "disk"
    full = threading.Event()
    full.set()
    with small_disk(disk, 2048) as mounted:
        if mounted:
            filler = disk / "filler"
            with open(filler, "wb") as handle:  # every free block of the tmpfs
                try:
                    while True:
                        handle.write(b"\0" * 65536)
                        handle.flush()
                except OSError:
                    pass
        else:
            real = EventFolderSink.emit

            def refuses_while_full(self, record):
                if full.is_set() and record.is_event:
                    raise OSError(errno.ENOSPC, "No space left on device", str(disk / "events"))
                return real(self, record)
            monkeypatch.setattr(EventFolderSink, "emit", refuses_while_full)
        calls = {"n": 0}
        real_process = TrackProcessor.process

        def fails_once(self, frame, detected=None):
            calls["n"] += 1
            if calls["n"] == 40:
                raise RuntimeError("a bug met once")
            return real_process(self, frame, detected)
        monkeypatch.setattr(TrackProcessor, "process", fails_once)

        log: list = []
        cfg = load_stream(stream_file(tmp_path, str(people_clip), loop=True, max_track_s=2.0))
        watcher = Watcher([cfg], disk / "out", WatchOutputs(), log=Logger("json", stream=type("C", (), {"write": lambda s, t: log.append(t), "flush": lambda s: None})()))
        thread = run_in_thread(watcher, 60)
        assert wait_for(lambda: len(watcher.outboxes["cam"]) > 0, 40), "".join(log)[-2000:]
        health = watcher.health()
        assert health["degraded"] and health["streams"]["cam"]["events_pending"] > 0 and health["streams"]["cam"]["worker_up"]
        # While it waits to restart (1 s), /health shows the camera's analysis as down.
        assert wait_for(lambda: not watcher.health()["streams"]["cam"]["worker_up"], 30, step=0.05), "".join(log)[-2000:]
        assert watcher.health()["degraded"] and "a bug met once" in watcher.health()["streams"]["cam"]["worker_error"]
        assert wait_for(lambda: watcher.cameras.workers["cam"].restarts == 1 and watcher.health()["streams"]["cam"]["worker_up"], 30), "".join(log)[-2000:]
        if mounted:
            filler.unlink()
        full.clear()
        assert wait_for(lambda: len(events_of(disk / "out")) >= 2 and len(watcher.outboxes["cam"]) == 0, 40), "".join(log)[-2000:]
        watcher.stop.set()
        thread.join(timeout=60)
        summary = json.loads((disk / "out" / "watch_summary.json").read_text())["streams"]["cam"]
        assert summary["sink_errors"] >= 1 and summary["events"] >= 2 and summary["events_lost"] == 0
        assert summary["worker_restarts"] == 1 and "a bug met once" in summary["worker_error"] and summary["worker_error_at"]
        folders = [f for f in (disk / "out" / "events" / "cam").iterdir() if f.is_dir()]
        assert len(folders) == summary["events"] and all((f / "event.json").is_file() for f in folders), "a half-written event folder was left"
        # The event store, which could not even be created on the full disk, was opened once there was room.
        from vidfiqa.live.event_queries import EventQueries

        with EventQueries(disk / "out") as queries:
            assert {e["event_id"] for e in queries.events(limit=1000)} == {f.name for f in folders}
        assert any("No space left on device" in line and "will retry" in line for line in log)


def test_a_camera_that_refuses_connections_is_retried_within_reconnect_max_s(tmp_path):
    """A real connection refused, over and over (nothing listens on the port): the logged retry
    delays back off and none exceeds reconnect_max_s (with the jitter applied after the cap, a
    quarter of them did)."""
    log: list = []
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: every connection is refused
        watcher = watcher_for(tmp_path, f"rtsp://127.0.0.1:{port}/cam", log)
        watcher.streams[0] = dataclasses.replace(watcher.streams[0], reconnect_min_s=0.4, reconnect_max_s=1.0)
        watcher.run(8.0)
    delays = [json.loads(line)["retry_in_s"] for line in "".join(log).splitlines() if '"reconnecting"' in line]
    assert len(delays) >= 4, "".join(log)[-1500:]
    assert max(delays) <= 1.0 and delays[0] < 0.6 and max(delays) > 0.7, delays


def test_mqtt_events_snapshots_and_availability_survive_a_broker_restart(mosquitto, people_clip, tmp_path):
    """Against a real mosquitto: events as JSON on vidfiqa/cam/event, the best crop as a retained
    JPEG on vidfiqa/cam/snapshot, retained online/offline availability with a last will; the
    broker goes away and comes back, and every event emitted meanwhile (within the queue bound)
    still arrives."""
    port = free_port()
    broker = Broker(mosquitto, port, tmp_path).start()
    listener, received = mqtt_listener(port)
    log: list = []
    cfg = load_stream(stream_file(tmp_path, str(people_clip), loop=True, max_track_s=2.0))
    watcher = Watcher([cfg], tmp_path / "out", WatchOutputs(mqtt_url=f"mqtt://127.0.0.1:{port}"),
                      log=Logger("json", stream=type("C", (), {"write": lambda s, t: log.append(t), "flush": lambda s: None})()))
    thread = run_in_thread(watcher, 120)
    events = lambda messages: [json.loads(p) for t, p, _ in messages if t == "vidfiqa/cam/event"]  # noqa: E731
    try:
        assert wait_for(lambda: len(events(received)) >= 1, 40), "".join(log)[-2000:]
        assert ("vidfiqa/availability", b"online", False) in received or ("vidfiqa/availability", b"online", True) in received
        snapshot = next(p for t, p, _ in received if t == "vidfiqa/cam/snapshot")
        assert snapshot[:2] == b"\xff\xd8" and cv2.imdecode(np.frombuffer(snapshot, np.uint8), cv2.IMREAD_COLOR).shape == (112, 112, 3)
        late, late_received = mqtt_listener(port, "vidfiqa/cam/snapshot")  # retained: a newcomer gets the last one at once
        assert wait_for(lambda: any(retain for _, _, retain in late_received), 5)
        late.loop_stop()
        first = events(received)[0]
        assert first["stream"] == "cam" and first["event_id"] in (tmp_path / "out" / "events.jsonl").read_text()
        listener.loop_stop()

        broker.stop()
        assert wait_for(lambda: not watcher.sink("mqtt").connected, 20)
        written = len(events_of(tmp_path / "out"))
        assert wait_for(lambda: len(events_of(tmp_path / "out")) >= written + 2, 30), "events go on while the broker is away"
        while_away = [e["event_id"] for e in events_of(tmp_path / "out")[written:]]
        broker.start()
        listener, received = mqtt_listener(port)
        assert wait_for(lambda: set(while_away) <= {e["event_id"] for e in events(received)}, 45), (while_away, "".join(log)[-1500:])
    finally:
        watcher.stop.set()
        thread.join(60)
        listener.loop_stop()
    final, final_received = mqtt_listener(port, "vidfiqa/availability")
    assert wait_for(lambda: ("vidfiqa/availability", b"offline", True) in final_received, 5), final_received
    final.loop_stop()
    broker.stop()
    summary = json.loads((tmp_path / "out" / "watch_summary.json").read_text())["mqtt"]
    events_written = len(events_of(tmp_path / "out"))
    assert summary["events"] == {"delivered": events_written, "queued": 0, "dropped": 0, "lost": 0}, (summary, events_written)
    assert summary["snapshots"]["delivered"] >= len(while_away) and summary["lost_events"] == []


def test_mqtt_counts_what_the_broker_never_acknowledged_as_lost(mosquitto, tmp_path):
    """With a wrong password the summary said {"published": 4, "dropped": 0} though nothing was
    delivered: a publish refused for "no connection" counted as published and the queue was
    thrown away at shutdown.  Now nothing is delivered, every event is counted lost and named,
    and the watch exits 4 (events lost) as it does when any sink loses events."""
    port = free_port()
    broker = Broker(mosquitto, port, tmp_path, accept_clients=False).start()
    try:
        replay = tmp_path / "replay.toml"
        replay.write_text(f'[stream]\nname = "replay"\nurl = "{SAMPLE}"\nmax_track_s = 2\n')  # an 8 s visit: several events
        out = tmp_path / "out"
        result = subprocess.run([sys.executable, "-m", "vidfiqa.cli", "watch", str(replay), "-o", str(out), "--no-metrics", "--log-format", "json",
                                 "--mqtt", f"mqtt://vidfiqa:wrong@127.0.0.1:{port}"], capture_output=True, text=True, timeout=120)
    finally:
        broker.stop()
    assert result.returncode == 4, result.stderr
    assert "mqtt connection refused" in result.stderr and "wrong" not in result.stderr
    written = [e["event_id"] for e in events_of(out)]
    summary = json.loads((out / "watch_summary.json").read_text())["mqtt"]
    assert len(written) >= 2 and summary["events"] == {"delivered": 0, "queued": 0, "dropped": 0, "lost": len(written)}, summary
    assert sorted(summary["lost_events"]) == sorted(written)


def test_mqtt_urls_and_topics_are_checked_before_any_camera_starts(tmp_path):
    from vidfiqa.sinks.mqtt import check_topic, parse_mqtt_url

    assert parse_mqtt_url("mqtt://ha:pa%40ss@broker.local:1884") == {"host": "broker.local", "port": 1884, "tls": False, "username": "ha",
                                                                      "password": "pa@ss"}
    assert parse_mqtt_url("mqtts://broker")["port"] == 8883 and parse_mqtt_url("mqtt://broker")["port"] == 1883
    for bad in ("http://broker", "mqtt://", "mqtt://u:s3cret@[broker:1883", "mqtt://broker:70000"):
        with pytest.raises(ConfigError) as err:
            parse_mqtt_url(bad)
        assert "s3cret" not in str(err.value)
    for topic in ("", "a/#", "/a", "a/+/b"):
        with pytest.raises(ConfigError):
            check_topic(topic)
    replay = tmp_path / "replay.toml"
    replay.write_text(f'[stream]\nname = "replay"\nurl = "{SAMPLE}"\n')
    result = subprocess.run([sys.executable, "-m", "vidfiqa.cli", "watch", str(replay), "-o", str(tmp_path / "o"), "--no-metrics",
                             "--mqtt", "mqtt://u:s3cret@broker:99999"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "s3cret" not in result.stderr and "out of range" in result.stderr.strip().splitlines()[-1], result.stderr


def test_a_replayed_recording_loops_seamlessly_while_unreferenced_frames_are_skipped(tmp_path):
    """The sample has B-frames: analysed at 5 of its 30 frames a second, the reader skips them
    (84 of every 120 frames decoded) and, at the end of the file, starts again at once - not a
    'truncated file' error and a reconnect with backoff."""
    lines: list = []
    watcher = watcher_for(tmp_path, str(SAMPLE), lines, stream={"loop": True}, metrics_port=None)
    summary = watcher.run(duration_s=12)["streams"]["cam"]
    assert summary["reconnects"] == 0 and not any("reconnecting" in line for line in lines), lines[-3:]
    assert summary["frames_processed"] >= 40  # about 5 a second
    assert summary["frames_decoded"] < 0.85 * summary["frames_processed"] * 6, "unreferenced frames were not decoded"


def test_two_stream_files_with_one_name_skip_the_second_and_run_the_rest(tmp_path):
    """Two stream files named "dup" and a good one used to stop every camera (exit 2, naming
    neither file).  Now the second "dup" is reported with both files and skipped, as any other
    bad stream file is, and the other two cameras run."""
    first, second, good = tmp_path / "first.toml", tmp_path / "second.toml", tmp_path / "good.toml"
    first.write_text(f'[stream]\nname = "dup"\nurl = "{SAMPLE}"\nloop = true\n')
    second.write_text('[stream]\nname = "dup"\nurl = "rtsp://127.0.0.1:1/other"\n')
    good.write_text(f'[stream]\nname = "good"\nurl = "{SAMPLE}"\nloop = true\n')
    result = subprocess.run([sys.executable, "-m", "vidfiqa.cli", "watch", str(first), str(second), str(good), "-o", str(tmp_path / "o"),
                             "--no-metrics", "--duration", "8"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    complaint = [line for line in result.stderr.splitlines() if "skipped" in line and "dup" in line]
    assert len(complaint) == 1 and str(first) in complaint[0] and str(second) in complaint[0], result.stderr
    summary = json.loads((tmp_path / "o" / "watch_summary.json").read_text())
    assert list(summary["streams"]) == ["dup", "good"] and summary["streams"]["dup"]["url"] == str(SAMPLE)
    assert all(s["frames_processed"] > 10 for s in summary["streams"].values()), summary


def test_a_camera_still_connecting_does_not_delay_shutdown(tmp_path):
    """A camera whose server accepts TCP but never answers RTSP (open_timeout_s = 100) beside a
    good one: SIGTERM made the process wait 15 s on the connecting reader before the good
    camera's open track was even emitted (docker kills after 10 s).  Now the open tracks go
    first and a reader stuck in a connect is left behind after a short, bounded wait."""
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen()
    held = []
    threading.Thread(target=lambda: held.append(mute.accept()), daemon=True).start()  # accepts, never answers
    silent = tmp_path / "silent.toml"
    silent.write_text(f'[stream]\nname = "silent"\nurl = "rtsp://127.0.0.1:{mute.getsockname()[1]}/cam"\nopen_timeout_s = 100\n')
    replay = tmp_path / "replay.toml"
    replay.write_text(f'[stream]\nname = "replay"\nurl = "{SAMPLE}"\nloop = true\n')
    out = tmp_path / "out"
    try:
        code, log, stop_s = signalled_watch([silent, replay], out, [signal.SIGTERM], seen_s=3)
    finally:
        mute.close()
    assert code == 0, log
    assert held, "the silent camera never connected to the test's server"
    assert stop_s < 6, f"the watch took {stop_s:.1f} s to stop"
    events = events_of(out)
    assert any(e["stream"] == "replay" and e["ended"] == "shutdown" and e["selected"] for e in events), events
    assert "reader still connecting" in log, log
    summary = json.loads((out / "watch_summary.json").read_text())
    assert summary["streams"]["replay"]["events"] >= 1 and summary["streams"]["silent"]["frames_decoded"] == 0


def test_sighup_twice_ends_a_watch_cleanly(tmp_path):
    """SIGHUP (a closed terminal, a service manager's reload-or-stop) bypassed watch's handler:
    exit 129, no watch_summary.json, the open track's event lost.  Now it stops the watch like
    SIGTERM, even sent twice in a row: the open track is emitted and the summary written."""
    replay = tmp_path / "replay.toml"
    replay.write_text(f'[stream]\nname = "replay"\nurl = "{SAMPLE}"\nloop = true\n')
    out = tmp_path / "out"
    # The astronaut is on screen from the first frame: a track is open when the signals come.
    code, log, _ = signalled_watch(replay, out, [signal.SIGHUP, signal.SIGHUP], seen_s=3)
    assert code == 0, log
    assert '"signal": "SIGHUP"' in log, log
    events = events_of(out)
    assert any(e["ended"] == "shutdown" and e["selected"] for e in events), events
    summary = json.loads((out / "watch_summary.json").read_text())
    assert summary["streams"]["replay"]["events"] == len(events) >= 1
