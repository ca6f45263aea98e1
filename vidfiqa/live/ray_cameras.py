"""`vidfiqa watch --ray`: cameras placed on a Ray cluster, their records gathered on the driver.

    driver (Watcher + RayCameras)                     Ray actors (CameraGroup), anywhere
      sinks: event folders, events.jsonl, webhook  <-- poll(): records, metrics, health, logs
      MQTT; /metrics, /health for every camera          LocalCameras of 1..N cameras whose
      a dead actor (or node) is placed again            only sink relays records to the driver

Each group of cameras (``--ray-cameras-per-actor``, 1 by default) runs in one actor holding its
streams' readers and analysis (a :class:`~vidfiqa.live.cameras.LocalCameras`); the actor
declares the CPUs and GPUs its cameras' stream files ask for (``ray_num_cpus``,
``ray_num_gpus``), its models use that many threads, and Ray packs actors onto nodes by them.
Cameras in one actor share their models and batch their calls (pipeline/batching.py).

The driver polls every actor twice a second.  Finished tracks travel to the driver as
:class:`~vidfiqa.select.chain.TrackRecord` with their picked crops and go through the driver's
outbox of their stream (sinks/outbox.py), so every sink sees the records of every actor and the
images land on the driver's disk (or the shared storage OUT is on).  An actor's counters are
added to the driver's metrics; when the actor dies its last counts are kept and its
replacement's are added on top.  A poll that fails because the actor or its node died places the
group again, after a delay that doubles per failure in a row (reconnect_min_s ..
reconnect_max_s of its first stream); the new actor connects to the cameras afresh.  Tracks open
in a dead actor are lost with it, like those of a process that is killed.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..sinks.outbox import SinkOutbox
from ..sinks.relay import RelaySink
from .cameras import CameraSetup, LocalCameras
from .config import StreamConfig
from .metrics import HELP, Metrics
from .stream import reconnect_delay

POLL_EVERY_S = 0.5
STOP_TIMEOUT_S = 60.0  # an actor's shutdown flushes its open tracks: wait this long for it


# ---------------------------------------------------------------------- inside an actor
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
    """The actor: :class:`LocalCameras` for some cameras, their records and logs relayed to the driver."""

    def __init__(self, configs: list[StreamConfig], threads: int, batch_streams: bool | None = None):
        self.relay, self.logs, self.metrics = RelaySink(), LogRelay(), Metrics()
        # The relay never refuses a record; the outboxes' own counts (events written) are the
        # driver's to keep, so they count into a Metrics that is never reported.
        unreported = Metrics()
        outboxes = {cfg.name: SinkOutbox(cfg.name, [self.relay], unreported, self.logs) for cfg in configs}
        setup = CameraSetup(configs, outboxes, self.metrics, self.logs, threading.Event(), batch_streams=batch_streams)
        # The models of this actor use the CPUs it declared, not every core of its node.
        self.cameras = LocalCameras(setup, threads=max(1, threads))
        self.cameras.start()

    def poll(self) -> dict:
        import ray

        cameras = self.cameras
        return {
            "records": self.relay.take(),
            "relay_lost": dict(self.relay.lost),
            "metrics": list(self.metrics.snapshot().items()),
            "health": cameras.health(),
            "info": {cfg.name: cameras.stream_info(cfg.name) for cfg in cameras.setup.streams},
            "logs": self.logs.take(),
            "ended": cameras.ended(),
            "node": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
        }

    def stop(self) -> dict:
        """Stop the cameras (their open tracks become records) and hand over the rest."""
        self.cameras.shutdown()
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


class RayCameras:
    """A :class:`~vidfiqa.live.cameras.CameraBackend` whose cameras run as Ray actors."""

    def __init__(self, setup: CameraSetup, address: str = "auto", cameras_per_actor: int = 1, num_cpus: int | None = None):
        self.setup = setup
        self.address, self.num_cpus = address, num_cpus
        k = max(1, int(cameras_per_actor))
        streams = setup.streams
        self.placements = [Placement(streams[i : i + k]) for i in range(0, len(streams), k)]
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
        self.setup.log("info", "ray cluster", cpus=resources.get("CPU", 0), gpus=resources.get("GPU", 0),
                       nodes=len([n for n in self._ray.nodes() if n.get("Alive")]))
        for placement in self.placements:
            self._place(placement)

    def _place(self, p: Placement) -> None:
        ray = self._ray
        cpus = sum(c.ray_num_cpus for c in p.configs)
        gpus = sum(c.ray_num_gpus for c in p.configs)
        remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_restarts=0)(CameraGroup)
        p.actor = remote.remote(p.configs, threads=max(1, math.ceil(cpus)), batch_streams=self.setup.batch_streams)
        p.placements += 1
        p.poll_ref, p.retry_at, p.reported, p.polled_at = None, None, False, 0.0
        self.setup.metrics.inc("vidfiqa_ray_placements_total", group=p.names[0])
        self.setup.log("info", "placing cameras", streams=",".join(p.names), cpus=cpus, gpus=gpus, placement=p.placements)

    def tick(self) -> None:
        now = time.monotonic()
        for p in self.placements:
            if p.actor is None:
                if p.retry_at is not None and now >= p.retry_at and not self.setup.stop.is_set():
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
        metrics = self.setup.metrics
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
            metrics.set("vidfiqa_stream_up", 0.0, stream=name)
            metrics.set("vidfiqa_worker_up", 0.0, stream=name)
        metrics.inc("vidfiqa_ray_actor_deaths_total", group=p.names[0])
        self.setup.log("error", "camera actor lost, placing it again", streams=",".join(p.names), node=p.node, error=p.last_error,
                       retry_in_s=round(delay, 2))

    def _absorb(self, p: Placement, news: dict) -> None:
        metrics, outboxes = self.setup.metrics, self.setup.outboxes
        p.reported, p.failures = True, 0
        p.node, p.pid, p.ended = news["node"], news["pid"], news["ended"]
        p.health, p.info = news["health"], news["info"]
        for level, message, fields in news["logs"]:
            self.setup.log(level, message, node=p.node[:12], **fields)
        for (name, labels), value in news["metrics"]:
            key = (name, labels)
            if _counter(name):
                # Summed over every group (the batching counters carry no stream label) and over
                # the actors each group has had.
                p.counters[key] = value
                value = sum(q.base.get(key, 0.0) + q.counters.get(key, 0.0) for q in self.placements)
            metrics.set(name, value, **dict(labels))
        for name, lost in news["relay_lost"].items():
            if lost > p.relay_lost.get(name, 0):
                metrics.inc("vidfiqa_events_lost_total", lost - p.relay_lost.get(name, 0), stream=name)
        p.relay_lost = news["relay_lost"]
        for record in news["records"]:
            outboxes[str(record.stream)].add(record)
        for outbox in outboxes.values():
            outbox.write_due()

    # ------------------------------------------------------------------ reporting
    def ended(self) -> bool:
        return all(p.ended for p in self.placements)

    def _placement_of(self, name: str) -> Placement:
        return next(p for p in self.placements if name in p.names)

    def stream_info(self, name: str) -> dict:
        info = self._placement_of(name).info.get(name)
        return dict(info) if info else {"worker_error": None, "worker_error_at": None, "frame_latency_s": None}

    def health(self) -> dict[str, dict[str, Any]]:
        streams = {}
        for p in self.placements:
            alive = p.actor is not None and p.reported
            for name in p.names:
                state = dict(p.health.get(name, {}))
                if not alive:  # dead, or not yet reporting: what it said last is no longer true
                    state.update(up=False, worker_up=False)
                state.setdefault("up", False)
                state.setdefault("worker_up", False)
                state["ray"] = {"actor_up": alive, "node": p.node, "pid": p.pid, "placements": p.placements, "last_error": p.last_error}
                streams[name] = state
        return streams

    def summary(self) -> dict[str, Any]:
        return {"ray": {
            "address": self.address,
            "groups": [{"streams": p.names, "placements": p.placements, "node": p.node, "last_error": p.last_error}
                       for p in self.placements],
        }}

    # ------------------------------------------------------------------ stopping
    def shutdown(self) -> None:
        self.setup.stop.set()
        ray = self._ray
        if ray is None:
            return
        live = [p for p in self.placements if p.actor is not None]
        stops = {p.actor.stop.remote(): p for p in live}
        ready, _ = ray.wait(list(stops), num_returns=len(stops), timeout=STOP_TIMEOUT_S) if stops else ([], [])
        for ref in ready:
            p = stops[ref]
            try:
                self._absorb(p, ray.get(ref))
            except Exception as err:
                self.setup.log("error", "camera actor failed while stopping", streams=",".join(p.names), error=str(err)[:300])
        for p in live:
            ray.kill(p.actor)
            p.actor = None
        if self._owns_ray:
            ray.shutdown()
