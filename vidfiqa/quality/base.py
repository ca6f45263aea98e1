"""What every face image quality scorer looks like.

A scorer maps aligned 112x112 RGB crops to one number per face, higher = better for face
recognition.  It is also a pipeline stage: ``scorer(faces, frames)`` returns ``faces`` with
``quality`` set.  Scorers that need more than pixels (face size, detector confidence) read it
from the ``Faces`` record passed to :meth:`QualityScorer.score`.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..faces import Faces


class QualityScorer:
    """Base class: implement :meth:`score`; set ``name``; optionally ``needs_faces``."""

    name: str = "quality"
    # True when score() reads the Faces record (boxes, landmarks, detector scores), so it cannot
    # run on bare crops (e.g. `vidfiqa score --aligned`).
    needs_faces: bool = False
    # True when __call__ also sets ``embeddings`` (the eDifFIQA student gives both in one pass),
    # so the video pipeline needs no separate embedder for diversity.
    embeds: bool = False
    batch_size: int = 64

    def score(self, crops: np.ndarray, faces: Faces | None = None) -> np.ndarray:
        """uint8 (N, 112, 112, 3) RGB aligned crops -> float32 (N,) quality, higher is better."""
        raise NotImplementedError

    def __call__(self, faces: Faces, frames: Mapping[int, np.ndarray] | None = None) -> Faces:
        if len(faces) == 0:
            return faces.replace(quality=np.zeros(0, np.float32))
        if faces.crops is None:
            raise ValueError(f"{self.name}: faces have no crops; run alignment before scoring")
        return faces.replace(quality=np.asarray(self.score(faces.crops, faces), dtype=np.float32))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
