"""Best-shot events and where they go.

When a track ends (or a long one reaches ``max_track_s``) its selection becomes an event:

* images and ``event.json`` in ``OUT/events/<stream>/<event_id>/`` - a rolling gallery, pruned
  per stream by count, age and total size (``--keep-count``, ``--keep-days``, ``--keep-mb``);
* one line in ``OUT/events.jsonl`` (appended, flushed and fsynced per event);
* optionally a JSON POST to a webhook, from its own thread and bounded queue, with a timeout and
  retries, so a slow or dead receiver never holds up a camera.

Event fields reuse the manifest's selected-frame fields (docs/manifest.md) plus the stream
name and wall-clock times; paths are relative to OUT.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import OutputError
from ..export.entries import EVENT_SCHEMA, event_record
from ..export.events import write_event_folder
from ..export.images import encode_image, pick_images
from ..select import TrackResult

if TYPE_CHECKING:
    from .mqtt import MqttSink
from .metrics import Metrics

__all__ = ["EVENT_SCHEMA", "EventWriter", "Retention", "WebhookSink", "iso"]


def iso(wall: float) -> str:
    return dt.datetime.fromtimestamp(wall, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Retention:
    keep_count: int | None = 1000  # events per stream
    keep_days: float | None = 30.0
    keep_mb: float | None = 2000.0  # per stream


class EventWriter:
    """Writes events (images, event.json, events.jsonl) and prunes the rolling gallery."""

    def __init__(self, out_dir: str | Path, retention: Retention, metrics: Metrics, webhook: "WebhookSink | None" = None,
                 log: Callable[..., None] | None = None, mqtt: "MqttSink | None" = None):
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.retention = retention
        self.metrics = metrics
        self.webhook = webhook
        self.mqtt = mqtt
        self.log = log or (lambda *a, **k: None)
        self._jsonl_lock = threading.Lock()
        self._kept: dict[str, deque] = {}  # stream -> deque[(path, created, bytes)], oldest first
        self._kept_lock = threading.Lock()

    def emit(self, stream: str, result: TrackResult, wall_of: Callable[[float], float], segment: int = 1,
             person_id: int | None = None) -> dict:
        """Turn a finished track into an event: its folder, a JSONL line, the webhook."""
        now = time.time()
        stamp = dt.datetime.fromtimestamp(now, dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        event_id = base = f"{stream}-{stamp}-{result.track_id:04d}-{segment}"
        # Track ids start again when a camera's analysis restarts: an id already used within
        # the same second gets a suffix, so no event's folder replaces another's.
        n = 1
        while (self.out / "events" / stream / event_id).exists():
            n += 1
            event_id = f"{base}-{n}"
        folder = (Path("events") / stream / event_id).as_posix()
        event = event_record(result, stream, event_id, folder, segment, wall_of, now, iso, person_id=person_id)
        try:
            size = write_event_folder(self.out, folder, event, result)
            text = json.dumps(event, separators=(",", ":"))
            with self._jsonl_lock, open(self.out / "events.jsonl", "a", encoding="utf-8") as handle:
                handle.write(text + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        except (OSError, OutputError) as err:
            # Nothing half-written stays behind: the caller retries the whole event later.
            shutil.rmtree(self.out / folder, ignore_errors=True)
            raise err if isinstance(err, OutputError) else OutputError.of(err, self.out / "events.jsonl") from err
        self.metrics.inc("vidfiqa_events_total", stream=stream)
        self.metrics.set("vidfiqa_event_latency_seconds", event["latency_s"], stream=stream)
        self._keep(stream, self.out / folder, now, size)
        if self.webhook is not None:
            self.webhook.put(event)
        if self.mqtt is not None:
            images = pick_images(result)
            self.mqtt.publish_event(stream, event, encode_image(images[0][0], ".jpg") if images else None)
        return event

    # ------------------------------------------------------------------ rolling gallery
    def _keep(self, stream: str, folder: Path, created: float, size: int) -> None:
        with self._kept_lock:
            kept = self._kept.get(stream)
            if kept is None:
                kept = self._kept[stream] = self._scan(stream, exclude=folder)
            kept.append((folder, created, size))
            r = self.retention
            total = sum(item[2] for item in kept)
            while kept and len(kept) > 1 and (
                (r.keep_count is not None and len(kept) > r.keep_count)
                or (r.keep_days is not None and created - kept[0][1] > r.keep_days * 86400)
                or (r.keep_mb is not None and total > r.keep_mb * 1e6)
            ):
                old, _, old_size = kept.popleft()
                total -= old_size
                shutil.rmtree(old, ignore_errors=True)

    def _scan(self, stream: str, exclude: Path) -> deque:
        """Events already on disk from an earlier run count towards the limits."""
        root = self.out / "events" / stream
        found = []
        for folder in root.iterdir() if root.is_dir() else []:
            if folder == exclude or not folder.is_dir():
                continue
            stat = folder.stat()
            found.append((folder, stat.st_mtime, sum(f.stat().st_size for f in folder.iterdir() if f.is_file())))
        return deque(sorted(found, key=lambda item: item[1]))


def webhook_target(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its user info, and the Authorization header that carries it (if any).
    urllib would otherwise look the host up as ``user:password@host``."""
    import base64
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None:
        return url, {}
    host = parts.netloc.rpartition("@")[2]
    credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    plain = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return plain, {"Authorization": "Basic " + base64.b64encode(credentials).decode("ascii")}


def header_from_env(variable: str) -> dict[str, str]:
    """``NAME: value`` from the environment variable ``variable`` (so a token stays out of the
    command line, where ``ps`` shows it)."""
    from ..errors import ConfigError

    line = os.environ.get(variable)
    if not line:
        raise ConfigError(f"--webhook-header-env {variable}: the environment variable is not set")
    name, sep, value = line.partition(":")
    if not sep or not name.strip() or any(c in line for c in "\r\n") or not name.strip().replace("-", "").isalnum():
        raise ConfigError(f"--webhook-header-env {variable}: must hold one header as 'Name: value'")
    return {name.strip(): value.strip()}


class WebhookSink:
    """POSTs events as JSON from one background thread.

    A bounded queue (the oldest event is dropped when it is full), ``timeout_s`` per request and
    ``retries`` attempts with doubling delays: the cameras never wait for the receiver.
    """

    def __init__(self, url: str, metrics: Metrics, timeout_s: float = 5.0, retries: int = 3, queue_size: int = 100,
                 log: Callable[..., None] | None = None, headers: dict[str, str] | None = None):
        """``url`` may carry ``user:password@``: it is sent as HTTP basic auth, not as part of
        the host name.  ``headers`` are added to every request (a token, say)."""
        self.url, self.headers = webhook_target(url)
        self.headers.update(headers or {})
        self.metrics, self.timeout_s, self.retries = metrics, timeout_s, retries
        self.log = log or (lambda *a, **k: None)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self.delivered = 0
        metrics.gauge("vidfiqa_webhook_queue_depth", self._queue.qsize)
        self._thread = threading.Thread(target=self._run, name="vidfiqa-webhook", daemon=True)
        self._thread.start()

    def put(self, event: dict) -> None:
        while True:
            try:
                self._queue.put_nowait(event)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.metrics.inc("vidfiqa_webhook_dropped_total")
                except queue.Empty:
                    pass

    def _run(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            try:
                event = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self._deliver(event)

    def _deliver(self, event: dict) -> None:
        body = json.dumps(event).encode()
        delay = 0.5
        for attempt in range(1, self.retries + 1):
            request = urllib.request.Request(self.url, data=body, method="POST", headers={"Content-Type": "application/json", **self.headers})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    if 200 <= response.status < 300:
                        self.delivered += 1
                        return
                    error = f"HTTP {response.status}"
            except (urllib.error.URLError, OSError, ValueError) as err:
                error = str(getattr(err, "reason", err))
            if attempt < self.retries and not self._stop.wait(delay):
                delay *= 2
                continue
            if attempt < self.retries:  # stopping: give up the retries
                break
        self.metrics.inc("vidfiqa_webhook_failures_total")
        self.log("warning", "webhook delivery failed", event_id=event.get("event_id"), error=error)

    def close(self, deadline_s: float = 5.0) -> None:
        """Deliver what is queued for up to ``deadline_s``, then give up on the rest."""
        self._stop.set()
        self._thread.join(timeout=deadline_s)
