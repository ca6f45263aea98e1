"""The per-frame loop over one stream of frames, shared by `vidfiqa run` and `vidfiqa watch`.

    frame -> shot cut? -> detect (whole frame, or regions around tracked faces) -> track
          -> size gate -> align + context view -> scoring queue -> (batch) quality, embedding
          -> each track's history -> (track ends) smooth + select -> TrackResult -> on_track

Every stage takes and returns :class:`~vidfiqa.faces.Faces`; a finished track leaves as a
:class:`~vidfiqa.select.TrackResult` through ``on_track``: the end-of-track chain
(``select/chain.py``) and then the sinks, the same for `vidfiqa run` and `vidfiqa watch`.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from ..boxes import context_view
from ..faces import Faces, object_column
from ..quality.batching import ScoringQueue
from ..select import TrackEnd, TrackHistory, TrackResult, finish_track, frame_times
from ..select.identity import IdentityWatch
from ..video.shots import SceneCutDetector
from ..video.source import Frame
from ..select.template_rules import TemplateBuilder
from .models import Models, embedding_model_name
from .settings import RunSettings

OnTrack = Callable[[TrackResult], object]


@dataclass
class StageTimes:
    """Wall-clock seconds spent in each stage of the loop."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.seconds.items()}


@dataclass
class ProcessorCounts:
    """What one processor has done so far."""

    processed: int = 0  # frames through process()
    full_detections: int = 0  # frames searched whole
    detections: int = 0  # faces found (tracked)
    scored: int = 0  # faces scored
    dropped_short: int = 0  # tracks too short to be real
    tracks_emitted: int = 0  # results handed to on_track


class TrackProcessor:
    """Scene cuts, detection, tracking, scoring and track histories of one stream of frames.

    ``step_s`` is the video time between two :meth:`process` calls (the tracker counts absence in
    updates); ``fps`` turns frame numbers into seconds for sources without timestamps.
    ``video_clock``: faces wait for a scoring batch at most ``max_wait_s`` of video time (files),
    else of wall time (live streams).  ``models``
    may be shared by several processors in different threads (see ``models.py``); everything else
    here belongs to one stream.
    """

    def __init__(self, models: Models, settings: RunSettings, on_track: OnTrack, step_s: float, fps: float, video_clock: bool = False):
        from ..track import ByteTracker, TrackerSettings

        s = self.settings = settings
        self.models, self.on_track, self.fps = models, on_track, fps
        self.rule = s.selection_rule()
        self.embedding_model = embedding_model_name(s)
        self.tracker = ByteTracker(
            TrackerSettings(high_score=s.track_high_score, low_score=s.detect_score, new_track_score=s.track_new_score, lost_after_s=s.lost_after_s),
            step_s=step_s,
        )
        self.cut_detector = SceneCutDetector(s.scene_cut)
        # A file's faces wait for a batch in video time, not wall time: which faces are scored
        # then depends on the video alone (score_change reads the scores), not on the machine's speed.
        self._video_now = 0.0
        clock = (lambda: self._video_now) if video_clock else time.monotonic
        self.queue = ScoringQueue(models.scorer, s.batch_size, s.max_wait_s, embedder=models.embedder, clock=clock)
        self.histories: dict[int, TrackHistory] = {}
        self.times = StageTimes()
        self.counts = ProcessorCounts()
        self._since_full = s.detect_every  # frames since the last full-frame search: search the first
        self._renamed: dict[int, int] | None = None  # old -> new id of splits made while _end scores the queue

    # ------------------------------------------------------------------ public surface
    @property
    def searches_every_frame(self) -> bool:
        """Every frame is searched whole: its detection depends on the frame alone, so it may be
        computed ahead, in another thread (see ``process(detected=...)``)."""
        return self.models.region_detector is None

    def process(self, frame: Frame, detected: Faces | None = None) -> None:
        """One frame through shot-cut detection, detection, tracking and (batched) scoring.

        ``detected``: the frame's whole-frame detection, made ahead (only when
        :attr:`searches_every_frame`); None: detect here."""
        times, m = self.times, self.models
        self._video_now = float(frame_times(frame.pts, frame.index, self.fps))
        with times("scene_cut"):
            if frame.thumbnails is not None:
                # Every decoded frame since the last analysed one: a cut between them counts here.
                cut = False
                for thumb in frame.thumbnails:
                    cut = self.cut_detector.observe(thumb) or cut
            else:
                cut = self.cut_detector(frame.image)
        if cut:
            self._end(self.tracker.reset(), "scene_cut")
        if detected is not None and not self.searches_every_frame:
            raise ValueError("process(detected=...) needs detect_every = 1: other frames are searched around the tracks")
        full = cut or m.region_detector is None or self._since_full >= self.settings.detect_every - 1
        if full:
            if detected is None:
                with times("detect"):
                    detected = m.detector.detect([frame.image], [frame.index], [frame.pts])
            faces = detected
            self.counts.full_detections += 1
            self._since_full = 0
        else:
            assert m.region_detector is not None
            with times("redetect"):
                _, boxes = self.tracker.predicted_boxes()
                faces = m.region_detector(frame.image, boxes, frame.index, frame.pts)
            self._since_full += 1
        with times("track"):
            tracked, ended = self.tracker.update(faces)
        self._add(tracked, frame.image)
        self._end(ended, "lost")
        self.counts.processed += 1

    def flush_due(self) -> None:
        """Score the queued faces if a batch is due (full, or its oldest face waited too long):
        a live stream calls this when no frame arrives, so faces never wait for the next one."""
        if self.queue.due():
            self._score_queued()

    def finish(self, reason: TrackEnd) -> None:
        """End every open track now (end of input, a long gap in a stream, shutdown)."""
        self._end(self.tracker.reset(), reason)
        self.cut_detector.reset()
        self._since_full = self.settings.detect_every  # search the next frame whole

    def split_long(self, now_pts: float, max_track_s: float) -> None:
        """Emit every track open at least ``max_track_s`` (``ended: max_duration``); the tracker
        keeps following it and its next result is the next segment."""
        long = [tid for tid, h in self.histories.items() if h.pts and now_pts - h.pts[0] >= max_track_s]
        self._end(long, "max_duration", keep_open=True)

    @property
    def open_tracks(self) -> int:
        return len(self.histories)

    # ------------------------------------------------------------------ stages
    def _new_history(self, track_id: int) -> TrackHistory:
        s = self.settings
        watch = IdentityWatch(threshold=s.identity_split, confirm=s.identity_confirm)
        return TrackHistory(track_id, fps=self.fps, capacity=s.candidates, identity=watch,
                            template=TemplateBuilder(model=self.embedding_model), limits=self.rule.limits if self.rule.limits.active else None)

    def _add(self, faces: Faces, frame: np.ndarray) -> None:
        """Record tracked faces; queue the ones that pass the size gate (and are due) for scoring."""
        s = self.settings
        self.counts.detections += len(faces)
        for tid in np.unique(faces.track_id):
            self.histories.setdefault(int(tid), self._new_history(int(tid)))
        big = np.minimum(faces.widths, faces.heights) >= s.min_face_size
        # A track is scored on its first detection, then on every score_every-th, and on every
        # one while its quality is changing (its last two scores differ by more than score_change):
        # a steady face needs few scores, a face turning or coming into focus is followed closely.
        for i, tid in enumerate(faces.track_id):
            history = self.histories[int(tid)]
            due = history.detections_seen == 0 or history.unqueued >= s.score_every - 1 or history.quality_change() > s.score_change
            big[i] &= due
            history.unqueued = 0 if big[i] else history.unqueued + 1
            history.detections_seen += 1
        for row in np.flatnonzero(~big):  # seen but too small to judge (or skipped): in the series, unscored
            self.histories[int(faces.track_id[row])].observe(faces[int(row)])
        faces = faces[big]
        if len(faces):
            with self.times("align"):
                aligned = self.models.aligner(faces, {int(faces.frame_index[0]): frame})
            if self.models.components is not None:
                with self.times("components"):
                    aligned = aligned.replace(components=self.models.components.measure(aligned, frame))
            with self.times("align"):
                views = [context_view(frame, box, s.context_scale, s.context_size) for box in faces.boxes]
            self.queue.put(aligned.replace(context=object_column(views)))
        self.flush_due()

    def _score_queued(self) -> None:
        if len(self.queue) == 0:
            return
        with self.times("score"):
            scored = self.queue.flush()
        if self.models.components is not None:
            scored = self.models.components.add_occlusion(scored)
        self.counts.scored += len(scored)
        for tid in np.unique(scored.track_id):
            rows = scored[scored.track_id == tid]
            with self.times("identity"):
                parts = self._identity_parts(int(tid), rows)
            for part_id, part in parts:
                self._record(part_id, part)

    def _record(self, track_id: int, rows: Faces) -> None:
        """Scored rows of one track into its series and candidate pool."""
        history = self.histories[track_id]
        history.observe(rows)
        history.offer(rows)

    def _identity_parts(self, track_id: int, rows: Faces) -> list[tuple[int, Faces]]:
        """Split one track's newly scored rows (frame order) where another person takes over.

        A split gives the rest of the track a fresh id (the tracker follows it under that id from
        now on), moves the detections already recorded from that frame on into a new history,
        and ends the earlier part with ``ended: "identity_change"``.  A flush scores every queued
        face, so no face is left in the queue under the old id after a split."""
        assert rows.embeddings is not None and rows.floor_quality is not None
        votes = rows.floor_quality  # the vote floor is on the student's scale, whatever method ranks
        parts: list[tuple[int, Faces]] = []
        start = 0
        history = self.histories[track_id]
        for i in range(len(rows)):
            change = history.identity.check(int(rows.frame_index[i]), rows.embeddings[i], float(votes[i]))
            if change is None:
                continue
            done = rows[np.arange(start, i + 1)]
            before, after = done[done.frame_index < change], done[done.frame_index >= change]
            if len(before):
                parts.append((track_id, before))
            new_id = self.tracker.relabel(track_id)
            if self._renamed is not None:
                self._renamed[track_id] = new_id
            self.histories[new_id] = history.split(change, new_id)
            for part_id, part in parts:  # what came before the change belongs to the old part
                self._record(part_id, part)
            parts = [(new_id, after)] if len(after) else []
            self._end([track_id], "identity_change")
            track_id, history, start = new_id, self.histories[new_id], i + 1
        rest = rows[np.arange(start, len(rows))]
        if len(rest):
            parts.append((track_id, rest))
        return parts

    def _end(self, track_ids: list[int], reason: TrackEnd, keep_open: bool = False) -> None:
        """Select and hand over these tracks.  ``keep_open``: a fresh history starts (a long
        track emitted in segments)."""
        if not any(t in self.histories for t in track_ids):
            return
        # Their last faces may still be waiting for a batch.  Scoring them can split one of these
        # tracks (another person took over): the earlier part ends there, as identity_change, and
        # the later part, under its new id, is what ends here.
        outer = self._renamed is None
        if outer:
            self._renamed = {}
        known = set(self._renamed or {})  # splits made before this call (by the flush of a caller)
        try:
            self._score_queued()
            renamed = {old: new for old, new in (self._renamed or {}).items() if old not in known}
        finally:
            if outer:
                self._renamed = None
        ending: list[int] = []
        for tid in track_ids:
            while tid in renamed:
                tid = renamed[tid]
            if tid in self.histories and tid not in ending:
                ending.append(tid)
        track_ids = ending
        with self.times("select_and_write"):
            for tid in track_ids:
                result = finish_track(self.histories.pop(tid), reason, self.rule)
                if keep_open:
                    self.histories[tid] = self._new_history(tid)
                if result is None:
                    self.counts.dropped_short += 1
                    continue
                self.counts.tracks_emitted += 1
                self.on_track(result)
