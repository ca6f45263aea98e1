"""``--webhook URL``: every event of `vidfiqa watch` POSTed as JSON (the ``events.jsonl`` record),
from one background thread with a bounded queue, a timeout and retries, so a slow or dead
receiver never holds up a camera."""

from __future__ import annotations

import json
import os
import queue
import threading
import urllib.error
import urllib.request
from typing import Any, Callable

from ..errors import ConfigError
from ..export.entries import event_record
from ..live.metrics import Metrics
from ..select.chain import TrackRecord


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
    line = os.environ.get(variable)
    if not line:
        raise ConfigError(f"--webhook-header-env {variable}: the environment variable is not set")
    name, sep, value = line.partition(":")
    if not sep or not name.strip() or any(c in line for c in "\r\n") or not name.strip().replace("-", "").isalnum():
        raise ConfigError(f"--webhook-header-env {variable}: must hold one header as 'Name: value'")
    return {name.strip(): value.strip()}


class WebhookSink:
    """POSTs events as JSON from one background thread (a :class:`~vidfiqa.sinks.base.TrackSink`).

    A bounded queue (the oldest event is dropped when it is full), ``timeout_s`` per request and
    ``retries`` attempts with doubling delays: the cameras never wait for the receiver.
    """

    name = "webhook"

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

    def emit(self, record: TrackRecord) -> None:
        """Queue an event for the receiver; never blocks, never raises."""
        if record.is_event:
            self.put(event_record(record))

    def summary(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "failures": int(self.metrics.get("vidfiqa_webhook_failures_total")),
                "dropped": int(self.metrics.get("vidfiqa_webhook_dropped_total"))}

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
        body = json.dumps(event, allow_nan=False).encode()
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
