"""`vidfiqa watch`: many cameras in one process, for weeks.

Each stream gets a reader thread and a worker thread (see stream.py); streams whose model
settings agree share one set of models (``ModelCache``: onnxruntime sessions run calls from
several threads at once, so sharing costs no parallelism).
Events go to the shared EventWriter; a metrics server reports on all of them.  SIGINT/SIGTERM
stop the readers, let every worker flush its open tracks as events, drain the webhook for a few
seconds and exit 0.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from ..errors import ConfigError, VidfiqaError
from ..pipeline.batching import BatchedModels
from ..pipeline.models import ModelCache
from .config import StreamConfig, load_stream
from .events import EventWriter, Retention, WebhookSink, iso
from .metrics import Metrics, MetricsServer
from ..redact import redact_url
from .stream import FrameQueue, StreamReader, StreamWorker


M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # glibc's mallopt parameter numbers


def tune_malloc(arenas: int = 2, mmap_threshold: int = 1 << 20) -> bool:
    """Keep glibc's malloc from holding on to freed frame memory, before the camera threads start.

    glibc gives busy threads arenas of their own (up to 8 per core), and each keeps the memory
    its thread freed: with two threads per camera that was measured at about 18 MiB per camera;
    two arenas are enough for threads that spend their time in decoders and models.  And after
    the first large block is freed glibc raises its mmap threshold past frame sizes, so later
    frames come from the arenas and their memory stays with the process; a fixed 1 MiB
    threshold returns every frame's memory to the system when it is freed.  No-op where the C
    library is not glibc.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, int(arenas))) and bool(libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)))
    except (OSError, AttributeError):
        return False


def on_gpu(models: Any) -> bool:
    """Whether the bundle's detector runs on a GPU (an onnxruntime session whose first provider
    is not the CPU's)."""
    session = getattr(models.detector, "session", None)
    try:
        return session is not None and session.get_providers()[0] != "CPUExecutionProvider"
    except Exception:
        return False


class Logger:
    """Structured log lines on stderr: JSON objects (``json``) or ``key=value`` text."""

    def __init__(self, fmt: str = "text", stream=None):
        self.fmt = fmt
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def __call__(self, level: str, message: str, **fields: Any) -> None:
        record = {"ts": iso(time.time()), "level": level, "msg": message, **fields}
        if self.fmt == "json":
            line = json.dumps(record, default=str)
        else:
            extra = " ".join(f"{k}={v}" for k, v in fields.items())
            line = f"{record['ts']} {level:7s} {message}" + (f" {extra}" if extra else "")
        with self._lock:
            print(line, file=self.stream, flush=True)


class Watcher:
    def __init__(self, streams: list[StreamConfig], out_dir: str | Path, retention: Retention | None = None,
                 webhook_url: str | None = None, webhook_timeout_s: float = 5.0, webhook_headers: dict[str, str] | None = None, metrics_port: int | None = None,
                 log: Logger | None = None, mqtt_url: str | None = None, mqtt_topic: str = "vidfiqa",
                 batch_streams: bool | None = None, batch_wait_s: float = 0.02, events: Any = None):
        """``batch_streams``: batch the model calls of cameras that share models (None: when the
        models run on a GPU; on CPUs it was measured to analyse no more frames and to cost memory,
        benchmarks/cameras.py).  ``events``: where finished tracks go instead of an EventWriter at ``out_dir`` (a Ray
        camera actor relays them to its driver); no summary file is written then."""
        if not streams:
            raise ConfigError("no usable stream definitions")
        names = [s.name for s in streams]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate:
            raise ConfigError(f"two stream files use the name {duplicate!r}: names must be unique")
        self.streams = streams
        self.out = Path(out_dir)
        self.log = log or Logger()
        self.metrics = Metrics()
        self.stop = threading.Event()
        self.server = MetricsServer(self.metrics, metrics_port, self.health) if metrics_port is not None else None
        self.webhook = WebhookSink(webhook_url, self.metrics, timeout_s=webhook_timeout_s, log=self.log, headers=webhook_headers) if webhook_url else None
        self.mqtt = None
        if mqtt_url:
            from .mqtt import MqttSink

            self.mqtt = MqttSink(mqtt_url, self.metrics, topic=mqtt_topic, log=self.log)
        self.writes_summary = events is None
        self.events = events if events is not None else EventWriter(self.out, retention or Retention(), self.metrics, webhook=self.webhook,
                                                                    log=self.log, mqtt=self.mqtt)
        self.models = ModelCache()
        # Cross-stream batching: cameras that share a bundle also share batched calls into it.
        self.batch_streams, self.batch_wait_s = batch_streams, batch_wait_s
        self.batched: dict[int, BatchedModels] = {}  # by id() of the shared bundle
        self.readers: dict[str, StreamReader] = {}
        self.workers: dict[str, StreamWorker] = {}
        self.started = time.time()

    def health(self) -> dict:
        streams = {}
        for name, reader in self.readers.items():
            worker = self.workers[name]
            streams[name] = {
                "up": reader.up,  # connected and delivering frames now
                "seconds_since_frame": None if reader.last_frame_at is None else round(time.monotonic() - reader.last_frame_at, 2),
                "last_error": reader.last_error,  # kept after a recovery: "up" says whether it lasts
                "last_error_at": None if reader.last_error_at is None else iso(reader.last_error_at),
                "worker_up": worker.is_alive() and worker.up,  # the analysis runs (not dead, not waiting to restart)
                "worker_error": worker.error,
                "worker_error_at": None if worker.error_at is None else iso(worker.error_at),
                "worker_restarts": worker.restarts,
                "events_pending": worker.pending_events,  # refused by a sink, waiting for a retry
                "queue_depth": len(worker.frames),
                "latency_s": worker.latency_quantiles(),  # arrival to analysed, recent frames
            }
        healthy = [s["up"] and s["worker_up"] for s in streams.values()]
        return {"ok": any(healthy), "degraded": not all(healthy) or any(s["events_pending"] for s in streams.values()),
                "uptime_s": round(time.time() - self.started, 1), "streams": streams}

    def start(self) -> None:
        tune_malloc()
        for cfg in self.streams:
            frames = FrameQueue(cfg.queue_frames)
            self.metrics.gauge("vidfiqa_queue_depth", frames.__len__, stream=cfg.name)
            models = self.models.get(cfg.settings)  # cameras with the same model settings share them
            batched = None
            if self.batch_streams or (self.batch_streams is None and on_gpu(models)):
                if id(models) not in self.batched:
                    self.batched[id(models)] = BatchedModels.wrap(models, max_wait_s=self.batch_wait_s, observe=self._observe_batch)
                batched = self.batched[id(models)]
                models = batched.models
            self.readers[cfg.name] = StreamReader(cfg, frames, self.metrics, self.stop, self.log)
            self.workers[cfg.name] = StreamWorker(cfg, frames, models, self.events, self.metrics, self.stop, self.log, batched=batched)
        for cfg in self.streams:
            self.log("info", "watching", stream=cfg.name, url=redact_url(cfg.url), file=cfg.source_file)
            self.workers[cfg.name].start()
            self.readers[cfg.name].start()

    def _observe_batch(self, model: str, requests: int, items: int, waited_s: float) -> None:
        m = self.metrics
        m.inc("vidfiqa_batch_calls_total", model=model)
        m.inc("vidfiqa_batch_requests_total", requests, model=model)
        m.inc("vidfiqa_batch_items_total", items, model=model)
        m.inc("vidfiqa_batch_wait_seconds_total", waited_s, model=model)

    def run(self, duration_s: float | None = None) -> dict:
        """Until SIGINT/SIGTERM (or ``duration_s``); returns the summary written to OUT."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self._on_signal)
        try:
            self.start()
            deadline = None if duration_s is None else time.monotonic() + duration_s
            while not self.stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if self._inputs_ended():
                    break  # every input was a file that ended
                self._tick()
                self.stop.wait(0.2)
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.summary()

    def _inputs_ended(self) -> bool:
        return bool(self.readers) and not any(r.is_alive() for r in self.readers.values())

    def _tick(self) -> None:
        """Called every 0.2 s while running (the Ray driver collects its cameras' news here)."""

    def _on_signal(self, signum, frame) -> None:
        self.log("info", "shutting down", signal=signal.Signals(signum).name)
        self.stop.set()

    def shutdown(self) -> None:
        self.stop.set()
        for reader in self.readers.values():
            reader.join(timeout=15)
        for worker in self.workers.values():
            worker.join(timeout=60)  # flushes its open tracks as events
        for batched in self.batched.values():
            batched.close()
        self._close_sinks()
        self._write_summary()

    def _close_sinks(self) -> None:
        """Give the webhook and MQTT a few seconds to drain, and stop serving metrics."""
        if self.webhook is not None:
            self.webhook.close(deadline_s=5.0)
        if self.mqtt is not None:
            self.mqtt.close(deadline_s=5.0)
        if self.server is not None:
            self.server.close()

    def _write_summary(self) -> None:
        if self.writes_summary:
            atomic_write_text(self.out / "watch_summary.json", json.dumps(self.summary(), indent=1) + "\n")

    def _worker_info(self, name: str) -> dict:
        """The summary's view of a stream's analysis: its last error and frame latency."""
        worker = self.workers.get(name)
        if worker is None:
            return {"worker_error": None, "worker_error_at": None, "frame_latency_s": None}
        return {"worker_error": worker.error, "worker_error_at": None if worker.error_at is None else iso(worker.error_at),
                "frame_latency_s": worker.latency_quantiles()}

    def summary(self) -> dict:
        m = self.metrics
        return {
            "started": iso(self.started),
            "stopped": iso(time.time()),
            "streams": {
                cfg.name: {
                    "url": redact_url(cfg.url),
                    "frames_decoded": int(m.get("vidfiqa_frames_decoded_total", stream=cfg.name)),
                    "frames_processed": int(m.get("vidfiqa_frames_processed_total", stream=cfg.name)),
                    "frames_dropped_overload": int(m.get("vidfiqa_frames_dropped_total", stream=cfg.name, reason="overload")),
                    "frames_dropped_fps_cap": int(m.get("vidfiqa_frames_dropped_total", stream=cfg.name, reason="fps_cap")),
                    "reconnects": int(m.get("vidfiqa_reconnects_total", stream=cfg.name)),
                    "stalls": int(m.get("vidfiqa_stalls_total", stream=cfg.name)),
                    "tracks": int(m.get("vidfiqa_tracks_total", stream=cfg.name)),
                    "events": int(m.get("vidfiqa_events_total", stream=cfg.name)),
                    "sink_errors": int(m.get("vidfiqa_sink_errors_total", stream=cfg.name, sink="events")),
                    "events_lost": int(m.get("vidfiqa_events_lost_total", stream=cfg.name)),
                    "worker_restarts": int(m.get("vidfiqa_worker_restarts_total", stream=cfg.name)),
                    **self._worker_info(cfg.name),
                }
                for cfg in self.streams
            },
            # From the counters, so a Ray driver reports its actors' batching too; None: none batched.
            "batching": {
                model: {"calls": int(m.get("vidfiqa_batch_calls_total", model=model)),
                        "requests": int(m.get("vidfiqa_batch_requests_total", model=model)),
                        "items": int(m.get("vidfiqa_batch_items_total", model=model))}
                for model in ("detect", "score", "embed") if m.get("vidfiqa_batch_calls_total", model=model)
            } or None,
            "mqtt": None if self.mqtt is None else {
                "broker": self.mqtt.shown,
                "published": self.mqtt.published,
                "dropped": int(m.get("vidfiqa_mqtt_dropped_total")),
            },
            "webhook": None if self.webhook is None else {
                "delivered": self.webhook.delivered,
                "failures": int(m.get("vidfiqa_webhook_failures_total")),
                "dropped": int(m.get("vidfiqa_webhook_dropped_total")),
            },
        }


def load_streams(paths: list[str], base_config: str | None, log: Logger) -> list[StreamConfig]:
    """Every stream file that loads; a bad one is reported and skipped, unless all are bad."""
    streams, errors = [], []
    for path in paths:
        try:
            streams.append(load_stream(path, base_config))
        except VidfiqaError as err:
            errors.append(str(err))
            log("error", "bad stream definition, skipped", error=str(err))
    if not streams:
        raise ConfigError(errors[0] if len(errors) == 1 else f"no usable stream definitions ({len(errors)} errors; first: {errors[0]})")
    return streams
