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
from .event_folders import EventFolderSink, Retention
from .event_log import EventLogSink

if TYPE_CHECKING:
    from ..live.metrics import Metrics


@dataclass(frozen=True)
class WatchOutputs:
    """What `vidfiqa watch`'s options say about its outputs."""

    retention: Retention = Retention()
    webhook_url: str | None = None
    webhook_timeout_s: float = 5.0
    webhook_headers: dict[str, str] | None = None
    mqtt_url: str | None = None
    mqtt_topic: str = "vidfiqa"


def watch_sinks(out_dir: str | Path, outputs: WatchOutputs, metrics: "Metrics", log: Callable[..., None]) -> list[TrackSink]:
    """The sinks of `vidfiqa watch`, in the order each record reaches them: its images before the
    log line that announces them, and both before anything leaves the machine."""
    sinks: list[TrackSink] = [EventFolderSink(out_dir, outputs.retention), EventLogSink(out_dir)]
    if outputs.webhook_url:
        from .webhook import WebhookSink

        sinks.append(WebhookSink(outputs.webhook_url, metrics, timeout_s=outputs.webhook_timeout_s, log=log, headers=outputs.webhook_headers))
    if outputs.mqtt_url:
        from .mqtt import MqttSink

        sinks.append(MqttSink(outputs.mqtt_url, metrics, topic=outputs.mqtt_topic, log=log))
    return sinks


__all__ = ["EventFolderSink", "EventLogSink", "Retention", "TrackSink", "WatchOutputs", "close_all", "watch_sinks"]
