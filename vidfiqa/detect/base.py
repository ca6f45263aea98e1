"""What every face detector in vidfiqa looks like, and the resizing they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ..faces import Faces


@dataclass(frozen=True)
class DetectorSettings:
    """Options common to all detectors.

    ``input_size`` is the most pixels, on the long side, that the detector sees: a larger frame
    is shrunk to it (bigger finds smaller faces, slower), a smaller one is searched at its own
    size.  Enlarging small photos to ``input_size`` moved RetinaFace's landmarks by 5-18 px and
    made worse crops for the quality model (benchmarks/front_end.py); ``upscale=True`` brings
    that back.  Boxes and landmarks are always reported in the coordinates of the frame that was
    passed in.
    """

    input_size: int = 640
    upscale: bool = False  # also enlarge frames smaller than input_size (the behaviour before 0.2)
    score_threshold: float = 0.6
    nms_threshold: float = 0.4
    max_faces: int = 1000  # per frame, after NMS, highest scores first


class FaceDetector(ABC):
    """Frames in, :class:`Faces` out.

    ``detect(frames, frame_indices, timestamps)`` takes RGB uint8 frames (a list, or one
    (B, H, W, 3) array) and returns one ``Faces`` for all of them, with ``frame_index`` set from
    ``frame_indices`` (default: position in ``frames``).
    """

    name: str = "detector"

    def __init__(self, settings: DetectorSettings | None = None, **overrides):
        base = settings or DetectorSettings()
        self.settings = DetectorSettings(**{**base.__dict__, **overrides})
        if self.settings.input_size < 32:
            raise ValueError("detector input_size must be at least 32 pixels")

    @abstractmethod
    def _detect_batch(self, frames: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per frame: boxes (K,4) xyxy, landmarks (K,5,2), scores (K,) in frame pixels."""

    def detect(
        self,
        frames: Sequence[np.ndarray] | np.ndarray,
        frame_indices: Sequence[int] | None = None,
        timestamps: Sequence[float] | None = None,
    ) -> Faces:
        frames = [as_rgb(f) for f in frames]
        if frame_indices is None:
            frame_indices = range(len(frames))
        if timestamps is None:
            timestamps = [np.nan] * len(frames)
        parts = []
        if frames:
            for (boxes, landmarks, scores), idx, ts in zip(self._detect_batch(frames), frame_indices, timestamps):
                parts.append(Faces.create(boxes, landmarks, scores, frame_index=idx, timestamp=ts))
        return Faces.concat(parts)

    def __call__(self, frames, frame_indices=None, timestamps=None) -> Faces:
        return self.detect(frames, frame_indices, timestamps)


def as_rgb(frame: np.ndarray) -> np.ndarray:
    """Accept (H, W), (H, W, 1), (H, W, 3) and (H, W, 4) uint8 and return (H, W, 3)."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise TypeError(f"frames must be uint8, got {frame.dtype}")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.ndim == 3 and frame.shape[2] == 1:
        return cv2.cvtColor(frame[..., 0], cv2.COLOR_GRAY2RGB)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return np.ascontiguousarray(frame[..., :3])
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    raise ValueError(f"unsupported frame shape {frame.shape}")


def resize_long_side(frame: np.ndarray, long_side: int, upscale: bool = True) -> tuple[np.ndarray, float]:
    """Resize so max(H, W) == long_side; with ``upscale=False`` a smaller frame is left as it
    is.  Returns the image and the factor (resized / original)."""
    h, w = frame.shape[:2]
    factor = long_side / max(h, w)
    if not upscale:
        factor = min(factor, 1.0)
    if abs(factor - 1.0) < 1e-9:
        return frame, 1.0
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    if factor >= 1:
        return cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR), factor
    # Shrinking needs area averaging (aliasing costs small faces), but OpenCV's INTER_AREA is
    # ten times slower at a fractional ratio than at an integer one (2.2 vs 0.2 ms for 720p ->
    # 480 px): average over whole k x k blocks first, then finish with a mild linear step (< 2x).
    k = int(1.0 / factor)
    if k >= 2:
        frame = cv2.resize(frame, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
    if frame.shape[1] == size[0] and frame.shape[0] == size[1]:
        return frame, factor
    return cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR if k >= 2 else cv2.INTER_AREA), factor
