"""What the pipeline remembers about one track while it is open: the per-detection quality
series (a few numbers per frame) and a bounded pool of selection candidates (crops, context
crops, embeddings).  Memory per track is bounded however long the track runs, apart from the
series itself (about 50 bytes per detection)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Candidate:
    """One frame of a track that may end up selected."""

    frame_index: int
    pts: float
    time_s: float  # pts, or frame_index / fps when the source has no timestamps
    box: np.ndarray  # (4,) x1 y1 x2 y2, frame pixels
    landmarks: np.ndarray  # (5, 2)
    detector_score: float
    quality: float
    embedding: np.ndarray  # (D,) the student's embedding, L2-normalised
    crop: np.ndarray  # aligned 112x112 RGB
    context: np.ndarray  # wider RGB crop around the face


@dataclass
class TrackRecord:
    """Series and candidate pool of one track.

    The pool keeps the best-quality frame in each time bucket.  Buckets start ``bucket_s`` wide;
    when there are more than ``capacity`` of them the width doubles and neighbouring buckets merge
    (keeping their better frame).  So the pool always holds the track's best frame, spread over its
    whole duration - what diversity-aware selection needs - in at most ``capacity`` entries.
    """

    track_id: int
    capacity: int = 32
    bucket_s: float = 0.2
    frame_index: list[int] = field(default_factory=list)
    pts: list[float] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)  # NaN: detected but not scored (gated)
    detector_score: list[float] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    pool: dict[int, Candidate] = field(default_factory=dict)
    detections_seen: int = 0  # counted when a detection arrives (its score may come later)

    def __len__(self) -> int:
        return len(self.frame_index)

    def observe(self, frame_index: int, pts: float, box, detector_score: float, quality: float) -> None:
        """Add one detection to the series (every detection, scored or not)."""
        self.frame_index.append(int(frame_index))
        self.pts.append(float(pts))
        self.quality.append(float(quality))
        self.detector_score.append(float(detector_score))
        self.boxes.append(tuple(float(v) for v in box))

    def wants(self, time_s: float, quality: float) -> bool:
        """Would a frame at ``time_s`` with ``quality`` enter the pool?  (Lets the caller skip
        building a context crop that would be thrown away.)"""
        if not math.isfinite(quality):
            return False
        held = self.pool.get(self._bucket(time_s))
        return held is None or quality > held.quality

    def offer(self, candidate: Candidate) -> None:
        if not self.wants(candidate.time_s, candidate.quality):
            return
        self.pool[self._bucket(candidate.time_s)] = candidate
        while len(self.pool) > self.capacity:
            self.bucket_s *= 2
            merged: dict[int, Candidate] = {}
            for item in self.pool.values():
                key = self._bucket(item.time_s)
                if key not in merged or item.quality > merged[key].quality:
                    merged[key] = item
            self.pool = merged

    def candidates(self) -> list[Candidate]:
        return sorted(self.pool.values(), key=lambda c: c.frame_index)

    def _bucket(self, time_s: float) -> int:
        return int(math.floor(time_s / self.bucket_s))
