"""Counters and gauges for `vidfiqa watch`, served in the Prometheus text format.

``GET /metrics`` returns every metric; ``GET /health`` returns JSON with each stream's state (HTTP
503 when no stream is up); with a :class:`~vidfiqa.live.web.LiveSite`, the same server answers the
live page, its JSON API and the events' images (live/web.py).  The server listens on 127.0.0.1
only: put a reverse proxy in front to expose it.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections import defaultdict
from typing import TYPE_CHECKING, Callable

from ..errors import ConfigError

if TYPE_CHECKING:
    from .web import LiveSite

HELP = {
    "vidfiqa_frames_decoded_total": ("counter", "Frames decoded from the stream."),
    "vidfiqa_frames_dropped_total": ("counter", "Decoded frames dropped because analysis fell behind (or by fps_cap)."),
    "vidfiqa_frames_processed_total": ("counter", "Frames analysed (detected, tracked, scored)."),
    "vidfiqa_reconnects_total": ("counter", "Times the stream was reopened after an error, a stall or its end."),
    "vidfiqa_stalls_total": ("counter", "Times a connected stream delivered nothing for read_timeout_s."),
    "vidfiqa_tracks_total": ("counter", "Tracks (or segments of long tracks) finished."),
    "vidfiqa_tracks_rejected_total": ("counter", "Finished tracks the face gate turned away as not face-like (no event)."),
    "vidfiqa_events_total": ("counter", "Best-shot events emitted."),
    "vidfiqa_stage_seconds_total": ("counter", "Wall time spent per pipeline stage."),
    "vidfiqa_webhook_failures_total": ("counter", "Webhook deliveries that failed after all retries."),
    "vidfiqa_webhook_dropped_total": ("counter", "Events not sent to the webhook because its queue was full."),
    "vidfiqa_sink_errors_total": ("counter", "Times a sink refused a record (a full disk, a read-only folder), per stream and sink; each is retried with backoff."),
    "vidfiqa_events_lost_total": ("counter", "Events given up: still unwritten at shutdown, or pushed out of the bounded retry queue."),
    "vidfiqa_worker_restarts_total": ("counter", "Times a stream's analysis failed and was started again."),
    "vidfiqa_mqtt_messages_total": ("counter", "MQTT messages handed to the client, per kind (events, snapshots) and outcome: queued for the broker, or dropped because the outgoing queue was full."),
    "vidfiqa_mqtt_delivered_total": ("counter", "MQTT messages the broker acknowledged (QoS 1 PUBACK), per kind."),
    "vidfiqa_mqtt_dropped_total": ("counter", "MQTT messages dropped because the outgoing queue was full (the broker away too long)."),
    "vidfiqa_mqtt_lost_total": ("counter", "MQTT messages still unacknowledged when the watch ended, per kind."),
    "vidfiqa_mqtt_queued": ("gauge", "MQTT messages handed to the client and not acknowledged yet."),
    "vidfiqa_mqtt_connected": ("gauge", "1 while connected to the MQTT broker."),
    "vidfiqa_stream_up": ("gauge", "1 while the stream is connected and delivering frames."),
    "vidfiqa_worker_up": ("gauge", "1 while the stream's analysis runs (0 while it waits to restart after a failure)."),
    "vidfiqa_events_pending": ("gauge", "Events waiting to be written again after a sink error."),
    "vidfiqa_queue_depth": ("gauge", "Frames waiting for analysis."),
    "vidfiqa_tracks_open": ("gauge", "Tracks currently open."),
    "vidfiqa_webhook_queue_depth": ("gauge", "Events waiting to be posted to the webhook."),
    "vidfiqa_frame_latency_seconds": ("gauge", "Seconds from a frame's arrival to the end of its analysis, over the stream's last 500 analysed frames (quantile p50, p95)."),
    "vidfiqa_batch_calls_total": ("counter", "Model calls made for several streams at once (cross-stream batching), per model."),
    "vidfiqa_batch_requests_total": ("counter", "Stream requests served by those calls, per model: requests / calls is the streams per call."),
    "vidfiqa_batch_items_total": ("counter", "Frames (detect) or faces (score, embed) in those calls, per model."),
    "vidfiqa_batch_wait_seconds_total": ("counter", "Seconds the first request of each batched call waited for it to start, per model."),
    "vidfiqa_ray_placements_total": ("counter", "Ray actors started for a group of cameras (watch --ray; label: its first stream); more than one: it was placed again."),
    "vidfiqa_ray_actor_deaths_total": ("counter", "Ray actors of a group of cameras that died (killed, out of memory, their node lost)."),
    "vidfiqa_event_latency_seconds": ("gauge", "Last event: seconds from the track's last detection to the event being written."),
}


class Metrics:
    """Thread-safe counters and settable gauges keyed by name and labels."""

    def __init__(self):
        self._lock = threading.Lock()
        self._values: dict[tuple[str, tuple], float] = defaultdict(float)
        self._gauges: dict[tuple[str, tuple], Callable[[], float]] = {}

    @staticmethod
    def _key(name: str, labels: dict[str, str]) -> tuple[str, tuple]:
        return name, tuple(sorted(labels.items()))

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        with self._lock:
            self._values[self._key(name, labels)] += amount

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[self._key(name, labels)] = float(value)

    def gauge(self, name: str, read: Callable[[], float], **labels: str) -> None:
        """A gauge read when scraped (queue depths)."""
        with self._lock:
            self._gauges[self._key(name, labels)] = read

    def total(self, name: str, **labels: str) -> float:
        """The sum of a counter over every label set that includes ``labels`` (e.g. every sink of a stream)."""
        want = set(labels.items())
        with self._lock:
            return sum(v for (n, key), v in self._values.items() if n == name and want <= set(key))

    def get(self, name: str, **labels: str) -> float:
        with self._lock:
            key = self._key(name, labels)
            if key in self._gauges:
                return float(self._gauges[key]())
            return self._values.get(key, 0.0)

    def snapshot(self) -> dict[tuple[str, tuple], float]:
        with self._lock:
            values = dict(self._values)
            gauges = dict(self._gauges)
        for key, read in gauges.items():
            try:
                values[key] = float(read())
            except Exception:  # a gauge must never break a scrape
                continue
        return values

    def prometheus(self) -> str:
        by_name: dict[str, list] = defaultdict(list)
        for (name, labels), value in self.snapshot().items():
            by_name[name].append((labels, value))
        lines = []
        for name in sorted(by_name):
            kind, text = HELP.get(name, ("untyped", name))
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            for labels, value in sorted(by_name[name]):
                rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                lines.append(f"{name}{{{rendered}}} {value:.6g}" if rendered else f"{name} {value:.6g}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


IDLE_TIMEOUT_S = 10.0  # a metrics connection silent this long is closed


class MetricsServer:
    """``/metrics`` and ``/health`` (and ``site``'s routes: the live page) on 127.0.0.1:``port``
    in a daemon thread."""

    def __init__(self, metrics: Metrics, port: int, health: Callable[[], dict], idle_timeout_s: float = IDLE_TIMEOUT_S,
                 site: "LiveSite | None" = None):
        metrics_ref, health_ref = metrics, health
        self.site = site

        class Handler(http.server.BaseHTTPRequestHandler):
            # A connection that sends nothing (a port scanner, a half-open client) held a thread
            # forever; the socket now times out and the thread ends.
            timeout = idle_timeout_s

            def answer(self, send_body: bool) -> None:
                headers: dict[str, str] = {}
                path = self.path.split("?")[0]
                if path == "/metrics":
                    body, status, kind = metrics_ref.prometheus().encode(), 200, "text/plain; version=0.0.4"
                elif path == "/health":
                    state = health_ref()
                    body = json.dumps(state).encode()
                    status, kind = (200 if state.get("ok") else 503), "application/json"
                else:
                    try:
                        found = site.handle(self.path, self.headers.get("Host")) if site is not None else None
                    except Exception as err:  # a bug must cost one request, not the server thread's silence
                        found = None
                        body, status, kind = f"internal error: {type(err).__name__}\n".encode(), 500, "text/plain"
                    else:
                        body, status, kind = b"not found: try /metrics, /health" + (b" or / (the live page)\n" if site else b"\n"), 404, "text/plain"
                    if found is not None:
                        body, status, kind, headers = found.body, found.status, found.content_type, found.headers
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if send_body:
                    self.wfile.write(body)

            def do_GET(self):
                self.answer(True)

            def do_HEAD(self):
                self.answer(False)

            def log_message(self, *args):  # scrapes are not log lines
                pass

        try:
            self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError as err:
            raise ConfigError(f"--metrics-port {port}: cannot listen on 127.0.0.1:{port} ({err.strerror or err})") from None
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="vidfiqa-metrics", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.site is not None:
            self.site.close()
