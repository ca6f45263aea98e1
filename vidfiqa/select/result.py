"""What a finished track hands to every sink: a typed :class:`TrackResult`.

The gallery, the event folder, the JSONL log and the webhook all take ``TrackResult`` objects and
serialise them themselves (``vidfiqa.export.entries``); nothing in the analysis loop builds JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..faces import Faces

if TYPE_CHECKING:
    from .template_rules import TemplateBuilder

@dataclass(frozen=True, eq=False)
class QualitySeries:
    """Every detection of one track, in frame order (unscored detections have NaN quality)."""

    frame_index: np.ndarray  # int64 (T,)
    pts: np.ndarray  # float64 (T,), NaN when the source has no timestamps
    quality: np.ndarray  # float64 (T,)
    quality_smoothed: np.ndarray  # float64 (T,)
    detector_score: np.ndarray  # float64 (T,)
    boxes: np.ndarray  # float64 (T, 4)
    # The student's quality and its smoothed series when another method set ``quality`` (the scale
    # the absolute floors are calibrated on); None: ``quality`` is the student's.
    face_quality: np.ndarray | None = None
    face_quality_smoothed: np.ndarray | None = None

    @property
    def floor_smoothed(self) -> np.ndarray:
        """The smoothed series that absolute floors (``min_quality``, the face gate) compare."""
        return self.face_quality_smoothed if self.face_quality_smoothed is not None else self.quality_smoothed

    def __len__(self) -> int:
        return len(self.frame_index)

    @property
    def scored(self) -> np.ndarray:
        return np.isfinite(self.quality)

    def smoothed_at(self, frame_index: np.ndarray) -> np.ndarray:
        """Smoothed quality of the detections at these frame numbers."""
        position = np.searchsorted(self.frame_index, np.asarray(frame_index, np.int64))
        return self.quality_smoothed[position]


@dataclass(frozen=True, eq=False)
class TrackResult:
    """One finished track (or one segment of a long live track).

    ``chosen`` holds the selected frames, best first, as ``Faces`` rows with ``crops`` (aligned),
    ``context`` (wider views), ``quality`` and ``embeddings``; ``chosen_smoothed`` is the smoothed
    quality at each of them.  ``ended`` says why the track ended: ``lost``, ``scene_cut``,
    ``end_of_input``, ``interrupted``, ``max_duration``, ``stream_lost``, ``resolution_change``,
    ``shutdown``, ``identity_change`` (another person took over the track's place).
    """

    track_id: int
    ended: str
    series: QualitySeries
    chosen: Faces
    chosen_smoothed: np.ndarray
    template: np.ndarray | None = None  # unit vector of the track's candidates, for linking tracks (select/persons.py); None: nothing scored
    # Every scored face's embedding, weighted by quality (select/template_rules.py): the template
    # manifests and events give users for recognition.  None: nothing scored.
    face_template: "TemplateBuilder | None" = None

    @property
    def num_detections(self) -> int:
        return len(self.series)

    @property
    def num_scored(self) -> int:
        return int(self.series.scored.sum())

    @property
    def first_frame(self) -> int:
        return int(self.series.frame_index[0])

    @property
    def last_frame(self) -> int:
        return int(self.series.frame_index[-1])

    @property
    def first_pts(self) -> float:
        return float(self.series.pts[0])

    @property
    def last_pts(self) -> float:
        return float(self.series.pts[-1])

    @property
    def quality_max(self) -> float:
        """Highest smoothed quality (NaN when nothing was scored)."""
        s = self.series
        return float(np.nanmax(s.quality_smoothed)) if s.scored.any() else float("nan")

    @property
    def quality_mean(self) -> float:
        s = self.series
        return float(np.nanmean(s.quality)) if s.scored.any() else float("nan")
