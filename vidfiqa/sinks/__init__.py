"""Where finished tracks go.  Every output is a :class:`~vidfiqa.sinks.base.TrackSink`
(``emit(record)``, ``close()``, ``summary()``) that takes the end-of-track chain's
:class:`~vidfiqa.select.chain.TrackRecord`; ``docs/sinks.md`` says what a sink may rely on and
shows how to write one.

* `vidfiqa run`: :class:`GallerySink` (``gallery.py``), then any sinks a caller adds;
* `vidfiqa watch`: the list :func:`watch_sinks` makes - add a new sink there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .base import TrackSink, close_all
from .event_folders import EventFolderSink, EventIndex, Retention
from .event_log import EventLogSink

if TYPE_CHECKING:
    from ..live.metrics import Metrics


@dataclass(frozen=True)
class WatchOutputs:
    """What `vidfiqa watch`'s options say about its outputs."""

    retention: Retention = Retention()
    store: bool = True  # OUT/events.sqlite (sinks/event_store.py); --no-store turns it off
    log_max_mb: float | None = 100.0  # events.jsonl is rotated past this size (None: never for size)
    log_keep: int = 5  # rotated events.jsonl files kept
    log_daily: bool = False  # rotate events.jsonl at the first event of each UTC day too
    webhook_url: str | None = None
    webhook_timeout_s: float = 5.0
    webhook_headers: dict[str, str] | None = None
    mqtt_url: str | None = None
    mqtt_topic: str = "vidfiqa"


def watch_sinks(out_dir: str | Path, outputs: WatchOutputs, metrics: "Metrics", log: Callable[..., None]) -> list[TrackSink]:
    """The sinks of `vidfiqa watch`, in the order each record reaches them: its images, then its
    row in the event store, then the log line that announces them (an event in the log is in the
    store: sinks/event_store.py), and all of them before anything leaves the machine."""
    indexes: list[EventIndex] = []
    store: list[TrackSink] = []
    if outputs.store:
        from .event_store import EventStoreSink

        store_sink = EventStoreSink(out_dir, log=log)
        indexes.append(store_sink)  # rows are pruned with their images, before them
        store.append(store_sink)
    max_bytes = None if outputs.log_max_mb is None else int(outputs.log_max_mb * 1e6)
    sinks: list[TrackSink] = [EventFolderSink(out_dir, outputs.retention, indexes=indexes), *store,
                              EventLogSink(out_dir, max_bytes=max_bytes, keep=outputs.log_keep, daily=outputs.log_daily)]
    if outputs.webhook_url:
        from .webhook import WebhookSink

        sinks.append(WebhookSink(outputs.webhook_url, metrics, timeout_s=outputs.webhook_timeout_s, log=log, headers=outputs.webhook_headers))
    if outputs.mqtt_url:
        from .mqtt import MqttSink

        sinks.append(MqttSink(outputs.mqtt_url, metrics, topic=outputs.mqtt_topic, log=log))
    return sinks


__all__ = ["EventFolderSink", "EventIndex", "EventLogSink", "Retention", "TrackSink", "WatchOutputs", "close_all", "watch_sinks"]
