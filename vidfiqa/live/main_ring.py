"""A camera's main stream, demuxed but not decoded: its packets in a bounded ring.

Decoding a 1080p-4K main stream costs more than analysing the substream; a camera's picks need
only a few of its frames.  This reader keeps the main stream connected and its compressed packets
in a ring bounded in seconds and bytes (``main_ring_s``, ``main_ring_mb``); when a track's picks
are chosen, :meth:`MainRing.around` decodes only from the keyframe before each pick to the pick,
with a decoder of its own (select/recut.py then cuts the faces).

The clocks.  The analysed stream is timed by arrival (live/stream.py: container timestamps
restart at every reconnect).  A main packet's time on that clock is its stream time plus an
offset learnt from its arrivals: the smallest (arrival - stream time) seen on this connection,
the packet that waited least on the network and in the camera (clock recovery, as RTP receivers
do); both streams leave the camera at the same moment, so this lines them up to within the
difference of their network delays.  Where the camera sends RTCP sender reports on both streams,
FFmpeg gives each connection's wall-clock start (``start_time_realtime``, from the reports' NTP
time) and the two streams are lined up on the camera's own clock instead; two recordings replayed
as a camera are paced by one clock and lined up on it (``sync``: "rtcp", "arrival" or "replay").
The cut confirms every match with the face found again, and measures what is left
(``PickSource.time_error_s``, the summary's ``sync_error_s``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import av

from ..redact import redact_text, redact_url
from ..video.main_stream import MainFrame, MainLookup, nearest_first
from .config import StreamConfig
from .metrics import Metrics
from .stream import ReplayClock, reconnect_delay

# How long a pick may wait for the main stream to catch up with it (its packets arrive a little
# after the substream's).
CATCH_UP_S = 1.0


@dataclass(frozen=True)
class MainPacket:
    time: float  # seconds on the analysed stream's clock (the module docstring)
    pts: int  # stream time, in the connection's time base
    keyframe: bool
    data: bytes
    connection: int  # packets of different connections never decode together


@dataclass(frozen=True)
class Connection:
    number: int
    codec: str
    extradata: bytes | None


class MainRing(threading.Thread):
    """Keeps one camera's main stream connected and its newest packets (see the module docstring).

    ``clock_zero``: the monotonic time that is 0 on the analysed stream's clock (the worker's).
    ``sub_wall_offset``: a callable giving the substream's (arrival - sender wall clock), when its
    camera sends RTCP sender reports (None otherwise), to line up on the camera's clock.
    """

    def __init__(self, cfg: StreamConfig, metrics: Metrics, stop: threading.Event, log: Callable[..., None], clock_zero: float,
                 sub_wall_offset: Callable[[], float | None] | None = None, replay_clock: ReplayClock | None = None):
        super().__init__(name=f"vidfiqa-main-{cfg.name}", daemon=True)
        assert cfg.main_url is not None
        self.cfg, self.url, self.metrics, self.stop, self.log = cfg, cfg.main_url, metrics, stop, log
        self.clock_zero = clock_zero
        self.sub_wall_offset = sub_wall_offset
        # A recording replayed as a camera: paced by the clock its substream is paced by, its
        # packets timed by that schedule (live/stream.py ReplayClock).
        self.replay_clock = replay_clock
        self._replayed_s = 0.0
        self.max_seconds, self.max_bytes = cfg.main_ring_s, int(cfg.main_ring_mb * 2**20)
        self._packets: deque[MainPacket] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._connections: dict[int, Connection] = {}  # those whose packets the ring may still hold
        self.size: tuple[int, int] | None = None
        self.up = False
        self.last_error: str | None = None
        self.interval = 1 / 25
        self.sync = "arrival"  # how the newest packet was lined up: "arrival" or "rtcp" (the module docstring)
        metrics.gauge("vidfiqa_main_ring_bytes", lambda: float(self._bytes), stream=cfg.name)
        metrics.gauge("vidfiqa_main_ring_seconds", self.seconds_held, stream=cfg.name)
        metrics.gauge("vidfiqa_main_stream_up", lambda: 1.0 if self.up else 0.0, stream=cfg.name)

    # ------------------------------------------------------------------ the reader
    def run(self) -> None:
        failures, number = 0, 0
        while not self.stop.is_set():
            number += 1
            delivered, error = self._read(number)
            self.up = False
            if self.stop.is_set():
                break
            if self.cfg.is_file and error is None and delivered:
                if not self.cfg.loop:
                    break
                continue  # a replayed recording starts again at once, as its substream does
            failures = 0 if delivered >= 50 else failures + 1
            delay = reconnect_delay(failures, self.cfg.reconnect_min_s, self.cfg.reconnect_max_s)
            self.last_error = error or "the main stream ended"
            self.metrics.inc("vidfiqa_main_reconnects_total", stream=self.cfg.name)
            self.log("warning", "main stream reconnecting", stream=self.cfg.name, reason=self.last_error, retry_in_s=round(delay, 2))
            self.stop.wait(delay)

    def _read(self, number: int) -> tuple[int, str | None]:
        cfg = self.cfg
        live = not cfg.is_file
        options = {"rtsp_transport": cfg.transport, "timeout": str(int(max(cfg.open_timeout_s, cfg.read_timeout_s) * 1e6))} \
            if self.url.lower().startswith(("rtsp://", "rtsps://")) else None
        try:
            container = av.open(self.url, "r", options=options or {}, timeout=(cfg.open_timeout_s, cfg.read_timeout_s) if live else None)
        except Exception as err:  # any failure to connect is a reason to retry, never to die
            return 0, redact_text(f"cannot open the main stream: {err}", self.url)
        delivered = 0
        try:
            streams = container.streams.video
            if not streams:
                return 0, "the main stream holds no video"
            stream = streams[0]
            rate = stream.average_rate or stream.guessed_rate
            self.interval = float(1 / rate) if rate else 1 / 25
            codec = stream.codec_context
            self._connections[number] = Connection(number, codec.name, bytes(codec.extradata) if codec.extradata else None)
            for old in [n for n in self._connections if n < number - 8]:  # the ring never spans that many
                del self._connections[old]
            self.size = (codec.width, codec.height)
            offset: float | None = None  # arrival - stream time, smallest seen (the module docstring)
            started = self.replay_clock.zero() + self._replayed_s if self.replay_clock is not None else time.monotonic()
            first_pts: float | None = None
            last_pts: float | None = None
            for packet in container.demux(stream):
                if self.stop.is_set():
                    break
                if packet.pts is None or packet.size == 0 or stream.time_base is None:
                    continue
                pts_s = float(packet.pts * stream.time_base)
                if first_pts is None:
                    first_pts = pts_s
                last_pts = pts_s
                if not live:  # a recording replayed as a camera is paced at its own rate, as the substream is
                    self.stop.wait(max(0.0, started + (pts_s - first_pts) - time.monotonic()))
                arrival = time.monotonic()
                offset = arrival - pts_s if offset is None else min(offset, arrival - pts_s)
                when, self.sync = pts_s + offset, "arrival"
                if self.replay_clock is not None:
                    when, self.sync = started + (pts_s - first_pts), "replay"
                wall_start = container.start_time_realtime if live else None  # set by the first RTCP sender report
                sub = self.sub_wall_offset() if self.sub_wall_offset is not None else None
                if wall_start is not None and sub is not None:
                    # Both streams on the camera's own clock: this packet's wall-clock time, moved
                    # onto the arrival clock by the substream's offset.
                    when, self.sync = wall_start / 1e6 + pts_s + sub, "rtcp"
                if delivered == 0:
                    self.up = True
                    self.log("info", "main stream connected", stream=cfg.name, url=redact_url(self.url), size=f"{codec.width}x{codec.height}")
                delivered += 1
                self._add(MainPacket(when - self.clock_zero, int(packet.pts), bool(packet.is_keyframe), bytes(packet), number))
                self.metrics.inc("vidfiqa_main_packets_total", stream=cfg.name)
            if last_pts is not None and first_pts is not None:
                self._replayed_s += last_pts - first_pts + self.interval  # the next pass starts where this one ended
            return delivered, None
        except Exception as err:
            return delivered, redact_text(f"{type(err).__name__}: {err}", self.url)
        finally:
            container.close()

    def _add(self, packet: MainPacket) -> None:
        with self._arrived:
            self._packets.append(packet)
            self._bytes += len(packet.data)
            # Bounded in seconds and bytes; the ring always starts at a keyframe, so what it holds
            # can be decoded (a whole GOP goes at once).
            while self._packets and (self._bytes > self.max_bytes or packet.time - self._packets[0].time > self.max_seconds):
                self._drop_gop()
            self._arrived.notify_all()

    def _drop_gop(self) -> None:
        first = self._packets.popleft()
        self._bytes -= len(first.data)
        evicted = 1
        while self._packets and not self._packets[0].keyframe:
            self._bytes -= len(self._packets.popleft().data)
            evicted += 1
        self.metrics.inc("vidfiqa_main_packets_evicted_total", evicted, stream=self.cfg.name)

    def seconds_held(self) -> float:
        with self._lock:
            return self._packets[-1].time - self._packets[0].time if len(self._packets) > 1 else 0.0

    # ------------------------------------------------------------------ frames for the cut
    def around(self, times: Sequence[float], neighbours: int) -> list[MainLookup]:
        reach = (neighbours + 0.5) * self.interval
        latest = max((t for t in times if t == t), default=0.0) + reach
        with self._arrived:  # the main stream's packets arrive a little after the substream's
            self._arrived.wait_for(lambda: self.stop.is_set() or (self._packets and self._packets[-1].time >= latest), timeout=CATCH_UP_S)
            packets = list(self._packets)
        # Picks in one GOP (the same keyframe before them: a track's picks, tracks that ended
        # together) are decoded in one pass from that keyframe.
        found: dict[int, MainLookup] = {}
        groups: dict[int, list[int]] = {}
        for i, t in enumerate(times):
            where = self._place(packets, float(t), reach)
            if isinstance(where, MainLookup):
                found[i] = where
            else:
                groups.setdefault(where, []).append(i)
        for start, members in groups.items():
            found.update(self._decode(packets, start, {i: float(times[i]) for i in members}, reach, neighbours))
        return [found[i] for i in range(len(times))]

    def _place(self, packets: list[MainPacket], time: float, reach: float) -> int | MainLookup:
        """The index of the keyframe to decode ``time`` from, or why there is none."""
        if time != time:
            return MainLookup([], "the pick has no timestamp")
        if not packets:
            return MainLookup([], f"the main stream is not connected ({self.last_error or 'no packet yet'})")
        if packets[0].time > time - reach:
            return MainLookup([], f"older than the main stream's ring ({self.max_seconds:g} s, {self.max_bytes / 2**20:g} MiB)")
        if packets[-1].time < time - reach:
            return MainLookup([], f"no main packet since {time - packets[-1].time:.2f} s before the pick (the main stream stalled or died)")
        start = max((i for i, p in enumerate(packets) if p.keyframe and p.time <= time - reach), default=None)
        if start is None or packets[start].connection not in self._connections:
            return MainLookup([], "no main keyframe before the pick")
        return start

    def _decode(self, packets: list[MainPacket], start: int, times: dict[int, float], reach: float, neighbours: int) -> dict[int, MainLookup]:
        """Decode from the keyframe at ``start`` past the last of ``times``; each time's frames."""
        connection = self._connections[packets[start].connection]
        decoder: Any = av.CodecContext.create(connection.codec, "r")  # a video decoder (typed as the base class)
        if connection.extradata:
            decoder.extradata = connection.extradata
        last = max(times.values()) + reach
        wanted = lambda when: any(abs(when - t) <= reach for t in times.values())  # noqa: E731
        by_pts: dict[int, float] = {}
        frames: list[MainFrame] = []

        def keep(decoded) -> None:
            for frame in decoded:
                when = by_pts.get(frame.pts)
                if when is not None and wanted(when):
                    frames.append(MainFrame(frame, when, int(round(when / self.interval))))

        try:
            for packet in packets[start:]:
                if packet.connection != connection.number or packet.time > last + 10 * self.interval:
                    break
                by_pts[packet.pts] = packet.time
                raw = av.Packet(packet.data)
                raw.pts = packet.pts
                keep(decoder.decode(raw))
                if packet.time > last:
                    break
            keep(decoder.decode(None))
        except (av.FFmpegError, ValueError) as err:
            return {i: MainLookup([], f"the main stream's packets do not decode ({err})") for i in times}
        out = {}
        for i, t in times.items():
            near = [f for f in frames if abs(f.time - t) <= reach]
            out[i] = MainLookup(nearest_first(near, t, neighbours)) if near else MainLookup([], f"no main frame within {reach:.3f} s of the pick")
        return out

    def close(self) -> None:
        with self._lock:
            self._packets.clear()
            self._bytes = 0
