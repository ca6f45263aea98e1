"""What a finished track is: a typed :class:`TrackResult` (its series, its picks, its templates)
and why it ended (:data:`TrackEnd`).

The end-of-track chain (``chain.py``) wraps it into the record every sink takes; the sinks
serialise it themselves (``vidfiqa.export.entries``): nothing in the analysis loop builds JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from ..faces import Faces

if TYPE_CHECKING:
    from .template_rules import TemplateBuilder

#: Why a track ended (the manifest's and events' ``ended``): a closed set, documented in
#: :data:`TRACK_END_MEANING` and docs/manifest.md.
TrackEnd = Literal["lost", "scene_cut", "identity_change", "end_of_input", "interrupted", "max_duration", "stream_lost",
                   "resolution_change", "worker_restart", "shutdown"]
TRACK_ENDS: tuple[str, ...] = get_args(TrackEnd)
TRACK_END_MEANING: dict[str, str] = {
    "lost": "the face was not seen for lost_after_s",
    "scene_cut": "a hard cut, or the end of a cross-dissolve",
    "identity_change": "another person took the tracked face's place; the rest of it is a new track",
    "end_of_input": "the file or frame folder ended",
    "interrupted": "vidfiqa run was stopped by a signal (Ctrl-C, SIGTERM): open tracks were finished",
    "max_duration": "a live track open for max_track_s: this part is emitted and the track goes on as the next segment",
    "stream_lost": "a camera delivered nothing for keep_tracks_s (or came back after longer)",
    "resolution_change": "a camera came back with another frame size",
    "worker_restart": "a camera's analysis failed and was restarted; its open tracks were emitted first",
    "shutdown": "vidfiqa watch stopped (a signal, --duration, or every input ended)",
}
assert set(TRACK_END_MEANING) == set(TRACK_ENDS)


@dataclass(frozen=True)
class PickSource:
    """Where a pick's images were cut (select/recut.py): the main stream's full-size frame, or the
    analysed frame, and why when the main one could not be used."""

    stream: Literal["main", "analysed"]
    size: tuple[int, int]  # width, height of the frame the images were cut from
    reason: str | None = None  # why not the main stream (None when it is, or there is none)
    time_error_s: float | None = None  # main frame time - pick time, on the analysed clock
    frame_offset: int | None = None  # which main frame matched: 0 the nearest in time, -1 the one before ...
    landmark_error: float | None = None  # mean landmark distance / box width, main (scaled) vs analysed
    quality: float | None = None  # the main crop's quality (the pick's ``quality`` is the analysed one's)
    box: tuple[float, float, float, float] | None = None  # the face in main-frame pixels

    def to_dict(self) -> dict:
        out: dict = {"stream": self.stream, "size": list(self.size)}
        for key in ("reason", "time_error_s", "frame_offset", "landmark_error", "quality", "box"):
            value = getattr(self, key)
            if value is not None:
                out[key] = [round(float(v), 2) for v in value] if key == "box" else (round(value, 4) if isinstance(value, float) else value)
        return out


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
    quality at each of them.  ``ended`` says why the track ended (:data:`TrackEnd`).

    Two templates, each with one job (a third, the identity watch's running *reference*, lives
    only while the track is open: identity.py):

    * ``template``: every scored face's embedding, weighted by quality (template_rules.py) - the
      manifests' and events' ``template``, what users enroll and search with;
    * ``link_template``: the candidate pool's best faces (persons.py ``link_template``) - what
      tracks are linked into persons by.

    Both are None when nothing was scored.
    """

    track_id: int
    ended: TrackEnd
    series: QualitySeries
    chosen: Faces
    chosen_smoothed: np.ndarray
    link_template: np.ndarray | None = None
    template: "TemplateBuilder | None" = None
    # Set when a main stream is cut from (select/recut.py): per pick where its images come from,
    # and a native-resolution face image (JPEG bytes; None where the pick fell back).
    sources: tuple[PickSource, ...] | None = None
    native_faces: tuple[bytes | None, ...] | None = None
    # Why the track's best face is poor, in words ("turned away: yaw 64 deg", "too dark":
    # components/reasons.py); () when nothing stands out or nothing was measured.
    best_face: tuple[str, ...] = ()
    # Why no frame was picked (one line); None when there are picks.
    unusable: str | None = None

    def __post_init__(self) -> None:
        if self.ended not in TRACK_ENDS:
            raise ValueError(f"unknown track end {self.ended!r}: one of {', '.join(TRACK_ENDS)}")

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
