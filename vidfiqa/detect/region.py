"""Re-finding known faces between full-frame detections.

Full-frame detection is the most expensive stage.  With ``detect_every = N`` the full frame is
searched every Nth frame; in between, each tracked face is looked for only in a square region
around where its track is predicted to be, resized to a small fixed size, all regions of a frame
in one detector call.  The faces found this way have real landmarks (not extrapolated ones),
so their aligned crops and quality are as trustworthy as on full-detection frames.  New faces
are only picked up on full-detection frames.
"""

from __future__ import annotations

import numpy as np

from ..boxes import cut_regions, iou_matrix, regions_to_frame, square_regions
from ..faces import Faces
from .base import FaceDetector


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

    def __call__(self, frame: np.ndarray, boxes: np.ndarray, frame_index: int, pts: float) -> Faces:
        if len(boxes) == 0:
            return Faces.empty()
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        regions = square_regions(boxes, self.scale)
        found = regions_to_frame(self.detector.detect(cut_regions(frame, regions, self.size)), regions, self.size, frame.shape)
        if len(found) == 0:
            return Faces.empty()
        region = found.frame_index  # regions_to_frame keeps the patch numbers
        # Per region keep the detection that overlaps the predicted box most; a face seen in two
        # overlapping regions is kept once (the more confident copy).
        own = iou_matrix(boxes[region], found.boxes)[np.arange(len(region)), np.arange(len(region))]
        keep = []
        for r in np.unique(region):
            rows = np.flatnonzero((region == r) & (own >= self.min_iou))
            if len(rows):
                keep.append(rows[np.argmax(own[rows])])
        keep = sorted(keep, key=lambda i: -found.scores[i])
        chosen: list[int] = []
        for i in keep:
            if not chosen or iou_matrix(found.boxes[[i]], found.boxes[chosen]).max() < 0.5:
                chosen.append(int(i))
        chosen.sort()
        return Faces.create(found.boxes[chosen], found.landmarks[chosen], found.scores[chosen], frame_index=frame_index, timestamp=pts)
