"""Face tracking: per-frame :class:`~vidfiqa.faces.Faces` in, the same rows with ``track_id`` out."""

from __future__ import annotations

# iou_matrix lives in vidfiqa.boxes; it is re-exported here only for the modules that still
# import it from vidfiqa.track (vidfiqa/detect/region.py, formerly pipeline/roi.py).  Drop it once
# they import vidfiqa.boxes.
from ..boxes import iou_matrix
from .bytetrack import ByteTracker, TrackerSettings

__all__ = ["ByteTracker", "TrackerSettings", "iou_matrix"]
