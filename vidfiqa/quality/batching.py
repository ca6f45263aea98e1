"""Batched scoring: aligned faces from many frames wait in a queue and are scored together."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..faces import Faces
from .base import QualityScorer


class ScoringQueue:
    """Collects aligned faces (rows with ``crops``) and scores them in batches.

    The student is several times faster per face in batches than one at a time, but a live
    stream must not hold a face for long waiting for a full batch: :meth:`due` says a batch is
    ready when ``batch_size`` faces wait or the oldest has waited ``max_wait_s``.

    ``scorer`` is any :class:`~vidfiqa.quality.QualityScorer` (``make_scorer`` builds one by
    name); it sets ``quality``.  Selection also needs an embedding per face to keep the chosen
    frames different: scorers that give none (``embeds = False``) are paired with ``embedder``,
    anything that maps ``Faces`` to ``Faces`` with ``embeddings`` (the bundled student by default).
    When the embedder also gives a quality (the student does), it becomes ``face_quality``: the
    pipeline's absolute floors are calibrated on the student's scale, whatever method ranks.
    """

    def __init__(self, scorer: QualityScorer, batch_size: int = 32, max_wait_s: float = 0.5,
                 embedder: Callable[[Faces], Faces] | None = None, clock: Callable[[], float] = time.monotonic):
        if not getattr(scorer, "embeds", False) and embedder is None:
            raise ValueError(f"ScoringQueue: {scorer!r} gives no embeddings; pass an embedder")
        self.scorer = scorer
        self.embedder = None if getattr(scorer, "embeds", False) else embedder
        self.batch_size = int(batch_size)
        self.max_wait_s = float(max_wait_s)
        self._clock = clock
        self._pending: list[Faces] = []
        self._count = 0
        self._oldest: float | None = None

    def __len__(self) -> int:
        return self._count

    def put(self, faces: Faces) -> None:
        """Queue faces that carry ``crops``."""
        if len(faces) == 0:
            return
        if faces.crops is None:
            raise ValueError("ScoringQueue.put: faces have no crops; align them first")
        if self._oldest is None:
            self._oldest = self._clock()
        self._pending.append(faces)
        self._count += len(faces)

    def due(self) -> bool:
        if self._count == 0 or self._oldest is None:
            return False
        return self._count >= self.batch_size or self._clock() - self._oldest >= self.max_wait_s

    def flush(self) -> Faces:
        """Score everything queued; returns the faces with ``quality`` and ``embeddings`` set."""
        if self._count == 0:
            return Faces.empty()
        faces = Faces.concat(self._pending)
        self._pending, self._count, self._oldest = [], 0, None
        scored = self.scorer(faces)
        if self.embedder is not None:
            student = self.embedder(faces)
            face_quality = None if student.quality is None else np.asarray(student.quality, np.float32)
            scored = scored.replace(embeddings=student.embeddings, face_quality=face_quality)
        return scored.replace(quality=np.asarray(scored.quality, np.float32), embeddings=np.asarray(scored.embeddings, np.float32))
