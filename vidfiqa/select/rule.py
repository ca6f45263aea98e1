"""The selection rule: its settings, a frame's merit and a row's time - each defined once.

:class:`SelectionRule` holds the settings of smoothing and selection; ``RunSettings``
(pipeline/settings.py) is where their defaults and help texts live, and
``RunSettings.selection_rule()`` is the only way the pipeline makes one, so `vidfiqa run`,
`vidfiqa watch`, the persons' picks and `vidfiqa eval ytf --rule selected` cannot drift apart.
How the rule picks frames is documented in ``diverse.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..components.reasons import ComponentLimits

#: The frame rate assumed when a source says nothing about its timing: only to turn frame
#: numbers into seconds (the selection rule's time terms, a track's span).
DEFAULT_FPS = 25.0


@dataclass(frozen=True)
class SelectionRule:
    """The settings of smoothing and selection (``RunSettings.selection_rule()`` makes one; the
    meaning of each is in `vidfiqa run --help`)."""

    top_k: int
    diversity: float
    time_scale_s: float
    embedding_weight: float
    min_gap_s: float
    min_quality: float | None
    smooth_window: int
    smooth_sigma: float
    min_track_detections: int
    limits: ComponentLimits = field(default_factory=ComponentLimits)  # max_yaw, max_pitch, min_inter_eye_px

    @classmethod
    def default(cls) -> "SelectionRule":
        """The rule of the default settings."""
        from ..pipeline.settings import RunSettings

        return RunSettings().selection_rule()


def merit(quality: np.ndarray, smoothed: np.ndarray) -> np.ndarray:
    """A frame's merit: ``min(quality, smoothed quality)`` - it must be good itself *and* sit in
    a good stretch of the track, so neither a one-frame spike nor a blink between good frames wins."""
    return np.minimum(np.asarray(quality, np.float64), np.asarray(smoothed, np.float64))


def frame_times(pts: np.ndarray | float, frame_index: np.ndarray | int, fps: float) -> np.ndarray:
    """Seconds of each row: its presentation time, or ``frame_index / fps`` where the source gave none."""
    pts = np.asarray(pts, np.float64)
    return np.where(np.isfinite(pts), pts, np.asarray(frame_index, np.float64) / fps)
