"""Cut a track's picks from the main stream: the faces the substream chose, at full size.

A stage of the end-of-track chain for tracks that were accepted, run once their picks are chosen
(``vidfiqa run --main`` calls it in the chain, chain.py; a camera calls it from its cutter
thread, live/main_cutter.py).  For each pick it asks the main stream (video/main_stream.py,
live/main_ring.py) for the frames at the pick's time and either side, and looks for the face
again in the analysed box scaled to the main frame (a region detector: the main frame's own
landmarks).  The frame nearest in time is taken when its face lines up with the analysed one
(box overlap, then landmarks after scaling); otherwise, or when a neighbour lines up clearly
better, the neighbour.  That check confirms the two clocks agree.  The face is then aligned,
scored, and the crop, the context view and a native-resolution face image are cut from that
frame.  A pick that cannot be matched (no main frame near its time, no face where the analysed
one was) keeps its analysed images and says why (``PickSource.reason``).

The pick's ``quality`` stays the analysed one, on which the picks were chosen and ranked; the
main crop's is recorded beside it.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable

import cv2
import numpy as np

from ..boxes import context_view, iou_matrix
from ..detect.region import RegionRedetector
from ..faces import Faces, object_column
from ..quality.batching import ScoringQueue
from ..video.main_stream import MainFrame, MainFrames
from .result import PickSource, TrackResult

if TYPE_CHECKING:
    from ..pipeline.models import Models
    from ..pipeline.settings import RunSettings

MIN_IOU = 0.4  # the face found in the main frame vs the analysed box, scaled
MAX_LANDMARK_ERROR = 0.2  # mean landmark distance / box width: the detector jitters by 1-2 px on a 25-pixel analysed face
GOOD_LANDMARK_ERROR = 0.08  # the nearest frame lining up this well is taken without looking at its neighbours
CLEARLY_BETTER = 0.3  # a frame further in time must line up this much better (relative) to win
NATIVE_FACE_SCALE = 1.6  # the native face image: this times the box's longer side, uncut by alignment
NATIVE_FACE_MAX = 1024  # ... at most this many pixels on a side
JPEG_QUALITY = 92


class MainStreamCut:
    """Stage: a finished track -> the same track with its picks cut from the main stream."""

    def __init__(self, main: MainFrames, models: "Models", settings: "RunSettings", region: RegionRedetector,
                 analysed_size: tuple[int, int] | None = None, neighbours: int = 1,
                 observe: Callable[[PickSource], None] | None = None):
        self.main, self.models, self.settings, self.region = main, models, settings, region
        self.observe = observe  # told of every pick's source (a camera counts them in its metrics)
        self.analysed_size = analysed_size  # width, height; a camera sets it on every (re)connect
        self.neighbours = neighbours
        self._lock = threading.Lock()
        self.picks = 0
        self.from_main = 0
        self.fallbacks: Counter[str] = Counter()
        self.time_errors: list[float] = []
        self.frame_offsets: Counter[int] = Counter()
        self.landmark_errors: list[float] = []

    # ------------------------------------------------------------------ the stage
    def __call__(self, result: TrackResult) -> TrackResult:
        return self.cut_many([result])[0]

    def cut_many(self, results: list[TrackResult]) -> list[TrackResult]:
        """Several tracks at once: their picks' main frames are fetched together, so picks of
        different tracks that fall in one GOP decode it once (a camera that ended several tracks
        while the cut was busy)."""
        if self.analysed_size is None:
            return [self.fallback(r, "the analysed frame size is not known") if len(r.chosen) else r for r in results]
        times = [float(t) for r in results for t in r.chosen.timestamp]
        lookups = iter(self.main.around(times, self.neighbours) if times else [])
        main_size = self.main.size
        out = []
        for result in results:
            chosen = result.chosen
            if len(chosen) == 0:
                out.append(result)
                continue
            matches: list[tuple[MainFrame, Faces, float, int] | str] = []
            for rank in range(len(chosen)):
                lookup = next(lookups)
                if not lookup.frames or main_size is None:
                    matches.append(lookup.reason or "no main frame")
                    continue
                matches.append(self._match(chosen[rank], lookup.frames, main_size, float(chosen.timestamp[rank])))
            out.append(self._apply(result, matches))
        return out

    def _apply(self, result: TrackResult, matches: list[tuple[MainFrame, Faces, float, int] | str]) -> TrackResult:
        """The track with the matched picks' images cut from their main frames."""
        assert self.analysed_size is not None
        chosen = result.chosen
        found = [(rank, m) for rank, m in enumerate(matches) if not isinstance(m, str)]
        scored = self._score([m for _, m in found]) if found else None
        assert chosen.crops is not None and chosen.context is not None  # picks are scored rows: they carry both
        crops, context = list(chosen.crops), list(chosen.context)
        sources: list[PickSource] = []
        natives: list[bytes | None] = []
        row_of = {rank: k for k, (rank, _) in enumerate(found)}  # pick -> its row in ``scored``
        for rank in range(len(chosen)):
            match = matches[rank]
            if isinstance(match, str):
                sources.append(PickSource("analysed", self.analysed_size, reason=match))
                natives.append(None)
                continue
            frame, face, error, offset = match
            k = row_of[rank]
            assert scored is not None and scored.crops is not None and scored.quality is not None
            crops[rank] = scored.crops[k]
            scale = frame.image.shape[1] / self.analysed_size[0]
            context[rank] = context_view(frame.image, face.boxes[0], self.settings.context_scale,
                                         int(round(self.settings.context_size * max(1.0, scale))))
            natives.append(native_face(frame.image, face.boxes[0]))
            sources.append(PickSource("main", (frame.image.shape[1], frame.image.shape[0]),
                                      time_error_s=frame.time - float(chosen.timestamp[rank]), frame_offset=offset, landmark_error=error,
                                      quality=float(scored.quality[k]), box=tuple(float(v) for v in face.boxes[0])))  # type: ignore[arg-type]
        self._count(sources)
        picks = chosen.replace(crops=np.stack(crops), context=object_column(context))
        return replace(result, chosen=picks, sources=tuple(sources), native_faces=tuple(natives))

    def fallback(self, result: TrackResult, reason: str) -> TrackResult:
        """The track with every pick kept from the analysed frame, for ``reason`` (counted)."""
        size = self.analysed_size or (0, 0)
        sources = tuple(PickSource("analysed", size, reason=reason) for _ in range(len(result.chosen)))
        self._count(list(sources))
        return replace(result, sources=sources, native_faces=tuple(None for _ in sources))

    # ------------------------------------------------------------------ matching
    def _match(self, pick: Faces, frames: list[MainFrame], main_size: tuple[int, int], pick_time: float
               ) -> tuple[MainFrame, Faces, float, int] | str:
        """The main frame (of those around the pick) whose face agrees best with the pick's, the
        face found there, its landmark error and the frame's offset from the nearest in time."""
        assert self.analysed_size is not None
        sx, sy = main_size[0] / self.analysed_size[0], main_size[1] / self.analysed_size[1]
        box = pick.boxes[0].astype(np.float64) * np.array([sx, sy, sx, sy])
        landmarks = pick.landmarks[0].astype(np.float64) * np.array([sx, sy])
        width = max(box[2] - box[0], 1.0)
        nearest = frames[0]
        candidates: list[tuple[float, MainFrame, Faces]] = []  # nearest in time first
        best_iou = 0.0
        for frame in frames:
            found = self.region(frame.image, box[None], frame.index, frame.time)
            if len(found) == 0:
                continue
            iou = float(iou_matrix(box[None], found.boxes)[0, 0])
            best_iou = max(best_iou, iou)
            if iou >= MIN_IOU:
                candidates.append((float(np.linalg.norm(found.landmarks[0] - landmarks, axis=1).mean() / width), frame, found[[0]]))
                if frame is nearest and candidates[0][0] <= GOOD_LANDMARK_ERROR:
                    break  # the nearest frame lines up well: its neighbours need not be decoded to RGB and searched
        if not candidates:
            return f"no face where the analysed one was (best overlap {best_iou:.2f} in {len(frames)} main frames)"
        # The frame nearest in time wins unless another lines up clearly better: landmarks jitter
        # by a few pixels between frames of a face that hardly moves, and that must not count as
        # a clock error.
        error, frame, face = candidates[0]
        for other in candidates[1:]:
            if other[0] < error * (1 - CLEARLY_BETTER) - 0.005 or (error > MAX_LANDMARK_ERROR and other[0] < error):
                error, frame, face = other
        if error > MAX_LANDMARK_ERROR:
            return f"the face found in the main frame does not line up (landmark error {error:.2f} of the box width)"
        interval = abs(frames[1].time - nearest.time) if len(frames) > 1 else 1.0
        offset = int(round((frame.time - nearest.time) / interval)) if interval > 0 else 0
        return frame, face.replace(frame_index=np.array([frame.index]), timestamp=np.array([pick_time])), error, offset

    def _score(self, matches: list[tuple[MainFrame, Faces, float, int]]) -> Faces:
        """Align the main faces from their own landmarks and score them, in one batch."""
        aligned = [self.models.aligner(face.replace(frame_index=np.array([k])), {k: frame.image})
                   for k, (frame, face, _, _) in enumerate(matches)]
        queue = ScoringQueue(self.models.scorer, max(1, len(aligned)), embedder=self.models.embedder)
        queue.put(Faces.concat(aligned))
        return queue.flush()

    # ------------------------------------------------------------------ what happened
    def _count(self, sources: list[PickSource]) -> None:
        if self.observe is not None:
            for source in sources:
                self.observe(source)
        with self._lock:
            for source in sources:
                self.picks += 1
                if source.stream == "main":
                    self.from_main += 1
                    assert source.time_error_s is not None and source.frame_offset is not None and source.landmark_error is not None
                    self.time_errors.append(source.time_error_s)
                    self.frame_offsets[source.frame_offset] += 1
                    self.landmark_errors.append(source.landmark_error)
                else:
                    self.fallbacks[fallback_kind(source.reason or "")] += 1

    def summary(self) -> dict[str, Any]:
        """The picks cut from the main stream, the fallbacks by kind, and the measured sync error."""
        with self._lock:
            errors = np.abs(np.array(self.time_errors)) if self.time_errors else None
            return {
                "picks": self.picks,
                "from_main": self.from_main,
                "fallbacks": dict(self.fallbacks),
                "sync_error_s": None if errors is None else {"median": round(float(np.median(errors)), 4),
                                                             "p95": round(float(np.quantile(errors, 0.95)), 4),
                                                             "max": round(float(errors.max()), 4)},
                "frame_offsets": {str(k): v for k, v in sorted(self.frame_offsets.items())},
                "landmark_error_median": round(float(np.median(self.landmark_errors)), 4) if self.landmark_errors else None,
            }


def fallback_kind(reason: str) -> str:
    """A fallback reason's kind, for counting (the reasons themselves carry numbers)."""
    for kind in ("no face where", "does not line up", "ends before", "no main frame", "older than", "not known", "not connected",
                 "no timestamp", "stalled", "keyframe", "do not decode", "fell behind", "stopped before", "cut failed"):
        if kind in reason:
            return kind.replace(" ", "_")
    return "other"


def native_face(image: np.ndarray, box: np.ndarray) -> bytes:
    """The face at the main frame's own resolution (a square around the box, not aligned), JPEG."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * NATIVE_FACE_SCALE
    out = int(min(NATIVE_FACE_MAX, round(side)))
    view = context_view(image, np.array([x1, y1, x2, y2]), NATIVE_FACE_SCALE, out)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(view, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError("could not encode a native face image")
    return data.tobytes()
