"""Where `vidfiqa watch`'s cameras run: a :class:`CameraBackend`.

The :class:`~vidfiqa.live.watch.Watcher` owns what is the same wherever cameras run - the sinks
and each stream's outbox to them, metrics, /health, signals, the summary - and drives one
backend through this small surface:

* :class:`LocalCameras`: each camera as two threads of this process (reader and analysis,
  stream.py); cameras whose model settings agree share one set of models;
* ``RayCameras`` (ray_cameras.py): groups of cameras as Ray actors, each actor a
  :class:`LocalCameras` of its own whose records are relayed to the driver.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from ..export.entries import iso
from ..pipeline.batching import BatchedModels
from ..pipeline.models import ModelCache, main_stream_region
from ..redact import redact_url
from ..sinks.outbox import SinkOutbox
from .config import StreamConfig
from .main_ring import MainRing
from .metrics import Metrics
from .stream import FrameQueue, ReplayClock, StreamReader, StreamWorker

WORKER_JOIN_S = 60.0  # a worker's join covers flushing its open tracks
READERS_STOP_S = 2.0  # all readers together, once the workers have ended: a read returns within a frame interval


@dataclass
class CameraSetup:
    """What every backend is given by the watcher."""

    streams: list[StreamConfig]
    outboxes: dict[str, SinkOutbox]  # per stream: where its records go
    metrics: Metrics
    log: Callable[..., None]
    stop: threading.Event  # set when the watch ends (a signal, --duration, inputs ended)
    batch_streams: bool | None = None  # batch the model calls of cameras sharing models (None: on a GPU)
    batch_wait_s: float = 0.02


class CameraBackend(Protocol):
    def start(self) -> None:
        """Start every camera."""

    def tick(self) -> None:
        """Called by the watcher every 0.2 s while running (a driver collects its cameras' news)."""

    def ended(self) -> bool:
        """Every input was a file, and all of them have ended."""

    def health(self) -> dict[str, dict[str, Any]]:
        """Per stream: ``up``, ``worker_up`` and what else the backend knows (see /health)."""

    def stream_info(self, name: str) -> dict[str, Any]:
        """The summary's view of a stream's analysis: ``worker_error``, ``worker_error_at``, ``frame_latency_s``."""

    def shutdown(self) -> None:
        """Stop the cameras; every open track is emitted to the outboxes before this returns."""

    def summary(self) -> dict[str, Any]:
        """Entries of the backend's own for watch_summary.json (``ray``), or none."""


CameraFactory = Callable[[CameraSetup], CameraBackend]


def on_gpu(models: Any) -> bool:
    """Whether the bundle's detector runs on a GPU (an onnxruntime session whose first provider
    is not the CPU's)."""
    session = getattr(models.detector, "session", None)
    try:
        return session is not None and session.get_providers()[0] != "CPUExecutionProvider"
    except Exception:
        return False


class LocalCameras:
    """Every camera as a reader thread and an analysis thread of this process.

    Cameras whose model settings agree share one bundle of models (``ModelCache``); every shared
    model runs one call at a time (pipeline/models.py), so sharing saves memory and loading time,
    not compute: the cameras' calls into a model take turns.  ``threads``: onnxruntime threads per
    model (None: the streams' ``threads`` setting, else every CPU this process may use).
    """

    def __init__(self, setup: CameraSetup, threads: int | None = None):
        self.setup = setup
        self.models = ModelCache(threads=threads)
        # Cross-stream batching: cameras that share a bundle also share batched calls into it.
        self.batched: dict[int, BatchedModels] = {}  # by id() of the shared bundle
        self.readers: dict[str, StreamReader] = {}
        self.workers: dict[str, StreamWorker] = {}
        self.mains: dict[str, MainRing] = {}  # cameras with a main stream

    def start(self) -> None:
        s = self.setup
        for cfg in s.streams:
            frames = FrameQueue(cfg.queue_frames)
            s.metrics.gauge("vidfiqa_queue_depth", frames.__len__, stream=cfg.name)
            models = self.models.get(cfg.settings)  # cameras with the same model settings share them
            batched = None
            if s.batch_streams or (s.batch_streams is None and on_gpu(models)):
                if id(models) not in self.batched:
                    self.batched[id(models)] = BatchedModels.wrap(models, max_wait_s=s.batch_wait_s, observe=self._observe_batch)
                batched = self.batched[id(models)]
                models = batched.models
            # A replayed recording with a main-stream recording: one clock paces both (stream.py).
            replay = ReplayClock() if cfg.main_url is not None and cfg.is_file else None
            reader = self.readers[cfg.name] = StreamReader(cfg, frames, s.metrics, s.stop, s.log, replay_clock=replay)
            main = main_region = None
            if cfg.main_url is not None:  # the picks are cut from the camera's main stream (live/main_ring.py)
                main = self.mains[cfg.name] = MainRing(cfg, s.metrics, s.stop, s.log, clock_zero=time.monotonic(),
                                                       sub_wall_offset=reader.camera_clock_offset, replay_clock=replay)
                main_region = main_stream_region(self.models.get(cfg.settings), cfg.settings)
            self.workers[cfg.name] = StreamWorker(cfg, frames, models, s.outboxes[cfg.name], s.metrics, s.stop, s.log, batched=batched,
                                                  main=main, main_region=main_region)
            if main is not None:
                main.clock_zero = self.workers[cfg.name].clock_zero  # one clock: the worker's (live/main_ring.py)
        for cfg in s.streams:
            s.log("info", "watching", stream=cfg.name, url=redact_url(cfg.url), file=cfg.source_file)
            self.workers[cfg.name].start()
            cutter = self.workers[cfg.name].cutter
            if cutter is not None:
                cutter.start()
            self.readers[cfg.name].start()
            if cfg.name in self.mains:
                self.mains[cfg.name].start()

    def _observe_batch(self, model: str, requests: int, items: int, waited_s: float) -> None:
        m = self.setup.metrics
        m.inc("vidfiqa_batch_calls_total", model=model)
        m.inc("vidfiqa_batch_requests_total", requests, model=model)
        m.inc("vidfiqa_batch_items_total", items, model=model)
        m.inc("vidfiqa_batch_wait_seconds_total", waited_s, model=model)

    def tick(self) -> None:
        pass  # the threads deliver their records themselves

    def ended(self) -> bool:
        return bool(self.readers) and not any(r.is_alive() for r in self.readers.values())

    def health(self) -> dict[str, dict[str, Any]]:
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
                "queue_depth": len(worker.frames),
                "latency_s": worker.latency_quantiles(),  # arrival to analysed, recent frames
            }
        return streams

    def stream_info(self, name: str) -> dict[str, Any]:
        worker = self.workers.get(name)
        if worker is None:
            return {"worker_error": None, "worker_error_at": None, "frame_latency_s": None}
        info: dict[str, Any] = {"worker_error": worker.error, "worker_error_at": None if worker.error_at is None else iso(worker.error_at),
                "frame_latency_s": worker.latency_quantiles()}
        main = self.mains.get(name)
        if main is not None and worker.cut is not None:
            info["main_stream"] = {"url": redact_url(main.url), "size": list(main.size) if main.size else None, "sync": main.sync,
                                   "last_error": main.last_error, **worker.cut.summary()}
        return info

    def shutdown(self) -> None:
        self.setup.stop.set()
        # The workers first: each emits its open tracks as it ends, and needs nothing from its
        # reader to do so.  Readers waited first, one stuck in a connect (open_timeout_s) held
        # every camera's open tracks back for 15 s, past docker's 10 s.
        for worker in self.workers.values():
            worker.join(timeout=WORKER_JOIN_S)
        for worker in self.workers.values():  # their last records, cut from the main stream within a deadline
            if worker.cutter is not None:
                worker.cutter.close()
        for batched in self.batched.values():
            batched.close()
        # A reader inside a read or a connect returns when FFmpeg does (a connect cannot be cut
        # short from here): the readers get READERS_STOP_S between them, and one still
        # connecting then is left behind (a daemon thread, gone with the process).
        deadline = time.monotonic() + READERS_STOP_S
        for name, reader in [*self.readers.items(), *self.mains.items()]:
            reader.join(timeout=max(0.0, deadline - time.monotonic()))
            if reader.is_alive():
                self.setup.log("warning", "reader still connecting or reading; not waited for", stream=name,
                               waited_s=READERS_STOP_S)
        for main in self.mains.values():  # the cutters are done with them: let the packets go
            main.close()

    def summary(self) -> dict[str, Any]:
        return {}
