"""The :class:`Embedder` base class every face recognition model's stage derives from.

Kept apart from :mod:`vidfiqa.embed` (which builds embedders by name and may load the dlib one)
so that :mod:`vidfiqa.backbones.dlib_model` can subclass it without importing ``vidfiqa.embed``
back: the two modules would otherwise import each other.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..faces import Faces

DEFAULT_BATCH_SIZE = 64


class Embedder:
    """Base class: subclasses implement :meth:`_embed_batch` and set ``embedding_dim``."""

    name: str = "embedder"
    embedding_dim: int = 0
    batch_size: int = DEFAULT_BATCH_SIZE

    def _embed_batch(self, crops: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) RGB aligned crops -> float32 (N, D) raw (unnormalised) embeddings."""
        crops = np.asarray(crops, dtype=np.uint8)
        if crops.ndim == 3:
            crops = crops[None]
        if crops.ndim != 4 or crops.shape[-1] != 3:
            raise ValueError(f"crops must be uint8 (N, H, W, 3) RGB; got shape {crops.shape}")
        if len(crops) == 0:
            return np.zeros((0, self.embedding_dim), np.float32)
        step = max(1, int(self.batch_size))
        parts = [self._embed_batch(crops[i : i + step]) for i in range(0, len(crops), step)]
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def __call__(self, faces: Faces, frames: Mapping[int, np.ndarray] | None = None) -> Faces:
        """``faces`` with ``embeddings`` set; ``frames`` is unused here (crop-based models)."""
        if len(faces) == 0:
            return faces.replace(embeddings=np.zeros((0, self.embedding_dim), np.float32))
        if faces.crops is None:
            raise ValueError(f"{self.name}: faces have no crops; run alignment before embedding")
        return faces.replace(embeddings=self.embed(faces.crops))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.embedding_dim})"
