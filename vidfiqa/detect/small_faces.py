"""Small faces in large frames: a second, closer look where the first pass was unsure.

A 1080p frame shrunk to the detector's 640 px loses faces under about 40 px: at a third of their
size they are at the edge of RetinaFace's smallest anchors.  Searching the whole frame at its own
size finds them but costs several times as much.  The first pass already points at most of
them: it scores them, only too low.  So the whole frame is searched once at ``input_size`` with
a low threshold, every confident face is kept, and each *unsure* candidate (score in [``unsure_score``, ``score_threshold``)) is looked
at again in a small region around it at a resolution near the frame's own (the region
re-detector of ``region.py``, all regions in one call).  Measured on the 1080p street crowd
(benchmarks/small_faces.py, results/small_faces_vm.json, one thread): of the 148 faces that
detection at the full 1920 px finds, 138 (51 of the 59 under 48 px) at 67.2 ms per frame,
against 117 (30) at 34.4 ms for 640 px alone - as many as searching the frame at 1280 px, which
takes 130.0 ms.

Only frames much larger than ``input_size`` (long side at least ``min_shrink`` times it) get the
second look: on smaller ones the first pass loses little.  On the street crowd at 720p (the same
frames; benchmarks/small_faces.py) the first pass at 640 px finds 106 of the 115 faces of at least
24 px that a 1280 px search finds, at 27.6 ms per frame; the second look adds 6, at 66.3 ms and
with 8 more false detections, so 720p at 640 (a shrink of 2.0) is left to the first pass.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..boxes import iou_matrix
from ..faces import Faces
from .base import FaceDetector, as_rgb
from .region import RegionRedetector

UNSURE_SCORE = 0.05
MIN_SHRINK = 2.5  # frames at least this many times the input size (1600 px and up at 640: 1080p, not 720p)


class SmallFaceSearch(FaceDetector):
    """``first`` (built with ``score_threshold=unsure_score``) over the whole frame, then
    ``regions`` around its unsure candidates; returns faces scoring at least ``score_threshold``."""

    def __init__(self, first: FaceDetector, regions: RegionRedetector, score_threshold: float, unsure_score: float = UNSURE_SCORE,
                 min_shrink: float = MIN_SHRINK):
        self.first, self.regions = first, regions
        self.settings = first.settings
        self.name = first.name
        self.score_threshold, self.unsure_score, self.min_shrink = float(score_threshold), float(unsure_score), float(min_shrink)

    def _detect_batch(self, frames: Sequence[np.ndarray]):
        raise NotImplementedError  # detect() is overridden: it needs the frames' indices

    def detect(self, frames, frame_indices=None, timestamps=None) -> Faces:
        found = self.first.detect(frames, frame_indices, timestamps)
        frames = [as_rgb(f) for f in frames]
        indices = list(range(len(frames))) if frame_indices is None else list(frame_indices)
        stamps = [np.nan] * len(frames) if timestamps is None else list(timestamps)
        parts = []
        for frame, index, pts in zip(frames, indices, stamps):
            mine = found.in_frame(int(index))
            sure = mine[mine.scores >= self.score_threshold]
            unsure = mine[mine.scores < self.score_threshold]
            parts.append(sure)
            if len(unsure) == 0 or max(frame.shape[:2]) < self.min_shrink * self.settings.input_size:
                continue
            closer = self.regions(frame, unsure.boxes, int(index), float(pts))
            closer = closer[closer.scores >= self.score_threshold]
            if len(closer) and len(sure):  # a face the first pass was sure of, seen again: keep one
                closer = closer[iou_matrix(closer.boxes, sure.boxes).max(axis=1) < 0.4]
            parts.append(closer)
        return Faces.concat(parts) if parts else Faces.empty()
