"""Re-finding known faces between full-frame detections.

Full-frame detection is the most expensive stage.  With ``detect_every = N`` the full frame is
searched every Nth frame; in between, each tracked face is looked for only in a square region
around where its track is predicted to be, resized to a small fixed size, all regions of a frame
in one detector call.  The faces found this way have real landmarks (not extrapolated ones),
so their aligned crops and quality are as trustworthy as on full-detection frames.  New faces
are only picked up on full-detection frames.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..detect.base import FaceDetector
from ..faces import Faces
from ..track import iou_matrix


class RegionRedetector:
    """Stage: a frame + predicted boxes of tracked faces -> ``Faces`` found near them.

    ``detector`` should be built with ``input_size`` equal to ``size``; ``scale`` is the region's
    side relative to the predicted box's longer side (room for motion and prediction error).
    """

    def __init__(self, detector: FaceDetector, size: int = 192, scale: float = 2.0, min_iou: float = 0.1):
        self.detector = detector
        self.size = int(size)
        self.scale = float(scale)
        self.min_iou = float(min_iou)

    def regions(self, boxes: np.ndarray, frame_shape: tuple[int, ...]) -> np.ndarray:
        """Square regions (x, y, side) centred on the boxes; they may extend past the frame."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * self.scale
        side = np.maximum(side, 16.0)
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        return np.stack([cx - side / 2, cy - side / 2, side], axis=1)

    def __call__(self, frame: np.ndarray, boxes: np.ndarray, frame_index: int, pts: float) -> Faces:
        if len(boxes) == 0:
            return Faces.empty()
        regions = self.regions(boxes, frame.shape)
        patches = []
        for x, y, side in regions:
            # One affine warp crops, pads (with the border colour) and resizes in a single pass.
            k = self.size / side
            matrix = np.array([[k, 0, -x * k], [0, k, -y * k]])
            patches.append(cv2.warpAffine(frame, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        found = self.detector.detect(patches)
        if len(found) == 0:
            return Faces.empty()
        region = found.frame_index  # the detector numbers patches 0..R-1
        k = (regions[region, 2] / self.size).astype(np.float32)
        offset = regions[region, :2].astype(np.float32)
        frame_boxes = found.boxes * k[:, None] + np.tile(offset, 2)
        frame_landmarks = found.landmarks * k[:, None, None] + offset[:, None, :]
        h, w = frame.shape[:2]
        frame_boxes[:, [0, 2]] = frame_boxes[:, [0, 2]].clip(0, w)
        frame_boxes[:, [1, 3]] = frame_boxes[:, [1, 3]].clip(0, h)
        # Per region keep the detection that overlaps the predicted box most; a face seen in two
        # overlapping regions is kept once (the more confident copy).
        overlap = iou_matrix(np.asarray(boxes, np.float64)[region], frame_boxes.astype(np.float64))
        own = overlap[np.arange(len(region)), np.arange(len(region))]
        keep = []
        for r in np.unique(region):
            rows = np.flatnonzero((region == r) & (own >= self.min_iou))
            if len(rows):
                keep.append(rows[np.argmax(own[rows])])
        keep = np.array(sorted(keep, key=lambda i: -found.scores[i]), dtype=np.int64)
        chosen: list[int] = []
        for i in keep:
            if not chosen or iou_matrix(frame_boxes[[i]].astype(np.float64), frame_boxes[chosen].astype(np.float64)).max() < 0.5:
                chosen.append(int(i))
        chosen.sort()
        return Faces.create(frame_boxes[chosen], frame_landmarks[chosen], found.scores[chosen], frame_index=frame_index, timestamp=pts)
