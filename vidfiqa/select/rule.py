"""Turning a track's history into its result: smooth the quality series, then choose the best,
mutually different frames from the candidate pool (the rule is documented in ``diverse.py``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .diverse import select_diverse
from .persons import track_template
from .pool import TrackHistory
from .result import QualitySeries, TrackResult
from .smoothing import smooth_quality


@dataclass(frozen=True)
class SelectionRule:
    """The settings of smoothing and selection (``RunSettings.selection_rule()`` fills them)."""

    top_k: int = 3
    diversity: float = 0.3
    time_scale_s: float = 2.0
    embedding_weight: float = 0.5
    min_gap_s: float = 0.25
    min_quality: float | None = None
    smooth_window: int = 5
    smooth_sigma: float = 1.0
    min_track_detections: int = 3


def finish_track(history: TrackHistory, ended: str, rule: SelectionRule) -> TrackResult | None:
    """The track's result, or None for a track too short to be real (``min_track_detections``)."""
    if len(history) < rule.min_track_detections:
        return None
    order = np.argsort(np.asarray(history.frame_index), kind="stable")
    quality = np.asarray(history.quality, np.float64)[order]
    floor = np.asarray(history.face_quality, np.float64)[order]
    differs = not np.array_equal(floor, quality, equal_nan=True)  # another method ranks: keep the student's too
    series = QualitySeries(
        frame_index=np.asarray(history.frame_index, np.int64)[order],
        pts=np.asarray(history.pts, np.float64)[order],
        quality=quality,
        quality_smoothed=smooth_quality(quality, rule.smooth_window, rule.smooth_sigma).astype(np.float64),
        detector_score=np.asarray(history.detector_score, np.float64)[order],
        boxes=np.asarray(history.boxes, np.float64).reshape(-1, 4)[order],
        face_quality=floor if differs else None,
        face_quality_smoothed=smooth_quality(floor, rule.smooth_window, rule.smooth_sigma).astype(np.float64) if differs else None,
    )
    candidates = history.candidates()
    picks: list[int] = []
    smoothed = series.smoothed_at(candidates.frame_index) if len(candidates) else np.zeros(0)
    if len(candidates):
        assert candidates.quality is not None and candidates.embeddings is not None
        # A frame must be good itself and sit in a good stretch of the track.
        merit = np.minimum(candidates.quality.astype(np.float64), smoothed)
        # min_quality is on the student's scale (what it was calibrated on), whatever method ranks.
        position = np.searchsorted(series.frame_index, np.asarray(candidates.frame_index, np.int64))
        floor_smoothed = series.floor_smoothed[position]
        eligible = np.ones(len(candidates), bool) if rule.min_quality is None else floor_smoothed >= rule.min_quality
        picks = select_diverse(
            merit, history.time_of(candidates), candidates.embeddings,
            top_k=rule.top_k, diversity=rule.diversity, time_scale_s=rule.time_scale_s,
            embedding_weight=rule.embedding_weight, min_gap_s=rule.min_gap_s, eligible=eligible,
        )
    template = None
    if len(candidates):
        assert candidates.embeddings is not None and candidates.quality is not None
        # The pool spreads over the whole track: its rows make the track's template for linking.
        template = track_template(candidates.embeddings, candidates.quality)
    return TrackResult(
        track_id=history.track_id,
        ended=ended,
        series=series,
        chosen=candidates[np.asarray(picks, np.int64)],
        chosen_smoothed=smoothed[np.asarray(picks, np.int64)],
        template=template,
        face_template=history.face_template if history.face_template.count else None,
    )
