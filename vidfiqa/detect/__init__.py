"""Face detectors: frames in, :class:`~vidfiqa.faces.Faces` (boxes, 5 landmarks, scores) out."""

from __future__ import annotations

from .base import DetectorSettings, FaceDetector
from .retinaface import RetinaFaceDetector
from .yunet import YuNetDetector

DETECTORS = ("retinaface", "yunet")


def make_detector(name: str = "retinaface", model_path=None, device: str = "cpu", threads: int | None = None, **settings) -> FaceDetector:
    """Build a detector by name; ``model_path`` is required for YuNet (its weights are not bundled)."""
    from ..errors import ConfigError

    if name == "retinaface":
        return RetinaFaceDetector(device=device, threads=threads, **settings)
    if name == "yunet":
        if model_path is None:
            raise ConfigError("the yunet detector needs --detector-model PATH (face_detection_yunet_*.onnx)")
        return YuNetDetector(model_path, **settings)
    raise ConfigError(f"unknown detector {name!r}: choose one of {', '.join(DETECTORS)}")


__all__ = ["DETECTORS", "DetectorSettings", "FaceDetector", "RetinaFaceDetector", "YuNetDetector", "make_detector"]
