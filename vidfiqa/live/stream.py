"""One camera: a reader thread that keeps a connection alive and a worker thread that analyses.

    reader:  connect -> decode -> FrameQueue (bounded: drops the oldest frame when full)
               ^ reconnect with exponential backoff and jitter on errors, stalls and ends
    worker:  FrameQueue -> TrackProcessor (detect, track, score) -> finished tracks
               -> EndOfTrack (select/chain.py) -> the stream's outbox to the sinks (sinks/outbox.py)

The two threads only share the queue, so a slow analysis (or another camera's) never blocks
decoding: frames are dropped and counted instead, and memory stays bounded.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import VidfiqaError
from ..pipeline.batching import BatchedModels
from ..pipeline.models import Models
from ..pipeline.processor import TrackProcessor
from ..redact import redact_text, redact_url
from ..detect.region import RegionRedetector
from ..select import DEFAULT_FPS, EndOfTrack, StreamPersons, TrackEnd, TrackResult
from ..select.recut import MainStreamCut, fallback_kind
from .main_cutter import MainCutter
from ..select.result import PickSource
from ..video.main_stream import MainFrames
from ..sinks.outbox import SinkOutbox
from ..video.source import Frame
from .config import StreamConfig
from .metrics import Metrics


# How FFmpeg/PyAV report a read that waited too long: PyAV's own timeout interrupts the read
# ("Immediate exit requested"), FFmpeg's socket timeout says "timed out".
STALL_SIGNS = ("immediate exit requested", "timed out", "timeout", "etimedout", "resource temporarily unavailable")


@dataclass(frozen=True)
class Connected:
    """Marker put in the queue when a (re)connection delivers its first frame."""

    width: int
    height: int
    attempt: int
    fps: float | None  # the stream's nominal rate, if it states one


class FrameQueue:
    """A bounded queue of (frame, arrival time) items and markers.

    ``put`` never blocks: when full, the oldest *frame* is dropped (markers are kept) and
    ``dropped`` counts it, so the analysis always works on the newest frames.

    Up to ``size`` frames absorb a burst (a slow batch, a moment of a busy machine).  Under
    *sustained* overload - ``size`` puts in a row each had to drop a frame - a deep queue only
    adds latency and memory (each 720p frame is 1.4 MiB, held in the decoder's buffers): the
    analysis drops the same frames whatever the depth.  The queue then keeps at most
    ``overload_size`` frames, the newest, until the analysis catches up (finds it empty), and
    the full depth is back.
    """

    def __init__(self, size: int, overload_size: int = 2):
        self.size = size
        self.overload_size = max(1, min(overload_size, size))
        self.limit = size  # the depth now: size, or overload_size while overloaded
        self._items: deque = deque()
        self._cond = threading.Condition()
        self._dropping = 0  # puts in a row that dropped a frame
        self.dropped = 0

    def put(self, item: Any) -> int:
        """Returns how many frames were dropped to make room (0: none)."""
        with self._cond:
            dropped = 0
            if not isinstance(item, Connected):
                self._dropping = self._dropping + 1 if self._frames() >= self.limit else 0
                if self._dropping >= self.size:
                    self.limit = self.overload_size
                while self._frames() >= self.limit:
                    self._drop_oldest_frame()
                    dropped += 1
            self._items.append(item)
            self._cond.notify()
            return dropped

    def get(self, timeout: float) -> Any:
        with self._cond:
            if not self._items:
                self.limit, self._dropping = self.size, 0  # the analysis keeps up again
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        return len(self._items)

    def _frames(self) -> int:
        return sum(1 for i in self._items if not isinstance(i, Connected))

    def _drop_oldest_frame(self) -> None:
        for k, old in enumerate(self._items):
            if not isinstance(old, Connected):
                del self._items[k]
                self.dropped += 1
                return


class StreamReader(threading.Thread):
    """Keeps one stream open and its newest frames in ``queue``."""

    def __init__(self, cfg: StreamConfig, frames: FrameQueue, metrics: Metrics, stop: threading.Event, log: Callable[..., None],
                 replay_clock: "ReplayClock | None" = None):
        super().__init__(name=f"vidfiqa-read-{cfg.name}", daemon=True)
        self.cfg, self.frames, self.metrics, self.stop, self.log = cfg, frames, metrics, stop, log
        self.up = False
        self.last_frame_at: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None  # wall time (time.time()) of last_error
        # A recording replayed as a camera with a main-stream recording beside it: both are paced
        # by one clock and its frames carry their scheduled time, so that the two line up exactly
        # however late a busy machine delivers them (a camera's frames carry their capture time).
        self.replay_clock = replay_clock
        self._replayed_s = 0.0  # seconds of the file played in earlier passes
        # Arrival (monotonic) minus the camera's wall clock, smallest seen on this connection,
        # where the camera sends RTCP sender reports (None otherwise): what a main stream is lined
        # up on (live/main_ring.py).
        self.wall_offset: float | None = None

    def camera_clock_offset(self) -> float | None:
        """Arrival minus the camera's wall clock on this connection (see ``wall_offset``)."""
        return self.wall_offset

    def run(self) -> None:
        cfg, failures, attempt = self.cfg, 0, 0
        while not self.stop.is_set():
            attempt += 1
            delivered, error = self._read_once(attempt)
            self._set_up(False)
            if self.stop.is_set():
                break
            if cfg.is_file and not cfg.loop:
                self.log("warning" if error else "info", "input ended", stream=cfg.name, error=error)
                break
            if cfg.is_file and error is None and delivered:
                continue  # a replayed recording starts again at once: not a reconnect
            if cfg.is_file and error is None:
                error = "the file holds no frames"
            self.metrics.inc("vidfiqa_reconnects_total", stream=cfg.name)
            # A connection that worked for a while resets the backoff; one that keeps failing backs
            # off exponentially up to reconnect_max_s, with +-25 % jitter so that many cameras
            # behind one failed switch do not all retry in the same instant.
            failures = 0 if delivered >= 50 else failures + 1
            delay = reconnect_delay(failures, cfg.reconnect_min_s, cfg.reconnect_max_s)
            if error:
                self.last_error, self.last_error_at = error, time.time()
            self.log("warning" if error else "info", "reconnecting", stream=cfg.name, file=cfg.source_file, reason=error or "stream ended",
                     retry_in_s=round(delay, 2))
            self.stop.wait(delay)

    def _read_once(self, attempt: int) -> tuple[int, str | None]:
        """Open, read until the stream ends or fails; returns (frames delivered, error or None)."""
        from ..video.pyav_source import PyAVSource

        cfg = self.cfg
        options = {"rtsp_transport": cfg.transport} if cfg.url.lower().startswith(("rtsp://", "rtsps://")) else None
        if options is not None:
            # FFmpeg's socket timeout (microseconds) also bounds the RTSP handshake: at read_timeout_s
            # it cut every open short of open_timeout_s.  PyAV's own guard (timeout= below) keeps
            # each of the two limits.
            options["timeout"] = str(int(max(cfg.open_timeout_s, cfg.read_timeout_s) * 1e6))
        try:
            # One decoding thread per camera unless decode_threads says otherwise: with several
            # cameras the cameras are the parallelism, and each frame thread holds frames of its
            # own (measured: 44 vs 53 MiB per camera for a 720p stream).
            threads = cfg.settings.decode_threads or 1
            source = PyAVSource(cfg.url, options=options, timeout=(cfg.open_timeout_s, cfg.read_timeout_s), threads=threads)
        except VidfiqaError as err:
            return 0, redact_text(str(err), cfg.url)
        except Exception as err:  # any decoder failure is a reason to retry, never to die
            return 0, redact_text(f"{type(err).__name__}: {err}", cfg.url)
        cap = cfg.analysis_fps_cap
        delivered, min_gap = 0, (1.0 / cap) if cap else 0.0
        next_due = -1e9
        started = self.replay_clock.zero() + self._replayed_s if self.replay_clock is not None else time.monotonic()
        # A camera analysed at a fraction of its rate skips the frames nothing refers to (usually
        # B-frames) and decodes only the rest: measured 40 % less decoding time on an x264 stream
        # with B-frames, no change on one without (see benchmarks/cameras.py).  The skip is taken
        # back for this connection if it ever leaves a gap longer than the cap's interval.
        rate = source.info.fps
        skipping = bool(cfg.skip_nonreference and cap and rate and rate >= 2 * cap)
        if skipping:
            source.skip_nonreference(True)
        last_pts: float | None = None
        try:
            # Frames stay in YUV until the worker takes them: half the memory in the queue, and
            # frames dropped under overload are never converted.
            for frame in source.pending():
                if self.stop.is_set():
                    break
                if cfg.is_file and frame.pts == frame.pts:
                    # A recording replayed as a camera is paced at its own frame rate.
                    self.stop.wait(max(0.0, started + frame.pts - time.monotonic()))
                now = time.monotonic()
                self.metrics.inc("vidfiqa_frames_decoded_total", stream=cfg.name)
                wall = source.wall_clock(frame.pts) if frame.pts == frame.pts else None
                if wall is not None:
                    self.wall_offset = now - wall if self.wall_offset is None else min(self.wall_offset, now - wall)
                if delivered == 0:
                    width, height = frame.size
                    self.frames.put(Connected(width, height, attempt, source.info.fps))
                    self._set_up(True)
                    self.log("info", "connected", stream=cfg.name, url=redact_url(cfg.url), size=f"{width}x{height}", attempt=attempt)
                delivered += 1
                self.last_frame_at = now
                if skipping and last_pts is not None and frame.pts - last_pts > min_gap:
                    skipping = False
                    source.skip_nonreference(False)
                    self.log("info", "decoding every frame: skipping unreferenced ones left gaps", stream=cfg.name,
                             gap_s=round(frame.pts - last_pts, 3))
                last_pts = frame.pts if frame.pts == frame.pts else None
                # fps_cap as a budget: a frame is kept when it is due, and the next is due one
                # interval after (not after the frame kept, which arrives a little late each
                # time: 4.5 instead of 5 frames a second at 25 fps).
                if now < next_due:
                    self.metrics.inc("vidfiqa_frames_dropped_total", stream=cfg.name, reason="fps_cap")
                    continue
                next_due = max(next_due, now - min_gap) + min_gap
                scheduled = started + frame.pts if self.replay_clock is not None and frame.pts == frame.pts else now
                dropped = self.frames.put((frame, scheduled))
                if dropped:
                    self.metrics.inc("vidfiqa_frames_dropped_total", dropped, stream=cfg.name, reason="overload")
            error = source.stopped_early
            if last_pts is not None:
                self._replayed_s += last_pts + 1.0 / (rate or 25.0)  # the next pass starts where this one ended
        except Exception as err:
            error = f"{type(err).__name__}: {err}"
        finally:
            # Down before anything is counted or closed: /health and the metrics never show a
            # stream up whose stall has already been counted (closing may wait on the server).
            self._set_up(False)
            source.close()
            self.wall_offset = None  # the next connection learns its own
        if error and delivered and any(sign in error.lower() for sign in STALL_SIGNS):
            self.metrics.inc("vidfiqa_stalls_total", stream=cfg.name)
            error = f"stalled: no data for {cfg.read_timeout_s:g} s ({error})"
        return delivered, redact_text(error, cfg.url) if error else None

    def _set_up(self, up: bool) -> None:
        self.up = up
        self.metrics.set("vidfiqa_stream_up", 1.0 if up else 0.0, stream=self.cfg.name)


class ReplayClock:
    """The one clock a replayed substream and main-stream recording are paced by: time zero is
    when the first of the two starts (see ``StreamReader.replay_clock``)."""

    def __init__(self) -> None:
        self._zero: float | None = None
        self._lock = threading.Lock()

    def zero(self) -> float:
        with self._lock:
            if self._zero is None:
                self._zero = time.monotonic()
            return self._zero


LATENCY_WINDOW = 500  # frames whose arrival-to-analysed latency the quantiles describe
WORKER_RESTART_MIN_S, WORKER_RESTART_MAX_S = 1.0, 60.0


def reconnect_delay(failures: int, min_s: float, max_s: float, uniform: Callable[[float, float], float] = random.uniform) -> float:
    """Seconds to wait after ``failures`` failed connections in a row: ``min_s`` doubled per
    failure, with +-25 % jitter, and never more than ``max_s``.  Once the doubling reaches the
    cap the delay is drawn from 75-100 % of ``max_s``: capping the jittered value made every
    camera behind one failed switch retry at exactly ``max_s``, all in the same instant."""
    spread = uniform(0.75, 1.25)
    base = min_s * 2 ** max(0, failures - 1)
    if base * 0.75 >= max_s:
        return max_s * (0.75 + (spread - 0.75) / 2)
    return min(max_s, base * spread)


class StreamWorker(threading.Thread):
    """Analyses one stream's frames; each finished track goes through the end-of-track chain to
    the stream's outbox."""

    def __init__(self, cfg: StreamConfig, frames: FrameQueue, models: Models, outbox: SinkOutbox, metrics: Metrics,
                 stop: threading.Event, log: Callable[..., None], batched: BatchedModels | None = None,
                 main: MainFrames | None = None, main_region: RegionRedetector | None = None):
        super().__init__(name=f"vidfiqa-work-{cfg.name}", daemon=True)
        self.cfg, self.frames, self.models, self.outbox, self.metrics, self.stop, self.log = cfg, frames, models, outbox, metrics, stop, log
        # Models shared with other cameras through cross-stream batching (pipeline/batching.py):
        # while this worker analyses a frame it counts as a stream the batches may wait for.
        self.batched = batched
        # Seconds from a frame's arrival to the end of its analysis (the newest LATENCY_WINDOW).
        self.latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.error: str | None = None  # the last failure of the analysis (kept after a restart)
        self.error_at: float | None = None  # wall time of that failure
        self.up = True  # False while the analysis waits to restart after a failure
        self.restarts = 0
        self._fps: float | None = None
        metrics.set("vidfiqa_worker_up", 1.0, stream=cfg.name)
        # Live frames are timed by their arrival: container timestamps restart at every reconnect.
        self._t0_mono, self._t0_wall = time.monotonic(), time.time()
        self._index = 0
        self._size: tuple[int, int] | None = None
        self._last_frame_at: float | None = None
        self._processor: TrackProcessor | None = None
        # Live streams link persons as tracks end; memory is bounded by person_memory_s and max_persons.
        persons = StreamPersons(cfg.settings.person_threshold, cfg.person_memory_s)
        # A camera with a main stream: accepted tracks' picks are cut from it (select/recut.py);
        # the analysed frame size is set on every (re)connect.
        # The cut runs beside the analysis, in a thread of its own (live/main_cutter.py).
        self.cut: MainStreamCut | None = None
        self.cutter: MainCutter | None = None
        if main is not None:
            assert main_region is not None
            self.cut = MainStreamCut(main, models, cfg.settings, main_region, observe=self._observe_pick)
            self.cutter = MainCutter(cfg.name, self.cut, outbox, log)
        self.end_of_track = EndOfTrack.of(cfg.settings, persons, stream=cfg.name, wall_start=self._t0_wall)

    def _new_processor(self, stream_fps: float | None) -> TrackProcessor:
        """The tracker counts a track's absence in updates: it needs the analysed frame rate."""
        rates = [r for r in (stream_fps, self.cfg.analysis_fps_cap) if r]
        fps = min(rates) if rates else DEFAULT_FPS
        return TrackProcessor(self.models, self.cfg.settings, self._on_track, step_s=1.0 / fps, fps=fps)

    @property
    def clock_zero(self) -> float:
        """The monotonic time that is 0 on this stream's analysed clock (frames are timed by arrival)."""
        return self._t0_mono

    def _observe_pick(self, source: PickSource) -> None:
        reason = "" if source.stream == "main" else fallback_kind(source.reason or "")
        self.metrics.inc("vidfiqa_main_picks_total", stream=self.cfg.name, source=source.stream, reason=reason)

    def _on_track(self, result: TrackResult) -> None:
        record = self.end_of_track(result)
        self.metrics.inc("vidfiqa_tracks_total", stream=self.cfg.name)
        if not record.accepted:
            self.metrics.inc("vidfiqa_tracks_rejected_total", stream=self.cfg.name)  # not face-like: no event
        if self.cutter is not None:
            self.cutter.submit(record)  # cut from the main stream, then to the outbox
        else:
            self.outbox.add(record)

    def run(self) -> None:
        delay = WORKER_RESTART_MIN_S
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                self._loop()
            except Exception as err:  # one broken stream must not take the others down: restart it
                if time.monotonic() - started > WORKER_RESTART_MAX_S:
                    delay = WORKER_RESTART_MIN_S  # it had been running well: not a failure in a row
                self.error, self.error_at = f"{type(err).__name__}: {err}", time.time()
                self.up, self.restarts = False, self.restarts + 1
                self.metrics.set("vidfiqa_worker_up", 0.0, stream=self.cfg.name)
                self.metrics.inc("vidfiqa_worker_restarts_total", stream=self.cfg.name)
                self.log("error", "stream worker failed, restarting", stream=self.cfg.name, error=self.error, restart_in_s=round(delay, 1))
                self._flush_open_tracks("worker_restart")
                self._processor = self._new_processor(self._fps) if self._fps is not None or self._size is not None else None
                if self.stop.wait(delay):
                    break
                delay = min(WORKER_RESTART_MAX_S, 2 * delay)
                self.up = True
                self.metrics.set("vidfiqa_worker_up", 1.0, stream=self.cfg.name)
                continue
            break
        self._flush_open_tracks("shutdown")

    def _flush_open_tracks(self, reason: TrackEnd) -> None:
        if self._processor is None:
            return
        try:
            self._processor.finish(reason)
        except Exception as err:
            self.log("error", "could not flush open tracks", stream=self.cfg.name, error=str(err))

    def _loop(self) -> None:
        cfg = self.cfg
        while not self.stop.is_set():
            item = self.frames.get(timeout=0.2)
            now = time.monotonic()
            processor = self._processor
            if processor is None:  # not connected yet
                if isinstance(item, Connected):
                    self._fps = item.fps
                    self._processor = self._new_processor(item.fps)
                    self._size = (item.width, item.height)
                    if self.cut is not None:
                        self.cut.analysed_size = self._size
                continue
            self.outbox.write_due()
            if item is None:
                # Nothing arrived: score what waits past max_wait_s, and end tracks of a stream that
                # has been down longer than keep_tracks_s (their people are gone as far as we know).
                with self._analysing():
                    processor.flush_due()
                if processor.open_tracks and self._last_frame_at is not None and now - self._last_frame_at > cfg.keep_tracks_s:
                    processor.finish("stream_lost")
                continue
            if isinstance(item, Connected):
                resized = self._size is not None and self._size != (item.width, item.height)
                gap = (now - self._last_frame_at) if self._last_frame_at is not None else 0.0
                if resized or gap > cfg.keep_tracks_s:
                    processor.finish("stream_lost" if not resized else "resolution_change")
                if resized:
                    self.log("info", "resolution changed", stream=cfg.name, size=f"{item.width}x{item.height}")
                self._size = (item.width, item.height)
                if self.cut is not None:
                    self.cut.analysed_size = self._size
                continue
            pending, arrived = item
            self._last_frame_at = now
            frame = pending.convert()
            if frame is None:
                self.log("warning", "frame skipped", stream=cfg.name, error=pending.error)
                continue
            live = Frame(index=self._index, pts=arrived - self._t0_mono, image=frame.image)
            self._index += 1
            with self._analysing():
                processor.process(live)
                # A track open longer than max_track_s is emitted now and goes on as a new segment.
                processor.split_long(live.pts, self.cfg.max_track_s)
            self.latencies.append(time.monotonic() - arrived)
            self.metrics.inc("vidfiqa_frames_processed_total", stream=cfg.name)
            self._publish_stage_times(processor)

    @contextlib.contextmanager
    def _analysing(self) -> Iterator[None]:
        """This stream is busy with a frame: batched models may wait for its calls."""
        if self.batched is None:
            yield
            return
        self.batched.register()
        try:
            yield
        finally:
            self.batched.unregister()

    def latency_quantiles(self) -> dict[str, float | None]:
        """Median and 95th percentile of the recent frames' arrival-to-analysed seconds."""
        if not self.latencies:
            return {"p50": None, "p95": None}
        values = np.fromiter(self.latencies, float)
        return {"p50": round(float(np.quantile(values, 0.5)), 3), "p95": round(float(np.quantile(values, 0.95)), 3)}

    def _publish_stage_times(self, processor: TrackProcessor) -> None:
        if self._index % 25:
            return
        for stage, seconds in processor.times.seconds.items():
            self.metrics.set("vidfiqa_stage_seconds_total", seconds, stream=self.cfg.name, stage=stage)
        self.metrics.set("vidfiqa_tracks_open", processor.open_tracks, stream=self.cfg.name)
        for quantile, latency in self.latency_quantiles().items():
            if latency is not None:
                self.metrics.set("vidfiqa_frame_latency_seconds", latency, stream=self.cfg.name, quantile=quantile)
