"""The component stage: one row of quality components per face.

Pose, face size, sharpness, exposure, noise and compression need the face's landmarks, crop and
frame, so they are measured where a face is aligned (:meth:`ComponentMeter.measure`); occlusion
reads the student's embedding, so it is filled in once the face is scored
(:meth:`ComponentMeter.add_occlusion`).  ``__call__`` does both for faces that already carry
crops and embeddings (photos, `vidfiqa score`).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..faces import Faces
from . import image_stats
from .occlusion import OcclusionHead
from .pose import head_pose

NAMES = ("yaw", "pitch", "roll", "inter_eye_px", "sharpness", "exposure", "noise", "compression", "occlusion")
UNITS = {"yaw": "deg", "pitch": "deg", "roll": "deg", "inter_eye_px": "px", "sharpness": "ratio", "exposure": "EV",
         "noise": "grey levels", "compression": "ratio", "occlusion": "probability"}
INDEX = {name: i for i, name in enumerate(NAMES)}
OCCLUSION = INDEX["occlusion"]


def component_dict(row: np.ndarray, digits: int = 3) -> dict[str, float | None]:
    """One face's components as a JSON-ready mapping (NaN -> None)."""
    return {name: (None if not np.isfinite(v) else round(float(v), digits)) for name, v in zip(NAMES, row)}


class ComponentMeter:
    """Measures :data:`NAMES` for faces.  ``embedding_model``: the name of the student whose
    embeddings the faces carry (``pipeline.models.embedding_model_name``); occlusion is NaN when
    the bundled head was not trained on it."""

    def __init__(self, embedding_model: str | None = "ediffiqa_t_mfn"):
        from .occlusion import HEAD_FILE

        head = OcclusionHead.load() if HEAD_FILE.is_file() else None
        self.occlusion_head = head if head is not None and head.fits(embedding_model) else None

    def measure(self, faces: Faces, frame: np.ndarray) -> np.ndarray:
        """(N, len(NAMES)) float32 for aligned faces of one frame; occlusion left NaN."""
        out = np.full((len(faces), len(NAMES)), np.nan, np.float32)
        if len(faces) == 0:
            return out
        if faces.crops is None:
            raise ValueError("components: faces have no crops; align them first")
        out[:, 0:3] = head_pose(faces.landmarks)
        out[:, 3] = faces.inter_eye_distance
        out[:, 4:6] = image_stats.crop_statistics(faces.crops)
        out[:, 6:8] = image_stats.frame_statistics(frame, faces.boxes)
        return out

    def add_occlusion(self, faces: Faces) -> Faces:
        """Fill the occlusion column from the faces' (student) embeddings."""
        if faces.components is None or faces.embeddings is None or self.occlusion_head is None or len(faces) == 0:
            return faces
        components = faces.components.copy()
        components[:, OCCLUSION] = self.occlusion_head(faces.embeddings)
        return faces.replace(components=components)

    def __call__(self, faces: Faces, frame: np.ndarray) -> Faces:
        return self.add_occlusion(faces.replace(components=self.measure(faces, frame)))

    def photo_stage(self, faces: Faces, frames: Mapping[int, np.ndarray]) -> Faces:
        """A :class:`~vidfiqa.photos.PhotoPipeline` stage (after the scorer, whose embedding it
        reads): faces of many images, ``frames`` by ``frame_index``."""
        out = np.full((len(faces), len(NAMES)), np.nan, np.float32)
        for index in np.unique(faces.frame_index):
            rows = np.flatnonzero(faces.frame_index == index)
            out[rows] = self.measure(faces[rows], frames[int(index)])
        return self.add_occlusion(faces.replace(components=out))
