"""`vidfiqa watch --ray`: cameras placed on a Ray cluster, events and metrics gathered on the driver.

    driver (RayWatcher)                               Ray actors (CameraGroup), anywhere
      sinks: events.jsonl + images, webhook, MQTT  <-- poll(): events, metrics, health, logs
      /metrics, /health for every camera               readers + analysis of 1..N cameras
      a dead actor (or node) is placed again            (a Watcher inside, its events relayed)

Each group of cameras (``--ray-cameras-per-actor``, 1 by default) runs in one actor holding its
streams' readers and analysis; the actor declares the CPUs and GPUs its cameras' stream files
ask for (``ray_num_cpus``, ``ray_num_gpus``) and Ray packs actors onto nodes by them.  Cameras
in one actor share their models and batch their calls (pipeline/batching.py).

The driver polls every actor twice a second.  Finished tracks travel to the driver with their
picked crops and are written there, through the same retrying outbox as local cameras
(stream.py ``EventOutbox``), so every sink sees the events of every actor and the images land on
the driver's disk (or the shared storage OUT is on).  An actor's counters are added to the
driver's metrics; when the actor dies its last counts are kept and its replacement's are added
on top.  A poll that fails because the actor or its node died places the group again, after a
delay that doubles per failure in a row (reconnect_min_s .. reconnect_max_s of its first
stream); the new actor connects to the cameras afresh.  Tracks open in a dead actor are lost
with it, like those of a process that is killed.
"""

from __future__ import annotations

import functools
import math
import operator
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from ..select import TrackResult
from .config import StreamConfig
from .metrics import HELP
from .stream import EventOutbox, reconnect_delay
from .watch import Watcher

RELAY_LIMIT = 1000  # events an actor keeps for its driver (the oldest go first)
POLL_EVERY_S = 0.5
STOP_TIMEOUT_S = 60.0  # an actor's shutdown flushes its open tracks: wait this long for it


# ---------------------------------------------------------------------- inside an actor
class EventRelay:
    """An actor's stand-in for the EventWriter: events wait here until the driver collects them."""

    def __init__(self, limit: int = RELAY_LIMIT):
        self._items: deque[tuple[str, TrackResult, float, int, int | None]] = deque()
        self._lock = threading.Lock()
        self.limit = limit
        self.lost: dict[str, int] = {}  # per stream: pushed out before the driver came for them

    def emit(self, stream: str, result: TrackResult, wall_of: Callable[[float], float], segment: int = 1,
             person_id: int | None = None) -> None:
        # A stream's wall clock is its start time plus the frame's seconds (StreamWorker.wall_of):
        # the start travels, the driver adds the seconds.
        with self._lock:
            self._items.append((stream, result, wall_of(0.0), segment, person_id))
            while len(self._items) > self.limit:
                gone = self._items.popleft()[0]
                self.lost[gone] = self.lost.get(gone, 0) + 1

    def take(self) -> list[tuple[str, TrackResult, float, int, int | None]]:
        with self._lock:
            items, self._items = list(self._items), deque()
        return items


class LogRelay:
    """A Logger for an actor: lines wait for the driver, which logs them with the actor's node."""

    def __init__(self, limit: int = 1000):
        self._lines: deque[tuple[str, str, dict]] = deque(maxlen=limit)

    def __call__(self, level: str, message: str, **fields: Any) -> None:
        self._lines.append((level, message, fields))

    def take(self) -> list[tuple[str, str, dict]]:
        lines = []
        while self._lines:
            lines.append(self._lines.popleft())
        return lines


class CameraGroup:
    """The actor: a Watcher for some cameras, with its events and logs relayed to the driver."""

    def __init__(self, configs: list[StreamConfig], threads: int, batch_streams: bool | None = None):
        # The models of this actor use the CPUs it declared, not every core of its node.
        os.environ["VIDFIQA_THREADS"] = str(max(1, threads))
        self.relay, self.logs = EventRelay(), LogRelay()
        self.watcher = Watcher(configs, ".", log=self.logs, events=self.relay, batch_streams=batch_streams)  # type: ignore[arg-type]
        self.watcher.start()

    def poll(self) -> dict:
        import ray

        w = self.watcher
        return {
            "events": self.relay.take(),
            "relay_lost": dict(self.relay.lost),
            "metrics": list(w.metrics.snapshot().items()),
            "health": w.health()["streams"],
            "info": {cfg.name: w._worker_info(cfg.name) for cfg in w.streams},
            "logs": self.logs.take(),
            "ended": w._inputs_ended(),
            "node": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
        }

    def stop(self) -> dict:
        """Stop the cameras (their open tracks become events) and hand over the rest."""
        self.watcher.shutdown()
        return self.poll()


# ---------------------------------------------------------------------- the driver
@dataclass
class Placement:
    """One group of cameras and the actor that runs it now."""

    configs: list[StreamConfig]
    actor: Any = None
    placements: int = 0  # actors started for this group
    failures: int = 0  # deaths in a row (reset once an actor reports)
    retry_at: float | None = None  # when to place it again after a death
    poll_ref: Any = None
    polled_at: float = 0.0
    reported: bool = False  # the current actor has answered a poll
    node: str | None = None
    pid: int | None = None
    ended: bool = False
    last_error: str | None = None
    relay_lost: dict = field(default_factory=dict)  # the current actor's relay losses per stream
    counters: dict = field(default_factory=dict)  # the current actor's last counter values
    base: dict = field(default_factory=dict)  # counts of the actors before it
    health: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.configs]


def _counter(name: str) -> bool:
    return HELP.get(name, ("",))[0] == "counter"


class RayWatcher(Watcher):
    """:class:`Watcher` whose cameras run as Ray actors; sinks, metrics and health stay here."""

    def __init__(self, streams: list[StreamConfig], out_dir, address: str = "auto", cameras_per_actor: int = 1,
                 num_cpus: int | None = None, **kwargs: Any):
        super().__init__(streams, out_dir, **kwargs)
        self.address, self.num_cpus = address, num_cpus
        k = max(1, int(cameras_per_actor))
        self.placements = [Placement(streams[i : i + k]) for i in range(0, len(streams), k)]
        self.outboxes = {cfg.name: EventOutbox(cfg.name, self.events, self.metrics, self.log) for cfg in streams}
        self._ray: Any = None
        self._owns_ray = False

    # ------------------------------------------------------------------ placing
    def start(self) -> None:
        from ..ray_connect import connect_ray

        try:
            import ray

            was_running = ray.is_initialized()
        except ImportError:
            was_running = False
        self._ray = connect_ray(self.address, self.num_cpus)
        self._owns_ray = not was_running and self.address in ("local", "auto") and not os.environ.get("RAY_ADDRESS")
        resources = self._ray.cluster_resources()
        self.log("info", "ray cluster", cpus=resources.get("CPU", 0), gpus=resources.get("GPU", 0),
                 nodes=len([n for n in self._ray.nodes() if n.get("Alive")]))
        for placement in self.placements:
            self._place(placement)

    def _place(self, p: Placement) -> None:
        ray = self._ray
        cpus = sum(c.ray_num_cpus for c in p.configs)
        gpus = sum(c.ray_num_gpus for c in p.configs)
        remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_restarts=0)(CameraGroup)
        p.actor = remote.remote(p.configs, threads=max(1, math.ceil(cpus)), batch_streams=self.batch_streams)
        p.placements += 1
        p.poll_ref, p.retry_at, p.reported, p.polled_at = None, None, False, 0.0
        self.metrics.inc("vidfiqa_ray_placements_total", group=p.names[0])
        self.log("info", "placing cameras", streams=",".join(p.names), cpus=cpus, gpus=gpus, placement=p.placements)

    def _tick(self) -> None:
        now = time.monotonic()
        for p in self.placements:
            if p.actor is None:
                if p.retry_at is not None and now >= p.retry_at and not self.stop.is_set():
                    self._place(p)
                continue
            if p.poll_ref is None:
                if now - p.polled_at >= POLL_EVERY_S:
                    p.poll_ref, p.polled_at = p.actor.poll.remote(), now
                continue
            ready, _ = self._ray.wait([p.poll_ref], timeout=0)
            if not ready:
                continue
            ref, p.poll_ref = p.poll_ref, None
            try:
                news = self._ray.get(ref)
            except Exception as err:  # the actor died (killed, its node lost, its constructor failed)
                self._lost(p, err)
                continue
            self._absorb(p, news)

    def _lost(self, p: Placement, err: BaseException) -> None:
        first = " ".join(str(err).split())[:300]
        p.last_error = f"{type(err).__name__}: {first}"
        for key, value in p.counters.items():  # its counts stay counted; the next actor's add on
            p.base[key] = p.base.get(key, 0.0) + value
        p.counters, p.relay_lost = {}, {}
        p.actor, p.failures = None, p.failures + 1
        cfg = p.configs[0]
        delay = reconnect_delay(p.failures, cfg.reconnect_min_s, cfg.reconnect_max_s)
        p.retry_at = time.monotonic() + delay
        for name in p.names:
            self.metrics.set("vidfiqa_stream_up", 0.0, stream=name)
            self.metrics.set("vidfiqa_worker_up", 0.0, stream=name)
        self.metrics.inc("vidfiqa_ray_actor_deaths_total", group=p.names[0])
        self.log("error", "camera actor lost, placing it again", streams=",".join(p.names), node=p.node, error=p.last_error,
                 retry_in_s=round(delay, 2))

    def _absorb(self, p: Placement, news: dict) -> None:
        p.reported, p.failures = True, 0
        p.node, p.pid, p.ended = news["node"], news["pid"], news["ended"]
        p.health, p.info = news["health"], news["info"]
        for level, message, fields in news["logs"]:
            self.log(level, message, node=p.node[:12], **fields)
        for (name, labels), value in news["metrics"]:
            key = (name, labels)
            if _counter(name):
                # Summed over every group (the batching counters carry no stream label) and over
                # the actors each group has had.
                p.counters[key] = value
                value = sum(q.base.get(key, 0.0) + q.counters.get(key, 0.0) for q in self.placements)
            self.metrics.set(name, value, **dict(labels))
        for name, lost in news["relay_lost"].items():
            if lost > p.relay_lost.get(name, 0):
                self.metrics.inc("vidfiqa_events_lost_total", lost - p.relay_lost.get(name, 0), stream=name)
        p.relay_lost = news["relay_lost"]
        for stream, result, wall_start, segment, person_id in news["events"]:
            self.outboxes[stream].add(result, segment, person_id, functools.partial(operator.add, wall_start))
        for outbox in self.outboxes.values():
            outbox.write_due()

    # ------------------------------------------------------------------ reporting
    def _inputs_ended(self) -> bool:
        return all(p.ended for p in self.placements)

    def _placement_of(self, name: str) -> Placement:
        return next(p for p in self.placements if name in p.names)

    def _worker_info(self, name: str) -> dict:
        info = self._placement_of(name).info.get(name)
        return dict(info) if info else {"worker_error": None, "worker_error_at": None, "frame_latency_s": None}

    def health(self) -> dict:
        streams = {}
        for p in self.placements:
            alive = p.actor is not None and p.reported
            for name in p.names:
                state = dict(p.health.get(name, {}))
                if not alive:  # dead, or not yet reporting: what it said last is no longer true
                    state.update(up=False, worker_up=False)
                state.setdefault("up", False)
                state.setdefault("worker_up", False)
                state["events_pending"] = len(self.outboxes[name])
                state["ray"] = {"actor_up": alive, "node": p.node, "pid": p.pid, "placements": p.placements, "last_error": p.last_error}
                streams[name] = state
        healthy = [s["up"] and s["worker_up"] for s in streams.values()]
        return {"ok": any(healthy), "degraded": not all(healthy) or any(s["events_pending"] for s in streams.values()),
                "uptime_s": round(time.time() - self.started, 1), "streams": streams}

    def summary(self) -> dict:
        summary = super().summary()
        summary["ray"] = {
            "address": self.address,
            "groups": [{"streams": p.names, "placements": p.placements, "node": p.node, "last_error": p.last_error}
                       for p in self.placements],
        }
        return summary

    # ------------------------------------------------------------------ stopping
    def shutdown(self) -> None:
        self.stop.set()
        ray = self._ray
        if ray is not None:
            live = [p for p in self.placements if p.actor is not None]
            stops = {p.actor.stop.remote(): p for p in live}
            ready, _ = ray.wait(list(stops), num_returns=len(stops), timeout=STOP_TIMEOUT_S) if stops else ([], [])
            for ref in ready:
                p = stops[ref]
                try:
                    self._absorb(p, ray.get(ref))
                except Exception as err:
                    self.log("error", "camera actor failed while stopping", streams=",".join(p.names), error=str(err)[:300])
            for p in live:
                ray.kill(p.actor)
                p.actor = None
        for outbox in self.outboxes.values():
            outbox.close()
        self._close_sinks()
        if ray is not None and self._owns_ray:
            ray.shutdown()
        self._write_summary()
