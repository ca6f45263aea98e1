"""Stream definitions: one TOML file per camera in ``streams/``.

A file has a ``[stream]`` table (where and how to read) and an optional ``[pipeline]`` table
(any `vidfiqa run` setting: ``input_size``, ``top_k``, ``min_face_size``, ``min_quality`` ...).
Pipeline settings may also be written in ``[stream]`` directly, for short files.  An unknown key,
a wrong type or a bad URL is an error naming the file and the field; types are checked strictly,
the same way as in presets (:mod:`vidfiqa.config_values`: ``loop = "yes"`` is refused).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..config_values import coerce
from ..errors import ConfigError
from ..pipeline.settings import FIELD_TYPES, RunSettings, make_settings, read_toml
from ..redact import checked_url

LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
MAX_NAME_LENGTH = 64


@dataclass(frozen=True)
class StreamConfig:
    name: str
    url: str
    transport: str = "tcp"  # rtsp over tcp (interleaved) or udp
    fps_cap: float | None = None  # analyse at most this many frames a second (None: the pipeline's fps_cap, 5 by default)
    open_timeout_s: float = 10.0  # connecting must succeed within this
    read_timeout_s: float = 5.0  # a connected stream that delivers nothing this long has stalled
    reconnect_min_s: float = 0.5  # first retry delay; doubles per failure, with +-25 % jitter
    reconnect_max_s: float = 30.0
    keep_tracks_s: float = 3.0  # tracks survive a drop shorter than this; longer drops end them
    max_track_s: float = 300.0  # a track open this long is emitted (and continues as a new segment)
    queue_frames: int = 8  # decoded frames waiting for analysis (YUV); the oldest is dropped when full, and under sustained overload only the newest 2 are kept (live/stream.py FrameQueue)
    skip_nonreference: bool = True  # under an fps_cap of at most half the stream's rate, do not decode frames no other frame refers to (B-frames)
    loop: bool = False  # a local file: start again at its end (replays a recording as a camera)
    ray_num_cpus: float = 1.0  # under `watch --ray`: the CPUs this camera's actor declares (Ray packs actors by them)
    ray_num_gpus: float = 0.0  # ... and the GPUs (a fraction shares one)
    person_memory_s: float = 600.0  # a person who comes back within this keeps their person_id
    main_url: str | None = None  # the camera's full-size main stream: picks are cut from it (live/main_ring.py)
    main_ring_s: float = 20.0  # the main stream's packets kept (demuxed, not decoded): this many seconds ...
    main_ring_mb: float = 64.0  # ... and at most this many MiB
    settings: RunSettings = field(default_factory=RunSettings)
    source_file: str | None = None

    def validate(self) -> "StreamConfig":
        where = self.source_file or "stream"

        def need(ok: bool, key: str, message: str) -> None:
            if not ok:
                raise ConfigError(f"{where}: {key}: {message}")

        # The name becomes folder and file names of every event: short and safe in any file system.
        need(bool(self.name) and self.name.isascii() and self.name.replace("-", "").replace("_", "").isalnum(), "name",
             f"{self.name[:80]!r} must be ASCII letters, digits, - or _")
        need(len(self.name) <= MAX_NAME_LENGTH, "name", f"is {len(self.name)} characters long; at most {MAX_NAME_LENGTH}")
        if not self.is_file:
            checked_url(self.url, LIVE_SCHEMES, f"{where}: url")
        else:
            need(Path(self.url).is_file(), "url", "is neither a stream URL nor an existing file")
        need(self.transport in ("tcp", "udp"), "transport", f"must be tcp or udp, not {self.transport!r}")
        need(self.fps_cap is None or self.fps_cap > 0, "fps_cap", "must be positive")
        for key in ("open_timeout_s", "read_timeout_s", "reconnect_min_s", "reconnect_max_s", "max_track_s"):
            need(getattr(self, key) > 0, key, "must be positive")
        need(self.keep_tracks_s >= 0, "keep_tracks_s", "must not be negative")
        need(self.person_memory_s >= 0, "person_memory_s", "must not be negative")
        need(self.ray_num_cpus >= 0 and self.ray_num_gpus >= 0, "ray_num_cpus" if self.ray_num_cpus < 0 else "ray_num_gpus", "must not be negative")
        need(self.reconnect_max_s >= self.reconnect_min_s, "reconnect_max_s", "must be at least reconnect_min_s")
        need(self.queue_frames >= 1, "queue_frames", "must be at least 1")
        if self.main_url is not None:
            if self.is_file:
                need(Path(self.main_url).is_file(), "main_url", "a camera replayed from a file takes a file as its main stream")
            else:
                checked_url(self.main_url, LIVE_SCHEMES, f"{where}: main_url")
            need(self.main_ring_s > 0 and self.main_ring_mb > 0, "main_ring_s" if self.main_ring_s <= 0 else "main_ring_mb", "must be positive")
        return self

    @property
    def analysis_fps_cap(self) -> float | None:
        """Frames a second this camera is analysed at most: the stream's ``fps_cap``, else the
        pipeline setting of the same name (0 there: every frame); None: no cap."""
        cap = self.fps_cap if self.fps_cap is not None else self.settings.fps_cap
        return cap or None

    @property
    def is_file(self) -> bool:
        try:
            return not urlsplit(self.url).scheme
        except ValueError:  # not a path either: validate() says what is wrong with it
            return False


_STREAM_TYPES: dict[str, str] = {f.name: str(f.type) for f in fields(StreamConfig) if f.name not in ("settings", "source_file")}


def load_stream(path: str | Path, base_config: str | Path | None = None) -> StreamConfig:
    """Read one stream file; ``base_config`` is a pipeline preset its [pipeline] table overrides."""
    path = Path(path)
    where = str(path)
    data = read_toml(path, missing="no such stream file")
    unknown_tables = sorted(set(data) - {"stream", "pipeline"})
    if unknown_tables:
        raise ConfigError(f"{where}: unknown table or key {unknown_tables[0]!r} (expected [stream] and [pipeline])")
    stream = dict(data.get("stream") or {})
    pipeline = dict(data.get("pipeline") or {})
    for key in list(stream):
        if key not in _STREAM_TYPES and key in FIELD_TYPES:
            pipeline[key] = stream.pop(key)
    unknown = sorted(set(stream) - set(_STREAM_TYPES))
    if unknown:
        raise ConfigError(f"{where}: [stream] {unknown[0]}: unknown field (known: {', '.join(sorted(_STREAM_TYPES))})")
    for key in ("name", "url"):
        if key not in stream:
            raise ConfigError(f"{where}: [stream] {key}: missing")
    values: dict[str, Any] = {key: coerce(value, _STREAM_TYPES[key], f"[stream] {key}", where) for key, value in stream.items()}
    # Pipeline values are checked here, where the file is known; unknown keys and out-of-range
    # values are make_settings' to report.
    pipeline = {key: coerce(value, FIELD_TYPES[key], f"[pipeline] {key}", where) if key in FIELD_TYPES else value for key, value in pipeline.items()}
    try:
        settings = make_settings(base_config, **pipeline)
    except ConfigError as err:
        raise ConfigError(f"{where}: [pipeline] {err}") from None
    return replace(StreamConfig(name=values.pop("name"), url=values.pop("url")), settings=settings, source_file=where, **values).validate()
