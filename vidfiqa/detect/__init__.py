"""Face detectors: frames in, :class:`~vidfiqa.faces.Faces` (boxes, 5 landmarks, scores) out."""

from __future__ import annotations

from .base import DetectorSettings, FaceDetector
from .retinaface import RetinaFaceDetector
from .yunet import YuNetDetector

DETECTORS = ("retinaface", "yunet")


def make_detector(name: str = "retinaface", model_path=None, device: str = "cpu", threads: int | None = None, small_faces: bool = False,
                  **settings) -> FaceDetector:
    """Build a detector by name; ``model_path`` is required for YuNet (its weights are not bundled).

    ``small_faces``: frames much larger than ``input_size`` get a second, closer look at the
    first pass's unsure candidates (``small_faces.py``), so small faces in 1080p crowds are found.
    """
    from ..errors import ConfigError

    def build(**extra) -> FaceDetector:
        merged = {**settings, **extra}
        if name == "retinaface":
            return RetinaFaceDetector(device=device, threads=threads, **merged)
        if name == "yunet":
            if model_path is None:
                raise ConfigError("the yunet detector needs --detector-model PATH (face_detection_yunet_*.onnx)")
            return YuNetDetector(model_path, **merged)
        raise ConfigError(f"unknown detector {name!r}: choose one of {', '.join(DETECTORS)}")

    if not small_faces:
        return build()
    from .region import RegionRedetector
    from .small_faces import UNSURE_SCORE, SmallFaceSearch

    threshold = float(settings.get("score_threshold", DetectorSettings().score_threshold))
    regions = RegionRedetector(build(input_size=REGION_SIZE), size=REGION_SIZE)
    return SmallFaceSearch(build(score_threshold=min(UNSURE_SCORE, threshold)), regions, score_threshold=threshold)


REGION_SIZE = 192  # the second look's regions, as the region re-detector's (detect/region.py)


__all__ = ["DETECTORS", "DetectorSettings", "FaceDetector", "RetinaFaceDetector", "YuNetDetector", "make_detector"]
