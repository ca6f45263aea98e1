"""Scene-cut detection: tracks must not carry a face across a hard cut to another shot."""

from __future__ import annotations

import cv2
import numpy as np


class SceneCutDetector:
    """Flags a frame whose colour histogram is far from the previous frame's.

    Hue-saturation histograms (16 x 8 bins) of a 64-pixel thumbnail, compared with the
    Bhattacharyya distance (0 = same, 1 = disjoint).  Gradual changes (fades, the lights going
    down, a face turning) move it little from one frame to the next; a cut moves it at once.
    ``threshold`` 0 disables the detector.
    """

    def __init__(self, threshold: float = 0.55):
        self.threshold = float(threshold)
        self._previous: np.ndarray | None = None

    def _histogram(self, frame: np.ndarray) -> np.ndarray:
        # Every k-th pixel first: a histogram does not need area averaging, and resizing a whole
        # 720p frame with INTER_AREA costs 2 ms a frame.
        k = max(1, min(frame.shape[:2]) // 128)
        thumb = cv2.resize(frame[::k, ::k], (64, 64), interpolation=cv2.INTER_LINEAR)
        hsv = cv2.cvtColor(thumb, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
        return cv2.normalize(hist, hist).astype(np.float32)

    def distance(self, frame: np.ndarray) -> float:
        """Distance to the previous frame given (0 for the first), and remember this one."""
        hist = self._histogram(frame)
        previous, self._previous = self._previous, hist
        if previous is None:
            return 0.0
        return float(cv2.compareHist(previous, hist, cv2.HISTCMP_BHATTACHARYYA))

    def __call__(self, frame: np.ndarray) -> bool:
        if self.threshold <= 0:
            return False
        return self.distance(frame) > self.threshold

    def reset(self) -> None:
        self._previous = None
