"""Simple reference quality scores that any learned method has to beat on EDC.

* ``random`` - no information at all: its normalised pAUC is ~1 by construction.
* ``face_size`` - inter-eye distance in frame pixels (small faces are hard to recognise).
* ``sharpness`` - variance of the Laplacian of the grey crop (blur removes high frequencies).
* ``detector_confidence`` - the detector's face score.
* ``embedding_norm`` - L2 norm of the raw face recognition embedding (margin-loss models tend to
  give low-norm embeddings to hard, low-quality faces).

Constructors take keyword options only and reject unknown ones with a :class:`ConfigError`, so a
typo in a CLI or config option is never silently ignored.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from ..errors import ConfigError
from ..faces import Faces
from .base import QualityScorer
from .options import reject_unknown


def _need_faces(method: str, crops: np.ndarray, faces: Faces | None) -> Faces:
    if faces is None:
        raise ConfigError(f"quality method {method!r} needs detected faces (landmarks, detector scores), not bare aligned crops")
    if len(faces) != len(crops):
        raise ValueError(f"{method}: {len(crops)} crops but {len(faces)} faces")
    return faces


class RandomScorer(QualityScorer):
    """Uniform [0, 1) scores that carry no information: the EDC's chance baseline.

    A score is a keyed hash of the crop's pixels rather than a draw from a running generator, so
    a photo gets the same score whatever batch or order it is scored in, and runs reproduce.
    """

    name = "random"

    def __init__(self, seed: int = 0, **options):
        reject_unknown(self.name, options, type(self))
        self.seed = int(seed)

    def score(self, crops: np.ndarray, faces: Faces | None = None) -> np.ndarray:
        key = self.seed.to_bytes(8, "little", signed=True)
        out = np.empty(len(crops), np.float64)
        for i, crop in enumerate(np.asarray(crops, dtype=np.uint8)):
            digest = hashlib.blake2b(np.ascontiguousarray(crop).tobytes(), digest_size=8, key=key).digest()
            out[i] = int.from_bytes(digest, "little") / 2.0**64
        return out.astype(np.float32)


class FaceSizeScorer(QualityScorer):
    """Inter-eye distance in frame pixels, from ``faces.landmarks``."""

    name = "face_size"
    needs_faces = True

    def __init__(self, **options):
        reject_unknown(self.name, options, type(self))

    def score(self, crops: np.ndarray, faces: Faces | None = None) -> np.ndarray:
        return _need_faces(self.name, crops, faces).inter_eye_distance.astype(np.float32)


class SharpnessScorer(QualityScorer):
    """Variance of the Laplacian of the grayscale aligned crop (higher = sharper).

    Measured on the aligned crop, so every face is judged at the same scale: an upscaled small
    face is blurry in the crop and scores low, as it should for recognition.
    """

    name = "sharpness"

    def __init__(self, **options):
        reject_unknown(self.name, options, type(self))

    def score(self, crops: np.ndarray, faces: Faces | None = None) -> np.ndarray:
        out = np.empty(len(crops), np.float32)
        for i, crop in enumerate(np.asarray(crops, dtype=np.uint8)):
            gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
            out[i] = cv2.Laplacian(gray, cv2.CV_64F).var()
        return out


class DetectorConfidenceScorer(QualityScorer):
    """The face detector's confidence (``faces.scores``)."""

    name = "detector_confidence"
    needs_faces = True

    def __init__(self, **options):
        reject_unknown(self.name, options, type(self))

    def score(self, crops: np.ndarray, faces: Faces | None = None) -> np.ndarray:
        return _need_faces(self.name, crops, faces).scores.astype(np.float32)


class EmbeddingNormScorer(QualityScorer):
    """L2 norm of the raw (unnormalised) embedding of a face recognition model.

    ``embedder`` reuses an already built :class:`vidfiqa.embed.Embedder` (e.g. the comparator's,
    so an evaluation does not load the model twice); otherwise ``model``/``weights``/``backend``/
    ``device`` build one through :func:`vidfiqa.embed.make_embedder` on first use.
    """

    name = "embedding_norm"

    def __init__(
        self,
        model: str = "mobilefacenet",
        weights: str | Path | None = None,
        backend: str = "onnx",
        device: str = "cpu",
        embedder=None,
        **options,
    ):
        reject_unknown(self.name, options, type(self))
        self.model, self.weights, self.backend, self.device = model, weights, backend, device
        self._embedder = embedder

    @property
    def embedder(self):
        if self._embedder is None:
            from ..embed import make_embedder

            self._embedder = make_embedder(self.model, weights=self.weights, backend=self.backend, device=self.device)
        return self._embedder

    def score(self, crops: np.ndarray, faces: Faces | None = None) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros(0, np.float32)
        emb = self.embedder.embed(crops).astype(np.float64)
        return np.linalg.norm(emb, axis=1).astype(np.float32)


__all__ = ["DetectorConfidenceScorer", "EmbeddingNormScorer", "FaceSizeScorer", "RandomScorer", "SharpnessScorer"]
