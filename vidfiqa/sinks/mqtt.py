"""MQTT output for `vidfiqa watch` (``--mqtt mqtt://[user:pass@]HOST:PORT``), with paho-mqtt.

Topics, under ``--mqtt-topic`` (default ``vidfiqa``):

* ``<topic>/<stream>/event``: every event as JSON (the events.jsonl record), QoS 1;
* ``<topic>/<stream>/snapshot``: the event's best crop as JPEG bytes, QoS 1, retained (what Home
  Assistant's MQTT camera shows);
* ``<topic>/availability``: ``online`` once connected, ``offline`` at shutdown, both retained, and
  ``offline`` as the last will, so a crash or a lost connection says so too.

paho's network loop runs in its own thread and reconnects with backoff (1 s doubling to 30 s).
Publishing never waits for the broker: messages published while the broker is away wait in
paho's outgoing queue, bounded to ``queue_size`` messages, and go out when the connection is back;
beyond the bound a message is dropped and counted (``vidfiqa_mqtt_dropped_total``).

What is counted, per kind (events, snapshots): ``delivered`` (the broker acknowledged it: QoS 1's
PUBACK), ``queued`` (handed to paho, not acknowledged yet), ``dropped`` (refused: the queue was
full) and ``lost`` (still queued when the watch ended).  A publish made while there is no
connection (the broker away, a wrong password) is queued, not delivered: it used to be counted as
published though nothing reached the broker.  The summary names the lost events.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable
from urllib.parse import unquote

from ..errors import ConfigError
from ..export.entries import event_record, native_face_of
from ..export.images import encode_image, pick_images
from ..live.metrics import Metrics
from ..redact import checked_url, redact_url
from ..select.chain import TrackRecord

DEFAULT_PORT, DEFAULT_TLS_PORT = 1883, 8883
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30
MAX_LISTED_LOST = 100  # lost events named in the summary (all are counted)


@dataclass
class Deliveries:
    """What became of one kind of message (see the module docstring)."""

    delivered: int = 0
    queued: int = 0
    dropped: int = 0
    lost: int = 0


def parse_mqtt_url(url: str) -> dict[str, Any]:
    """``mqtt://[user:pass@]host[:port]`` (``mqtts://`` for TLS) -> connection settings; a bad URL
    is a one-line ConfigError that never shows the password."""
    parts = checked_url(url, ("mqtt", "mqtts"), f"--mqtt {redact_url(url)!r} (mqtt://[user:pass@]HOST[:PORT], mqtts:// for TLS)")
    port = parts.port
    tls = parts.scheme.lower() == "mqtts"
    return {"host": parts.hostname, "port": port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT), "tls": tls,
            "username": unquote(parts.username) if parts.username is not None else None,
            "password": unquote(parts.password) if parts.password is not None else None}


def check_topic(topic: str) -> str:
    if not topic or any(c in topic for c in "#+\0") or topic.startswith("/") or topic.endswith("/"):
        raise ConfigError(f"--mqtt-topic {topic!r}: a topic prefix without wildcards (+, #) or leading/trailing /")
    return topic


class MqttSink:
    """Publishes events, snapshots and availability to one broker (see the module docstring); a
    :class:`~vidfiqa.sinks.base.TrackSink`."""

    name = "mqtt"

    def __init__(self, url: str, metrics: Metrics, topic: str = "vidfiqa", queue_size: int = 1000,
                 log: Callable[..., None] | None = None):
        import paho.mqtt.client as mqtt

        self.settings = parse_mqtt_url(url)
        self.topic = check_topic(topic)
        self.shown = redact_url(url)
        self.metrics = metrics
        self.log = log or (lambda *a, **k: None)
        self.counts = {"events": Deliveries(), "snapshots": Deliveries()}
        self.lost_events: list[str] = []
        # mid -> (kind, event id) of every message handed to paho and not acknowledged yet; acks
        # that beat the publish call back (a fast broker) wait in _acked_early.  _count_lock is
        # never held while calling paho, whose network thread holds its own locks in on_publish.
        self._pending: dict[int, tuple[str, str | None]] = {}
        self._acked_early: set[int] = set()
        self._count_lock = threading.Lock()
        self._connected = threading.Event()
        client_id = f"vidfiqa-{socket.gethostname()}-{os.getpid()}"[:64]
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if self.settings["username"] is not None:
            self.client.username_pw_set(self.settings["username"], self.settings["password"])
        if self.settings["tls"]:
            self.client.tls_set()
        self.client.max_queued_messages_set(queue_size)
        self.client.reconnect_delay_set(min_delay=RECONNECT_MIN_S, max_delay=RECONNECT_MAX_S)
        self.client.will_set(self.availability_topic, "offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        metrics.gauge("vidfiqa_mqtt_connected", lambda: 1.0 if self._connected.is_set() else 0.0)
        metrics.gauge("vidfiqa_mqtt_queued", lambda: float(self.queued()))
        # connect_async + loop_start: a broker that is down at start delays nothing; paho keeps
        # trying in its own thread.
        self.client.connect_async(self.settings["host"], self.settings["port"], keepalive=30)
        self.client.loop_start()

    @property
    def availability_topic(self) -> str:
        return f"{self.topic}/availability"

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            self.log("warning", "mqtt connection refused", broker=self.shown, reason=str(reason_code))
            return
        self._connected.set()
        self._send(self.availability_topic, "online", retain=True, kind=None)
        self.log("info", "mqtt connected", broker=self.shown)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if self._connected.is_set():
            self.log("warning", "mqtt disconnected, reconnecting", broker=self.shown, reason=str(reason_code))
        self._connected.clear()

    def emit(self, record: TrackRecord) -> None:
        """An event and its best crop as the stream's snapshot; never blocks, never raises."""
        if not record.is_event:
            return
        assert record.stream is not None
        images = pick_images(record.result)
        native = native_face_of(record.result, 0)  # cut from the main stream: the face at full size
        snapshot = native if native is not None else (encode_image(images[0][0], ".jpg") if images else None)
        self.publish_event(record.stream, event_record(record), snapshot)

    def summary(self) -> dict[str, Any]:
        with self._count_lock:
            return {"broker": self.shown, **{kind: asdict(c) for kind, c in self.counts.items()},
                    "lost_events": self.lost_events[:MAX_LISTED_LOST]}

    def publish_event(self, stream: str, event: dict, snapshot_jpeg: bytes | None) -> None:
        """Queue an event (and its snapshot) for the broker; never blocks."""
        event_id = event.get("event_id")
        self._send(f"{self.topic}/{stream}/event", json.dumps(event, separators=(",", ":"), allow_nan=False), retain=False,
                   kind="events", event_id=event_id)
        if snapshot_jpeg:
            self._send(f"{self.topic}/{stream}/snapshot", snapshot_jpeg, retain=True, kind="snapshots", event_id=event_id)

    def _send(self, topic: str, payload: str | bytes, retain: bool, kind: str | None, event_id: str | None = None) -> None:
        """Hand one QoS 1 message to paho and count it (``kind`` None: availability, not counted)."""
        import paho.mqtt.client as mqtt

        info = self.client.publish(topic, payload, qos=1, retain=retain)
        queued = info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)  # NO_CONN: kept until the connection is back
        with self._count_lock:
            if kind is None:
                self._acked_early.discard(info.mid)
                return
            counts = self.counts[kind]
            if not queued:  # the outgoing queue is full (the broker has been away a long time)
                counts.dropped += 1
            elif info.mid in self._acked_early:
                self._acked_early.discard(info.mid)
                counts.delivered += 1
            else:
                self._pending[info.mid] = (kind, event_id)
                counts.queued += 1
        self.metrics.inc("vidfiqa_mqtt_messages_total", kind=kind, outcome="queued" if queued else "dropped")
        if not queued:
            self.metrics.inc("vidfiqa_mqtt_dropped_total")

    def _on_publish(self, client, userdata, mid, reason_code=None, properties=None) -> None:
        """paho's network thread: the broker acknowledged message ``mid`` (PUBACK)."""
        with self._count_lock:
            entry = self._pending.pop(mid, None)
            if entry is None:
                self._acked_early.add(mid)
                return
            counts = self.counts[entry[0]]
            counts.queued -= 1
            counts.delivered += 1
        self.metrics.inc("vidfiqa_mqtt_delivered_total", kind=entry[0])

    def queued(self) -> int:
        """Messages handed to paho and not acknowledged yet."""
        with self._count_lock:
            return len(self._pending)

    def close(self, deadline_s: float = 5.0) -> None:
        """Give queued messages up to ``deadline_s`` to be acknowledged, say ``offline``
        (retained), stop; what is still queued then is counted lost and its events named."""
        deadline = time.monotonic() + deadline_s
        while self._connected.is_set() and self.queued() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._connected.is_set():
            info = self.client.publish(self.availability_topic, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=max(0.5, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
        with self._count_lock:
            for kind, event_id in self._pending.values():
                counts = self.counts[kind]
                counts.queued -= 1
                counts.lost += 1
                self.metrics.inc("vidfiqa_mqtt_lost_total", kind=kind)
                if kind == "events" and event_id is not None:
                    self.lost_events.append(event_id)
            self._pending.clear()
        lost = self.counts["events"].lost
        if lost:
            self.log("warning", "mqtt events never acknowledged by the broker", broker=self.shown, lost=lost)
