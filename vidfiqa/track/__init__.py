"""Face tracking: per-frame :class:`~vidfiqa.faces.Faces` in, the same rows with ``track_id`` out."""

from __future__ import annotations

from .bytetrack import ByteTracker, TrackerSettings

__all__ = ["ByteTracker", "TrackerSettings"]
