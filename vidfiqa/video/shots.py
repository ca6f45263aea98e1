"""Shot-boundary detection: tracks must not carry a face across a cut or a dissolve to another shot.

The pipeline calls :class:`SceneCutDetector` once per analysed frame, online: the answer for
frame t uses frames up to t only, so the loop needs no delay.  Two detectors share one small
thumbnail per frame (64 x 36 pixels, taken from a strided view of the frame, so its cost does not
grow with the resolution):

* **Hard cuts**, adaptive (the idea of PySceneDetect's ``AdaptiveDetector``, past frames only):
  the content change of frame t is the mean absolute difference of its HSV thumbnail from frame
  t-1's (hue on its circle), 0-255.  A cut is a change at least ``threshold`` times the mean
  change over the previous ``window`` frames *and* at least ``min_content``: a shot with a lot of
  motion raises its own bar, a still shot needs a clear jump, and lights dimming gradually
  change every frame a little and never one frame a lot.  Repeated frames (a change under
  ``duplicate`` times the recent mean: dropped-frame fill in jerky clips) are left out of the
  mean, or the jump after them would count double.
* **Gradual transitions** (cross-dissolves): over the last ``dissolve_window`` frames, shot A
  blends into shot B.  Frames are compared after removing their mean brightness and contrast
  (so a fade of the lights, which only scales the pixels, is no change at all).  A dissolve
  is reported, a few frames after it has settled, when for some earlier frame t-k: frame t is far
  from frame t-k (``dissolve_change``, a squared distance of contrast-normalised thumbnails: 0
  same, about 2 unrelated), every frame in between is well explained as a mix
  ``(1-a) x[t-k] + a x[t]`` (residual at most ``dissolve_residual`` of the change; a pan, a
  zoom or a person walking through is no such mix), the mix weight ``a`` climbs gradually (no
  step larger than ``dissolve_step``) and the last ``settle`` frames sit at the end (a near 1).

``threshold`` 0 disables both.  After a boundary, none is reported for ``min_shot`` frames.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import av

THUMB_W, THUMB_H = 64, 36  # content-change thumbnail (PySceneDetect works on a downscaled frame too)
DIS_W, DIS_H = 32, 18  # dissolve vectors: half that again, which also tolerates small motion


def yuv_thumbnail(frame: "av.VideoFrame") -> np.ndarray | None:
    """A THUMB_W x THUMB_H RGB thumbnail straight from a decoded YUV 4:2:0 frame's planes, without
    converting the frame (0.25 ms for 720p, against 8 ms for FFmpeg to scale it to this size);
    None for other pixel formats.  Not rotated: the caller rotates it as it rotates frames."""
    if frame.format.name not in ("yuv420p", "yuvj420p"):
        return None
    planes = []
    for plane in frame.planes[:3]:
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
        k = max(1, min(rows.shape) // 72)  # every k-th pixel, as _thumbnail samples (chroma: half as many)
        planes.append(cv2.resize(rows[::k, ::k], (THUMB_W, THUMB_H), interpolation=cv2.INTER_AREA))
    return cv2.cvtColor(np.dstack(planes), cv2.COLOR_YUV2RGB)


class SceneCutDetector:
    """``__call__(frame_rgb) -> bool``: True when a new shot starts at this frame (a hard cut), or
    a dissolve into a new shot has just ended.  See the module docstring for the method."""

    def __init__(
        self,
        threshold: float = 3.0,
        *,
        min_content: float = 15.0,
        window: int = 8,
        min_shot: int = 8,
        dissolve: bool = True,
        dissolve_window: int = 40,
        dissolve_change: float = 0.9,
        dissolve_residual: float = 0.18,
        dissolve_step: float = 0.3,
        settle: int = 2,
        duplicate: float = 0.2,
    ):
        self.threshold = float(threshold)
        self.min_content = float(min_content)
        self.window = max(1, int(window))
        self.min_shot = max(1, int(min_shot))
        self.dissolve = bool(dissolve)
        self.dissolve_window = max(4, int(dissolve_window))
        self.dissolve_change = float(dissolve_change)
        self.dissolve_residual = float(dissolve_residual)
        self.dissolve_step = float(dissolve_step)
        self.settle = max(1, int(settle))
        self.duplicate = float(duplicate)
        self.last_content = 0.0  # content change of the frame last given (for benchmarks and logs)
        self.last_ratio = 0.0  # ... and its ratio to the recent mean
        self.last_kind = ""  # "cut" or "dissolve" when the last call returned True
        self.reset()

    def reset(self) -> None:
        """Forget every frame seen (the next frame starts a fresh shot; it is no cut)."""
        self._previous: np.ndarray | None = None
        self._changes: deque[float] = deque(maxlen=self.window)
        self._vectors: deque[np.ndarray] = deque(maxlen=self.dissolve_window + 1)
        self._since = 0  # frames since the shot began

    # ------------------------------------------------------------------ features
    @staticmethod
    def _thumbnail(frame: np.ndarray) -> np.ndarray:
        # Every k-th pixel first: resizing a whole 1080p frame with INTER_AREA costs milliseconds,
        # and the content change does not need area averaging of the full frame.
        k = max(1, min(frame.shape[:2]) // 72)  # 1080p: every 15th pixel, 128 x 72, then area-averaged
        return cv2.resize(frame[::k, ::k], (THUMB_W, THUMB_H), interpolation=cv2.INTER_AREA)

    @staticmethod
    def _content_change(previous: np.ndarray, hsv: np.ndarray) -> float:
        diff = np.abs(hsv - previous)
        hue = diff[..., 0]
        np.minimum(hue, 180 - hue, out=hue)  # OpenCV's 8-bit hue is 0-179, on a circle
        return float(diff.mean())

    @staticmethod
    def _normalised(thumb: np.ndarray) -> np.ndarray:
        small = cv2.resize(thumb, (DIS_W, DIS_H), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
        small -= small.mean()
        return small / max(float(small.std()), 2.0)  # flat (dark) frames are not blown up into noise

    # ------------------------------------------------------------------ decisions
    def __call__(self, frame: np.ndarray) -> bool:
        if self.threshold <= 0:
            self.last_kind = ""
            return False
        return self.observe(self._thumbnail(frame))

    def observe(self, thumb: np.ndarray) -> bool:
        """The same decision from a frame's RGB thumbnail (THUMB_H x THUMB_W x 3) made elsewhere:
        a decoder that skips frames for a stride still gives the thumbnail of each
        (``yuv_thumbnail``), so a cut between two analysed frames is seen.  One stream of frames
        must get all of its thumbnails the same way."""
        self.last_kind = ""
        if self.threshold <= 0:
            return False
        hsv = cv2.cvtColor(thumb, cv2.COLOR_RGB2HSV).astype(np.int16)
        previous, self._previous = self._previous, hsv
        self._since += 1
        if previous is None:
            self.last_content = self.last_ratio = 0.0
            if self.dissolve:
                self._vectors.append(self._normalised(thumb))
            return False
        change = self._content_change(previous, hsv)
        recent = float(np.mean(self._changes)) if self._changes else 0.0
        ratio = change / max(recent, 0.5)
        self.last_content, self.last_ratio = change, ratio
        if self._since > self.min_shot and change >= self.min_content and ratio >= self.threshold:
            self._new_shot(thumb)
            self.last_kind = "cut"
            return True
        if change >= self.duplicate * recent:  # a repeated frame (dropped-frame fill) says nothing of motion
            self._changes.append(change)
        if self.dissolve:
            self._vectors.append(self._normalised(thumb))
            if self._since > self.min_shot and self._dissolved():
                self._new_shot(thumb)
                self.last_kind = "dissolve"
                return True
        return False

    def _new_shot(self, thumb: np.ndarray) -> None:
        self._changes.clear()
        self._vectors.clear()
        if self.dissolve:
            self._vectors.append(self._normalised(thumb))
        self._since = 0

    def _dissolved(self) -> bool:
        """Whether the frames buffered end with a completed dissolve (see the module docstring)."""
        n = len(self._vectors)
        shortest = self.settle + 4  # at least a few frames of mixing before the settled ones
        if n <= shortest:
            return False
        x = np.stack(self._vectors)  # oldest first; x[-1] is this frame
        end = x[-1]
        far = np.mean((x - end) ** 2, axis=1)  # squared distance of every buffered frame to this one
        for k in range(n - 1, shortest - 1, -1):  # the longest span first: its start is before the dissolve
            if far[n - 1 - k] < self.dissolve_change:
                continue
            base = x[n - 1 - k]
            d = end - base
            dd = float(d @ d)
            rel = x[n - 1 - k:] - base
            a = rel @ d / dd
            residual = np.mean((rel - a[:, None] * d) ** 2, axis=1) * d.size / dd
            if residual.max() > self.dissolve_residual:
                continue
            steps = np.diff(a)
            if steps.max() > self.dissolve_step or steps.min() < -self.dissolve_step / 2:
                continue
            mixing = (a > 0.2) & (a < 0.8)
            if np.count_nonzero(mixing) < 2:  # too quick to be a dissolve (a cut's job)
                continue
            # Settled: over the last frames a moved far slower than while mixing (the end of the
            # dissolve, not its middle, where it also reads near 1 against the frame given).
            rate = float(np.median(steps[mixing[1:]]))
            if 1.0 - a[-1 - self.settle] > 0.3 * rate * self.settle:
                continue
            return True
        return False
