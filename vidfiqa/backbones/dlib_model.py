"""dlib's ResNet face descriptor: a second face recognition model, independent of the torch ones.

Useful to check that a quality ranking is not tuned to one recognition model.  It differs from
the other backbones in two ways:

* it does its own alignment (dlib's 5-point shape predictor, then a 150x150 "face chip" with
  0.25 padding), so it needs the **frames**, not our 112x112 crops;
* its 128-d descriptors are compared with L2 distance (0.6 is dlib's usual same-person
  threshold) and it is not differentiable.

Optional: ``pip install -e ".[dlib]"`` (packages ``dlib-bin`` and ``face-recognition-models``;
the models are CC0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import ConfigError, WeightsError
from ..faces import Faces
from .embedder import DEFAULT_BATCH_SIZE, Embedder
from .registry import DLIB_INSTALL_HINT, find_weights, get_spec

SHAPE_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
CHIP_SIZE = 150
CHIP_PADDING = 0.25


def _import_dlib():
    try:
        import dlib
    except ImportError:
        raise ConfigError(f"the dlib face recognition model needs dlib, which is not installed: {DLIB_INSTALL_HINT}") from None
    return dlib


class DlibEmbedder(Embedder):
    """128-d dlib descriptors for faces located by our detector boxes.

    ``weights``: the ``dlib_face_recognition_resnet_model_v1.dat`` file or its directory; the
    5-point shape predictor is expected beside it.  By default both come from the
    ``face_recognition_models`` package (or ``$VIDFIQA_WEIGHTS``).
    """

    name = "dlib"
    embedding_dim = 128

    def __init__(self, weights: str | Path | None = None, batch_size: int = DEFAULT_BATCH_SIZE):
        self._dlib = _import_dlib()
        spec = get_spec("dlib")
        try:
            model_path = find_weights(spec, weights)
        except WeightsError as exc:
            raise WeightsError(f"{exc}; {DLIB_INSTALL_HINT} provides it") from None
        predictor_path = model_path.parent / SHAPE_PREDICTOR_FILE
        if not predictor_path.is_file():
            raise WeightsError(f"dlib: {SHAPE_PREDICTOR_FILE} not found beside {model_path}; {DLIB_INSTALL_HINT} provides both files")
        self.model_path = model_path
        self.batch_size = batch_size
        self._predictor = self._dlib.shape_predictor(str(predictor_path))
        self._facerec = self._dlib.face_recognition_model_v1(str(model_path))

    # ------------------------------------------------------------------ alignment + descriptor
    def _chip(self, image: np.ndarray, box) -> np.ndarray:
        """Fit the 5 landmarks inside ``box`` (x1, y1, x2, y2) and cut dlib's aligned chip."""
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        shape = self._predictor(image, self._dlib.rectangle(x1, y1, x2, y2))
        return self._dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)

    def _describe(self, chips: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(chips), self.embedding_dim), np.float32)
        step = max(1, int(self.batch_size))
        for i in range(0, len(chips), step):
            descriptors = self._facerec.compute_face_descriptor(chips[i : i + step])
            out[i : i + step] = np.asarray([np.asarray(d) for d in descriptors], np.float32)
        return out

    @staticmethod
    def _as_image(image, what: str) -> np.ndarray:
        image = np.ascontiguousarray(image, dtype=np.uint8)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"dlib: {what} must be an RGB image (H, W, 3); got shape {image.shape}")
        return image

    # ------------------------------------------------------------------ Embedder interface
    def embed(self, crops: np.ndarray) -> np.ndarray:
        """Descriptors of whole images, each treated as one face filling the frame.

        An approximation for already-cropped faces (e.g. aligned datasets): dlib's padded chip
        reaches beyond a tight crop, so prefer ``__call__`` with the original frames.
        """
        crops = np.asarray(crops, dtype=np.uint8)
        if crops.ndim == 3:
            crops = crops[None]
        chips = []
        for crop in crops:
            image = self._as_image(crop, "crop")
            h, w = image.shape[:2]
            chips.append(self._chip(image, (0, 0, w - 1, h - 1)))
        return self._describe(chips)

    def __call__(self, faces: Faces, frames: Mapping[int, np.ndarray] | None = None) -> Faces:
        """``faces`` with dlib ``embeddings``; ``frames`` maps ``faces.frame_index`` -> RGB frame."""
        if len(faces) == 0:
            return faces.replace(embeddings=np.zeros((0, self.embedding_dim), np.float32))
        if frames is None:
            raise ValueError("dlib: needs the frames (a mapping frame_index -> RGB image), it does its own alignment")
        chips: list[np.ndarray] = [None] * len(faces)  # type: ignore[list-item]
        for frame_index in np.unique(faces.frame_index):
            try:
                image = frames[int(frame_index)]
            except (KeyError, IndexError):
                raise ValueError(f"dlib: frame {int(frame_index)} is not among the frames given") from None
            image = self._as_image(image, f"frame {int(frame_index)}")
            for i in np.flatnonzero(faces.frame_index == frame_index):
                chips[i] = self._chip(image, faces.boxes[i])
        return faces.replace(embeddings=self._describe(chips))
