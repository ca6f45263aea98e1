"""`vidfiqa watch`: many cameras in one process (or on a Ray cluster), for weeks.

    cameras (a CameraBackend: cameras.py, ray_cameras.py)
        each stream: reader -> analysis -> end-of-track chain (select/chain.py) -> TrackRecord
    -> the stream's outbox (sinks/outbox.py): names the event, retries a refusing sink
    -> every sink in order (sinks/__init__.py watch_sinks): event folders, events.jsonl,
       webhook, MQTT, and any the caller adds

The :class:`Watcher` owns what is the same wherever the cameras run: the sinks, one outbox per
stream, the metrics server with /health and the live page (live/web.py), the signals, and
``watch_summary.json``.  SIGINT,
SIGTERM and SIGHUP stop the cameras; every open track is emitted, the sinks get a few seconds to
drain, and the summary is written.  The command exits 0, or 4 when events were lost (a sink never
took them: commands/watch.py).
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
from ..export.entries import iso
from ..folder_lock import FolderLock
from ..sinks import TrackSink, WatchOutputs, close_all, watch_sinks
from ..sinks.outbox import EventNamer, SinkOutbox
from .cameras import CameraFactory, CameraSetup, LocalCameras
from .config import StreamConfig, load_stream
from .metrics import Metrics, MetricsServer
from .web import FrameRates, LiveSite
from ..redact import redact_url


M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # glibc's mallopt parameter numbers
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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
    """Cameras -> records -> sinks, until a signal, ``duration_s`` or the end of every input."""

    def __init__(self, streams: list[StreamConfig], out_dir: str | Path, outputs: WatchOutputs | None = None, *,
                 extra_sinks: list[TrackSink] | None = None, cameras: CameraFactory | None = None, metrics_port: int | None = None,
                 log: Any = None, batch_streams: bool | None = None, batch_wait_s: float = 0.02):
        """``outputs``: what the command's options say about the sinks (:func:`watch_sinks` makes
        them); ``extra_sinks`` come after those.  ``cameras``: where the cameras run (default:
        :class:`LocalCameras`, threads of this process).  ``batch_streams``: batch the model calls
        of cameras that share models (None: when the models run on a GPU; on CPUs it was measured
        to analyse no more frames and to cost memory, benchmarks/cameras.py)."""
        if not streams:
            raise ConfigError("no usable stream definitions")
        names = [s.name for s in streams]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate:
            files = " and ".join(str(s.source_file) for s in streams if s.name == duplicate)
            raise ConfigError(f"two streams use the name {duplicate!r} ({files}): names must be unique")
        self.streams = streams
        self.out = Path(out_dir)
        self.lock = FolderLock(self.out, "watch output")  # held until shutdown() has written the summary
        self.log = log or Logger()
        self.metrics = Metrics()
        self.stop = threading.Event()
        self.started = time.time()
        self.rates = FrameRates(lambda name: self.metrics.get("vidfiqa_frames_processed_total", stream=name))
        store = (outputs or WatchOutputs()).store
        self.server = (MetricsServer(self.metrics, metrics_port, self.health, site=LiveSite(self.out, self.live_cameras, store=store))
                       if metrics_port is not None else None)
        self.sinks = watch_sinks(self.out, outputs or WatchOutputs(), self.metrics, self.log) + list(extra_sinks or [])
        namer = EventNamer(self.out)
        self.outboxes = {cfg.name: SinkOutbox(cfg.name, self.sinks, self.metrics, self.log, namer) for cfg in streams}
        setup = CameraSetup(streams, self.outboxes, self.metrics, self.log, self.stop, batch_streams=batch_streams, batch_wait_s=batch_wait_s)
        self.cameras = (cameras or LocalCameras)(setup)

    def sink(self, name: str) -> TrackSink | None:
        """The sink of this name (``webhook``, ``mqtt`` ...), if there is one."""
        return next((s for s in self.sinks if s.name == name), None)

    def health(self) -> dict:
        streams = self.cameras.health()
        for name, state in streams.items():
            state["events_pending"] = len(self.outboxes[name])  # refused by a sink, waiting for a retry
        healthy = [s["up"] and s["worker_up"] for s in streams.values()]
        return {"ok": any(healthy), "degraded": not all(healthy) or any(s["events_pending"] for s in streams.values()),
                "uptime_s": round(time.time() - self.started, 1), "streams": streams}

    def live_cameras(self) -> dict[str, dict[str, Any]]:
        """The live page's view of each camera now: up, analysing, frames analysed per second over
        the last seconds, seconds since its last frame, its last error, events emitted by this run."""
        out = {}
        for name, state in self.cameras.health().items():
            out[name] = {"up": bool(state.get("up")), "analysing": bool(state.get("worker_up")), "fps": self.rates.rate(name),
                         "seconds_since_frame": state.get("seconds_since_frame"), "last_error": state.get("last_error"),
                         "last_error_at": state.get("last_error_at"),
                         "events_emitted": int(self.metrics.get("vidfiqa_events_total", stream=name))}
        return out

    def start(self) -> None:
        tune_malloc()
        self.cameras.start()

    def run(self, duration_s: float | None = None) -> dict:
        """Until a stop signal (or ``duration_s``); returns the summary written to OUT."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                previous[sig] = signal.signal(sig, self._on_signal)
        try:
            self.start()
            deadline = None if duration_s is None else time.monotonic() + duration_s
            while not self.stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if self.cameras.ended():
                    break  # every input was a file that ended
                self.cameras.tick()
                self.rates.sample([cfg.name for cfg in self.streams])
                self.stop.wait(0.2)
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.summary()

    def _on_signal(self, signum, frame) -> None:
        self.log("info", "shutting down", signal=signal.Signals(signum).name)
        self.stop.set()

    def shutdown(self) -> None:
        """Stop the cameras (every open track is emitted), deliver what waits, close the sinks
        (the webhook and MQTT get a few seconds to drain), stop serving metrics, write the summary."""
        self.stop.set()
        self.cameras.shutdown()
        for outbox in self.outboxes.values():
            outbox.close()
        try:
            close_all(self.sinks)
        except Exception as err:  # a sink that cannot close must not keep the summary from being written
            self.log("error", "a sink failed to close", error=f"{type(err).__name__}: {err}")
        if self.server is not None:
            self.server.close()
        try:
            atomic_write_text(self.out / "watch_summary.json", json.dumps(self.summary(), indent=1, allow_nan=False) + "\n")
        finally:
            self.lock.release()

    def summary(self) -> dict:
        m = self.metrics
        summary: dict[str, Any] = {
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
                    "sink_errors": int(m.total("vidfiqa_sink_errors_total", stream=cfg.name)),
                    "events_lost": int(m.get("vidfiqa_events_lost_total", stream=cfg.name)),
                    "worker_restarts": int(m.get("vidfiqa_worker_restarts_total", stream=cfg.name)),
                    **self.cameras.stream_info(cfg.name),
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
            "mqtt": None,
            "webhook": None,
        }
        for sink in self.sinks:
            said = sink.summary()
            if said is not None:
                summary[sink.name] = said
        summary.update(self.cameras.summary())
        return summary


def load_streams(paths: list[str], base_config: str | None, log: Logger) -> list[StreamConfig]:
    """Every stream file that loads; a bad one is reported and skipped, unless all are bad."""
    streams: list[StreamConfig] = []
    errors: list[str] = []
    for path in paths:
        try:
            cfg = load_stream(path, base_config)
        except VidfiqaError as err:
            errors.append(str(err))
            log("error", "bad stream definition, skipped", error=str(err))
            continue
        first = next((s for s in streams if s.name == cfg.name), None)
        if first is not None:  # names become event folders and metric labels: the first file keeps it
            message = f"{path}: [stream] name: {cfg.name!r} is already the name of {first.source_file}; stream names must be unique"
            errors.append(message)
            log("error", "bad stream definition, skipped", error=message)
            continue
        streams.append(cfg)
    if not streams:
        raise ConfigError(errors[0] if len(errors) == 1 else f"no usable stream definitions ({len(errors)} errors; first: {errors[0]})")
    return streams
