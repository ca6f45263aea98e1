"""Occlusion (masks, hands, objects over the face) read from the student's own embedding.

The quality student already computes a 128-d embedding for every face it scores; a logistic
head on it (129 numbers) costs nothing measurable.  It was trained by
``training/train_occlusion_head.py`` on the training people of the crop set: real masked and
unmasked photos of ``rmfd_masked`` and clean photos of the other sets with synthetic occluders
(``vidfiqa.degrade``'s ``occlusion``), and checked on the development people
(benchmarks/components.py).  The head belongs to the student whose embedding it reads: it is
used only when the pipeline's embedding model is one of those listed in its file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..boxes import l2_normalize

HEAD_FILE = Path(__file__).resolve().parents[1] / "models" / "occlusion_head.json"


@dataclass(frozen=True)
class OcclusionHead:
    weights: np.ndarray  # (D,)
    bias: float
    embedding_models: tuple[str, ...]  # the students whose embeddings it was trained on

    @classmethod
    def load(cls, path: Path = HEAD_FILE) -> "OcclusionHead":
        data = json.loads(Path(path).read_text())
        return cls(np.asarray(data["weights"], np.float32), float(data["bias"]), tuple(data["embedding_models"]))

    def save(self, path: Path, extra: dict) -> None:
        from ..atomic import atomic_write_text

        body = {"embedding_models": list(self.embedding_models), "bias": round(self.bias, 6),
                "weights": [round(float(w), 6) for w in self.weights], **extra}
        atomic_write_text(path, json.dumps(body, indent=1) + "\n")

    def fits(self, embedding_model: str | None) -> bool:
        return embedding_model in self.embedding_models

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        """Probability in [0, 1] that each face is occluded, for (N, D) student embeddings."""
        e = l2_normalize(np.asarray(embeddings, np.float32))
        if e.shape[1] != len(self.weights):
            return np.full(len(e), np.nan, np.float32)
        return (1.0 / (1.0 + np.exp(-(e @ self.weights + self.bias)))).astype(np.float32)
