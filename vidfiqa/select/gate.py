"""Is a finished track a face at all?  A rule on the track's own series, from a TrackResult alone.

RetinaFace is confident (up to 0.97) about some things that are no face: a blurred chair, the
back of a head (users also report a wine glass and yellow flowers).  The quality model scores such
tracks near 0 all along, and the detector is less sure of them than of real faces.  :class:`FaceGate` turns that into an explainable rule on the track's features
(:func:`track_features`); its defaults were measured on the shared clips by
``benchmarks/face_gate.py`` (labels in ``benchmarks/face_gate_labels.json``, figures in
``benchmarks/results/face_gate_vm.json``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .result import TrackResult


def _stat(fn, values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(fn(values)) if len(values) else float("nan")


def track_features(result: TrackResult) -> dict[str, float]:
    """Per-track features the gate and its benchmark use (NaN where nothing was scored).

    ``quality_*`` are of the raw per-detection quality, ``smoothed_*`` of the smoothed series,
    ``detector_*`` of the detector confidence; ``detections`` is the track's length,
    ``duration_s`` its span in seconds (NaN without timestamps); ``face_size`` the median shorter
    side of its boxes in pixels.
    """
    s = result.series
    boxes = np.asarray(s.boxes, np.float64).reshape(-1, 4)
    sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    pts = np.asarray(s.pts, np.float64)
    return {
        "quality_max": _stat(np.max, s.quality),
        "quality_mean": _stat(np.mean, s.quality),
        "quality_median": _stat(np.median, s.quality),
        "smoothed_max": _stat(np.max, s.quality_smoothed),
        "smoothed_mean": _stat(np.mean, s.quality_smoothed),
        "smoothed_median": _stat(np.median, s.quality_smoothed),
        "detector_mean": _stat(np.mean, s.detector_score),
        "detector_max": _stat(np.max, s.detector_score),
        "detections": float(len(s)),
        "scored": float(result.num_scored),
        "duration_s": float(pts[-1] - pts[0]) if len(pts) and np.isfinite(pts[[0, -1]]).all() else float("nan"),
        "face_size": _stat(np.median, sides),
    }


@dataclass(frozen=True)
class FaceGate:
    """A track is not face-like when the quality model and the detector both doubt it: its best
    stretch of smoothed quality stays below ``min_quality`` AND its mean detector confidence
    below ``min_detector``.  A track with no scored detection fails too (nothing shows it is a
    face, and there is no crop to show).

    Neither alone separates the shared clips' tracks: real faces in profile, blurred or half out
    of the frame score 0.027-0.10, below the blurred chair's 0.075, but the detector is sure of
    them (mean >= 0.85); blurred frontal faces can have a mean confidence of 0.75-0.80, below the
    chair's 0.81, but score >= 0.118.  The false faces (the chair, the back of a bald head, the
    back of a helmet) are below both.  The defaults are the widest-margin box between them
    (0.091 / 0.83, margin 0.016 in each; ``benchmarks/face_gate.py``, figures and
    leave-one-clip-out in ``benchmarks/results/face_gate_vm.md``), the quality edge rounded.
    """

    min_quality: float = 0.09
    min_detector: float = 0.83

    def check(self, result: TrackResult) -> str | None:
        """None when the track passes; otherwise a one-line reason."""
        s = result.series
        scored = s.scored
        if not scored.any():
            return "no detection was scored (faces too small): not known to be a face"
        q = float(np.nanmax(s.floor_smoothed[scored]))  # the student's scale, whatever method ranks
        d = float(np.nanmean(s.detector_score))
        if q < self.min_quality and d < self.min_detector:
            return f"quality {q:.3f} < {self.min_quality:g} and detector confidence {d:.2f} < {self.min_detector:g}: not face-like"
        return None
