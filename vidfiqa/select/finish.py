"""Turning a track's history into its result: smooth the quality series, then choose the best,
mutually different frames from the candidate pool (the rule: ``rule.py``, ``diverse.py``)."""

from __future__ import annotations

import numpy as np

from ..components import reasons
from ..faces import Faces
from .diverse import select_diverse
from .persons import link_template
from .pool import TrackHistory
from .result import QualitySeries, TrackEnd, TrackResult
from .rule import SelectionRule, merit
from .smoothing import smooth_quality


def finish_track(history: TrackHistory, ended: TrackEnd, rule: SelectionRule) -> TrackResult | None:
    """The track's result, or None for a track too short to be real (``min_track_detections``)."""
    if len(history) < rule.min_track_detections:
        return None
    order = np.argsort(np.asarray(history.frame_index), kind="stable")
    quality = np.asarray(history.quality, np.float64)[order]
    floor = np.asarray(history.floor_quality, np.float64)[order]
    # Another method ranks: the student's series is kept beside it, for the floors.
    other_method = history.ranked_by_other_method
    series = QualitySeries(
        frame_index=np.asarray(history.frame_index, np.int64)[order],
        pts=np.asarray(history.pts, np.float64)[order],
        quality=quality,
        quality_smoothed=smooth_quality(quality, rule.smooth_window, rule.smooth_sigma).astype(np.float64),
        detector_score=np.asarray(history.detector_score, np.float64)[order],
        boxes=np.asarray(history.boxes, np.float64).reshape(-1, 4)[order],
        face_quality=floor if other_method else None,
        face_quality_smoothed=smooth_quality(floor, rule.smooth_window, rule.smooth_sigma).astype(np.float64) if other_method else None,
    )
    candidates = history.candidates()
    picks: list[int] = []
    best_face: tuple[str, ...] = ()
    unusable = "nothing was scored: every face was smaller than min_face_size" if len(candidates) == 0 else None
    smoothed = series.smoothed_at(candidates.frame_index) if len(candidates) else np.zeros(0)
    link = None
    if len(candidates):
        assert candidates.quality is not None and candidates.embeddings is not None
        # min_quality is on the student's scale (what it was calibrated on), whatever method ranks.
        position = np.searchsorted(series.frame_index, np.asarray(candidates.frame_index, np.int64))
        floor_smoothed = series.floor_smoothed[position]
        good_enough = np.ones(len(candidates), bool) if rule.min_quality is None else floor_smoothed >= rule.min_quality
        within = rule.limits.passes(candidates.components)
        eligible = good_enough if within is None else good_enough & within
        merits = merit(candidates.quality, smoothed)
        picks = select_diverse(merits, history.time_of(candidates), candidates.embeddings, rule, eligible=eligible)
        best_face = _describe(candidates, int(np.argmax(merits)))
        if not picks:
            unusable = _why_unusable(candidates, merits, within, rule)
        # The pool spreads over the whole track: its rows make the track's template for linking.
        link = link_template(candidates.embeddings, candidates.quality)
    return TrackResult(
        track_id=history.track_id,
        ended=ended,
        series=series,
        chosen=candidates[np.asarray(picks, np.int64)],
        chosen_smoothed=smoothed[np.asarray(picks, np.int64)],
        link_template=link,
        template=history.template if history.template.count else None,
        best_face=best_face,
        unusable=unusable,
    )


def _describe(candidates: Faces, row: int) -> tuple[str, ...]:
    """Why the track's best face (by merit) is poor, in words (components/reasons.py)."""
    return tuple(reasons(candidates.components[row])) if candidates.components is not None else ()


def _why_unusable(candidates: Faces, merits: np.ndarray, within: np.ndarray | None, rule: SelectionRule) -> str:
    """One line: why none of the track's candidates could be picked."""
    if within is not None and not within.any():
        row = int(np.argmax(merits))
        assert candidates.components is not None  # within is None without components
        return "no frame within the limits: " + ", ".join(rule.limits.failures(candidates.components[row]))
    pool = merits if within is None else np.where(within, merits, -np.inf)
    row = int(np.argmax(pool))
    words = _describe(candidates, row)
    return f"no frame reached min_quality {rule.min_quality:g}" + (f": {', '.join(words)}" if words else "")
