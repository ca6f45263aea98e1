"""YuNet (OpenCV model zoo, MIT) through ``cv2.FaceDetectorYN``.

A second, independent detector: its boxes and landmarks differ from RetinaFace's in systematic
ways, which lets us measure how much a quality score depends on the detector that fed it.  We do
not ship its weights; the user passes the ONNX file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..boxes import nms
from ..errors import WeightsError
from .base import DetectorSettings, FaceDetector, resize_long_side

# OpenCV 5 warns on every create() that its new graph engine ignores targets; not actionable.
if hasattr(cv2, "utils") and hasattr(cv2.utils, "logging"):
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


class YuNetDetector(FaceDetector):
    name = "yunet"

    def __init__(self, model_path: str | os.PathLike, settings: DetectorSettings | None = None, **overrides):
        super().__init__(settings, **overrides)
        path = Path(model_path)
        if not path.is_file():
            raise WeightsError(f"YuNet model not found: {path} (pass the face_detection_yunet_*.onnx file of the OpenCV model zoo)")
        s = self.settings
        try:
            # Our own NMS runs afterwards with the shared settings; cv2's is kept permissive.
            self._net = cv2.FaceDetectorYN.create(os.fspath(path), "", (s.input_size, s.input_size), s.score_threshold, 0.9, 5000)
        except cv2.error as err:
            raise WeightsError(f"{path}: not a YuNet model OpenCV can load ({str(err).strip().splitlines()[-1]})") from None
        self._input_wh: tuple[int, int] | None = None

    def _detect_batch(self, frames: Sequence[np.ndarray]):
        return [self._detect_one(f) for f in frames]  # cv2.FaceDetectorYN takes one image per call

    def _detect_one(self, frame: np.ndarray):
        resized, factor = resize_long_side(frame, self.settings.input_size, self.settings.upscale)
        h, w = resized.shape[:2]
        if self._input_wh != (w, h):
            self._net.setInputSize((w, h))
            self._input_wh = (w, h)
        _, out = self._net.detect(np.ascontiguousarray(resized[..., ::-1]))  # YuNet expects BGR
        if out is None or len(out) == 0:
            return np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32), np.zeros(0, np.float32)
        out = out.astype(np.float32) / np.float32(factor)
        scores = out[:, 14] * np.float32(factor)  # the score column must not be rescaled
        boxes = np.hstack([out[:, :2], out[:, :2] + out[:, 2:4]])
        points = out[:, 4:14].reshape(-1, 5, 2)
        order = nms(boxes, scores, self.settings.nms_threshold, self.settings.max_faces)
        boxes, points, scores = boxes[order], points[order], scores[order]
        fh, fw = frame.shape[:2]
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, fw)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, fh)
        return boxes, points, scores
