"""What is remembered about one open track: its per-detection quality series (a few numbers per
frame) and a bounded pool of selection candidates (``Faces`` rows with their crops, context
views and embeddings).  Memory per track is bounded however long the track runs, apart from the
series itself (about 50 bytes per detection)."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..faces import Faces, object_column
from ..components.reasons import ComponentLimits
from .identity import IdentityWatch
from .rule import frame_times
from .template_rules import TemplateBuilder


RECENT_ROWS = 64  # scored rows a track remembers for moving them to the other part of a split


@dataclass
class TrackHistory:
    """Series and candidate pool of one track.

    The pool keeps the best-quality face in each time bucket.  Buckets start ``bucket_s`` wide;
    when there are more than ``capacity`` of them the width doubles and neighbouring buckets merge
    (keeping their better face).  So the pool always holds the track's best frame, spread over its
    whole duration - what diversity-aware selection needs - in at most ``capacity`` rows.
    Times are ``pts``, or ``frame_index / fps`` for sources without timestamps.
    """

    track_id: int
    fps: float
    capacity: int = 32
    bucket_s: float = 0.2
    frame_index: list[int] = field(default_factory=list)
    pts: list[float] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)  # NaN: detected but not scored (gated)
    # The student's quality, the scale of the absolute floors (Faces.floor_quality): the same as
    # ``quality`` unless another method ranks (then ranked_by_other_method is set).
    floor_quality: list[float] = field(default_factory=list)
    ranked_by_other_method: bool = False
    # The selection's component limits (max_yaw ...): a row within them beats any row outside,
    # so a long track's pool does not trade its last frontal face for a better-scored turned one.
    limits: ComponentLimits | None = None
    detector_score: list[float] = field(default_factory=list)
    boxes: list[tuple[float, ...]] = field(default_factory=list)  # x1, y1, x2, y2
    pool: dict[int, Faces] = field(default_factory=dict)  # bucket -> one scored row
    detections_seen: int = 0  # counted when a detection arrives (its score may come later)
    unqueued: int = 0  # detections since the last one sent to be scored
    # The last two student qualities as scored, kept beside the series: quality_change is asked
    # at every detection, and a long track of faces too small to score is all NaN to scan.
    recent_scores: list[float] = field(default_factory=list)
    identity: IdentityWatch = field(default_factory=IdentityWatch)
    # The track's template (every scored face, weighted by quality: select/template_rules.py), and
    # the last scored rows that went into it, so that a split can move them to the other part.
    template: TemplateBuilder = field(default_factory=TemplateBuilder)
    recent_rows: deque = field(default_factory=lambda: deque(maxlen=RECENT_ROWS))

    def __len__(self) -> int:
        return len(self.frame_index)

    def observe(self, faces: Faces) -> None:
        """Add detections of this track to the series (every detection, scored or not: rows
        without ``quality`` count as unscored)."""
        unscored = np.full(len(faces), np.nan, np.float32)
        quality = faces.quality if faces.quality is not None else unscored
        floor = faces.floor_quality if faces.floor_quality is not None else unscored
        self.frame_index.extend(int(v) for v in faces.frame_index)
        self.pts.extend(float(v) for v in faces.timestamp)
        self.quality.extend(float(v) for v in quality)
        self.floor_quality.extend(float(v) for v in floor)
        self.ranked_by_other_method |= faces.face_quality is not None
        self.recent_scores = (self.recent_scores + [float(v) for v in floor if math.isfinite(v)])[-2:]
        self.detector_score.extend(float(v) for v in faces.scores)
        self.boxes.extend(tuple(float(v) for v in box) for box in faces.boxes)

    def quality_change(self) -> float:
        """How much the student's quality moved between the track's last two scored faces, in
        the order they were scored (0 before there are two)."""
        return abs(self.recent_scores[1] - self.recent_scores[0]) if len(self.recent_scores) == 2 else 0.0

    def time_of(self, faces: Faces) -> np.ndarray:
        return frame_times(faces.timestamp, faces.frame_index, self.fps)

    def offer(self, faces: Faces) -> None:
        """Scored rows of this track compete for the pool (a row must have ``quality``)."""
        scores = faces.quality
        if scores is None:
            raise ValueError("TrackHistory.offer: faces have no quality")
        if faces.embeddings is not None:
            floor = faces.floor_quality if faces.floor_quality is not None else scores
            self.template.add(faces.embeddings, floor)
            for i in range(len(faces)):
                self.recent_rows.append((int(faces.frame_index[i]), np.asarray(faces.embeddings[i], np.float32), float(floor[i])))
        for i, time_s in enumerate(self.time_of(faces)):
            if not math.isfinite(float(scores[i])):
                continue
            key = self._bucket(time_s)
            held = self.pool.get(key)
            row = faces[i]
            if held is not None and self._standing(row) <= self._standing(held):
                continue
            self.pool[key] = _compact(row)
        while len(self.pool) > self.capacity:
            self.bucket_s *= 2
            merged: dict[int, Faces] = {}
            for row in self.pool.values():
                key = self._bucket(float(self.time_of(row)[0]))
                if key not in merged or self._standing(row) > self._standing(merged[key]):
                    merged[key] = row
            self.pool = merged

    def _standing(self, row: Faces) -> tuple[bool, float]:
        """How a pool row competes: within the limits first, then by quality."""
        ok = self.limits.passes(row.components) if self.limits is not None else None
        return (True if ok is None else bool(ok[0]), _quality(row))

    def split(self, frame_index: int, new_track_id: int) -> "TrackHistory":
        """Move every detection from ``frame_index`` on into a new history (another person
        took over this track there); this history keeps the earlier ones."""
        later = [i for i, f in enumerate(self.frame_index) if f >= frame_index]
        stays = [i for i, f in enumerate(self.frame_index) if f < frame_index]
        moved = TrackHistory(new_track_id, fps=self.fps, capacity=self.capacity,
                             identity=IdentityWatch(self.identity.threshold, self.identity.confirm, self.identity.min_quality),
                             template=TemplateBuilder(self.template.temperature, self.template.model),
                             ranked_by_other_method=self.ranked_by_other_method, limits=self.limits)
        # The faces from the split on leave this track's template for the new part's (the last
        # RECENT_ROWS scored faces are known; a split is found within a few of them).
        later_rows = [row for row in self.recent_rows if row[0] >= frame_index]
        if later_rows:
            embeddings = np.stack([row[1] for row in later_rows])
            qualities = np.array([row[2] for row in later_rows])
            self.template.remove(embeddings, qualities)
            moved.template.add(embeddings, qualities)
            moved.recent_rows.extend(later_rows)
            self.recent_rows = deque((row for row in self.recent_rows if row[0] < frame_index), maxlen=RECENT_ROWS)
        for name in ("frame_index", "pts", "quality", "floor_quality", "detector_score", "boxes"):
            values = getattr(self, name)
            getattr(moved, name).extend(values[i] for i in later)
            setattr(self, name, [values[i] for i in stays])
        for key, row in list(self.pool.items()):
            if int(row.frame_index[0]) >= frame_index:
                moved.pool[key] = self.pool.pop(key)
        moved.bucket_s = self.bucket_s
        moved.detections_seen = len(later)
        for part in (self, moved):  # each part's own last two scores (a split is rare: a scan is fine)
            part.recent_scores = [v for v in part.floor_quality if math.isfinite(v)][-2:]
        suspects = [u for f, u in self.identity.suspects if f >= frame_index]
        if suspects:
            moved.identity.seed(np.stack(suspects))
        self.identity.suspects = []
        return moved

    def candidates(self) -> Faces:
        """The pool as one record, in frame order."""
        rows = sorted(self.pool.values(), key=lambda row: int(row.frame_index[0]))
        return Faces.concat(rows)

    def _bucket(self, time_s: float) -> int:
        return int(math.floor(time_s / self.bucket_s))


def _quality(row: Faces) -> float:
    assert row.quality is not None  # only scored rows enter the pool
    return float(row.quality[0])


CONTEXT_JPEG_QUALITY = 92  # the gallery's (export/images.py): the JPEG written is these very bytes


def _compact(row: Faces) -> Faces:
    """A pool row keeps its context view JPEG-encoded: a 256 px RGB view is 196 KB, its JPEG
    about 15 KB, and a pool holds up to ``capacity`` rows per open track (measured: the views
    were the largest per-camera memory in `vidfiqa watch` after the decoder)."""
    if row.context is None or isinstance(row.context[0], bytes):
        return row
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(row.context[0], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, CONTEXT_JPEG_QUALITY])
    if not ok:
        return row
    return row.replace(context=object_column([data.tobytes()]))
