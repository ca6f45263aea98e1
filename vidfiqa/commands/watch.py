"""`vidfiqa watch`: live cameras -> best-shot events."""

from __future__ import annotations

import click


@click.command("watch")
@click.argument("streams", nargs=-1, required=True)
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), required=True, help="Folder for events.jsonl, events/ and watch_summary.json.")
@click.option("-c", "--config", "config", default=None, help="Pipeline preset (default, fast, accurate) or TOML the streams' [pipeline] tables override.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=9107, show_default=True, help="Port on 127.0.0.1 for the live page (/), its JSON API (/api/...), /metrics (Prometheus) and /health; 0 picks a free one.")
@click.option("--no-metrics", is_flag=True, help="Do not serve metrics, /health nor the live page.")
@click.option("--webhook", default=None, help="POST every event as JSON to this URL (user:password@ in it is sent as HTTP basic auth).")
@click.option("--webhook-header-env", default=None, metavar="VAR", help="Add the header held in environment variable VAR ('Name: value', e.g. a bearer token) to every webhook request.")
@click.option("--mqtt", "mqtt_url", default=None, metavar="URL", help="Publish events, snapshots and availability to this MQTT broker: mqtt://[user:pass@]HOST:PORT (mqtts:// for TLS).")
@click.option("--mqtt-topic", default="vidfiqa", show_default=True, help="Topic prefix: <topic>/<stream>/event, <topic>/<stream>/snapshot, <topic>/availability.")
@click.option("--webhook-timeout", type=click.FloatRange(0.1, 600), default=5.0, show_default=True, help="Seconds per webhook request.")
@click.option("--keep-count", type=click.IntRange(1), default=1000, show_default=True, help="Events kept per stream in the rolling gallery.")
@click.option("--keep-days", type=click.FloatRange(0, min_open=True), default=30.0, show_default=True, help="Oldest event kept, days.")
@click.option("--keep-mb", type=click.FloatRange(0, min_open=True), default=2000.0, show_default=True, help="Gallery size kept per stream, MB.")
@click.option("--no-store", is_flag=True, help="Do not keep the event store (DIR/events.sqlite, what `vidfiqa events` and the live page read).")
@click.option("--log-max-mb", type=click.FloatRange(0, min_open=True), default=100.0, show_default=True, help="Rotate events.jsonl when it would grow past this size, MB.")
@click.option("--log-keep", type=click.IntRange(0), default=5, show_default=True, help="Rotated events.jsonl files kept (events.jsonl.1 the newest).")
@click.option("--log-daily", is_flag=True, help="Rotate events.jsonl at the first event of each UTC day too.")
@click.option("--duration", type=click.FloatRange(0, min_open=True), default=None, help="Stop after this many seconds (default: until SIGINT/SIGTERM).")
@click.option("--batch/--no-batch", "batch", default=None, help="Batch the model calls of cameras that share models into shared calls [default: when the models run on a GPU; on CPUs it analysed no more frames, see README].")
@click.option("--batch-wait-ms", type=click.FloatRange(0, 1000), default=20.0, show_default=True, help="How long a camera's frame or faces may wait for other cameras' to share a batched model call.")
@click.option("--ray", "ray_address", default=None, metavar="auto|local|ADDRESS", help="Run the cameras as Ray actors: 'local' starts Ray here, 'auto' joins this machine's cluster (or starts one), or a cluster address. Events, /metrics and /health stay on this machine.")
@click.option("--ray-cameras-per-actor", type=click.IntRange(1), default=1, show_default=True, help="Cameras per Ray actor (they share models, and batch their calls as --batch says).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Log lines on stderr.")
def watch(streams, out_dir, config, metrics_port, no_metrics, webhook, webhook_header_env, mqtt_url, mqtt_topic, webhook_timeout, keep_count, keep_days, keep_mb, no_store, log_max_mb, log_keep, log_daily, duration, batch, batch_wait_ms, ray_address, ray_cameras_per_actor, log_format):
    """Watch cameras (STREAMS: stream definition files, see streams/README.md) and write one
    best-shot event per person who passes: images, the event store, events.jsonl, optionally a
    webhook and MQTT."""

    import functools

    from ..live.cameras import CameraFactory
    from ..live.watch import Logger, Watcher, load_streams
    from ..redact import checked_url, redact_url
    from ..sinks import Retention, WatchOutputs
    from ..sinks.webhook import header_from_env

    log = Logger(log_format)
    if webhook is not None:
        checked_url(webhook, ("http", "https"), f"--webhook {redact_url(webhook)!r}")
    headers = header_from_env(webhook_header_env) if webhook_header_env else None
    if mqtt_url is not None:  # refused before any camera starts
        from ..sinks.mqtt import check_topic, parse_mqtt_url

        parse_mqtt_url(mqtt_url)
        check_topic(mqtt_topic)
    configs = load_streams(list(streams), config, log)
    outputs = WatchOutputs(retention=Retention(keep_count, keep_days, keep_mb), store=not no_store, log_max_mb=log_max_mb, log_keep=log_keep,
                           log_daily=log_daily, webhook_url=webhook, webhook_timeout_s=webhook_timeout,
                           webhook_headers=headers, mqtt_url=mqtt_url, mqtt_topic=mqtt_topic)
    cameras: CameraFactory | None = None  # threads of this process
    if ray_address is not None:
        from ..live.ray_cameras import RayCameras

        cameras = functools.partial(RayCameras, address=ray_address, cameras_per_actor=ray_cameras_per_actor)
    watcher = Watcher(configs, out_dir, outputs, cameras=cameras, metrics_port=None if no_metrics else metrics_port, log=log,
                      batch_streams=batch, batch_wait_s=batch_wait_ms / 1000)
    if watcher.server is not None:
        log("info", "metrics", url=f"http://127.0.0.1:{watcher.server.port}/metrics")
        log("info", "live page", url=f"http://127.0.0.1:{watcher.server.port}/")
    summary = watcher.run(duration)
    for name, s in summary["streams"].items():
        log("info", "summary", stream=name, frames=s["frames_decoded"], analysed=s["frames_processed"],
            dropped=s["frames_dropped_overload"], reconnects=s["reconnects"], events=s["events"],
            sink_errors=s["sink_errors"], events_lost=s["events_lost"], worker_restarts=s["worker_restarts"])
    lost = sum(s["events_lost"] for s in summary["streams"].values())
    if summary.get("mqtt"):  # events the broker never acknowledged (MqttSink.close)
        lost += summary["mqtt"]["events"]["lost"]
    if lost:  # work that could not be kept: say so in the exit status, as `vidfiqa run` does
        import sys

        from .common import EXIT_OUTPUT

        log("error", "events were lost: a sink never took them", lost=lost)
        sys.exit(EXIT_OUTPUT)
