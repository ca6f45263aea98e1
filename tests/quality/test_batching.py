"""The scoring queue: batches by size and age, any quality method, embeddings for diversity."""

from __future__ import annotations

import numpy as np
import pytest

from vidfiqa.faces import Faces
from vidfiqa.quality.base import QualityScorer
from vidfiqa.quality.batching import ScoringQueue


def test_scoring_queue_flushes_on_size_and_on_age():
    class Scorer(QualityScorer):
        """Quality = mean pixel value, counting the crops per call."""

        embeds = True
        calls: list[int] = []

        def __call__(self, faces, frames=None):
            self.calls.append(len(faces))
            return faces.replace(quality=faces.crops.mean(axis=(1, 2, 3)), embeddings=np.ones((len(faces), 4)))

    now = [0.0]
    queue = ScoringQueue(Scorer(), batch_size=4, max_wait_s=0.5, clock=lambda: now[0])

    def faces(n, value):
        crops = np.full((n, 112, 112, 3), value, np.uint8)
        return Faces.create(np.zeros((n, 4)), np.zeros((n, 5, 2)), np.ones(n), crops=crops)

    queue.put(faces(3, 10))
    assert not queue.due()
    now[0] = 0.6
    assert queue.due(), "the oldest crop has waited max_wait_s"
    queue.put(faces(2, 20))
    out = queue.flush()
    assert Scorer.calls == [5] and len(queue) == 0
    np.testing.assert_allclose(out.quality, [10, 10, 10, 20, 20])
    queue.put(faces(4, 1))
    assert queue.due(), "a full batch is due at once"




def test_scoring_queue_takes_embeddings_from_the_embedder_when_the_method_gives_none():
    class Sharpish(QualityScorer):
        def score(self, crops, faces=None):
            return crops.std(axis=(1, 2, 3))

    def embedder(faces):
        return faces.replace(embeddings=np.full((len(faces), 3), 2.0), quality=np.zeros(len(faces)))

    with pytest.raises(ValueError, match="embedder"):
        ScoringQueue(Sharpish())
    queue = ScoringQueue(Sharpish(), batch_size=2, embedder=embedder)
    crops = np.zeros((2, 112, 112, 3), np.uint8)
    crops[1, ::2] = 200
    queue.put(Faces.create(np.zeros((2, 4)), np.zeros((2, 5, 2)), np.ones(2), crops=crops))
    out = queue.flush()
    assert out.quality[1] > out.quality[0] == 0, "quality comes from the method, not from the embedder"
    assert out.embeddings.shape == (2, 3)
