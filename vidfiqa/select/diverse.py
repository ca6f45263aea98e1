"""Diversity-aware selection of a track's best frames: greedy maximal marginal relevance (MMR).

The rule, with the settings that control it (``vidfiqa run --help``):

1. A frame's **merit** is ``min(quality, quality_smoothed)`` (``rule.merit``): it must be good
   itself *and* sit in a good stretch of the track, so neither a one-frame spike nor a blink
   between good frames wins.  Frames below ``min_quality`` (smoothed) or ``min_face_size`` are not eligible.
2. Merit is rescaled to 0..1 within the track (range at least ``QUALITY_RANGE``, so a track
   whose frames are all alike is not stretched into false differences).
3. **Similarity** of two frames = ``embedding_weight`` x cosine of their student embeddings
   (clipped at 0) + (1 - ``embedding_weight``) x exp(-|dt| / ``time_scale_s``).
4. Pick the frame with the highest merit; then repeatedly the frame maximising
   ``(1 - diversity) x merit - diversity x (max similarity to the frames already picked)``,
   skipping frames closer than ``min_gap_s`` in time to a picked one; stop at ``top_k`` or when
   nothing is eligible.
"""

from __future__ import annotations

import numpy as np

from ..boxes import l2_normalize
from .rule import SelectionRule

# The bundled student's quality spans roughly 0..1 from unusable to excellent faces; a track
# whose merits span less than this is treated as this wide.
QUALITY_RANGE = 0.2


def frame_similarity(embeddings: np.ndarray, times: np.ndarray, embedding_weight: float, time_scale_s: float) -> np.ndarray:
    """(N, N) similarity in 0..1 from embedding cosine and closeness in time."""
    e = l2_normalize(np.asarray(embeddings, np.float64))
    cosine = np.clip(e @ e.T, 0.0, 1.0)
    t = np.asarray(times, np.float64)
    closeness = np.exp(-np.abs(t[:, None] - t[None, :]) / time_scale_s)
    return embedding_weight * cosine + (1.0 - embedding_weight) * closeness


def select_diverse(merit: np.ndarray, times: np.ndarray, embeddings: np.ndarray, rule: SelectionRule,
                   eligible: np.ndarray | None = None) -> list[int]:
    """Indices of the selected frames, best first (see the module docstring for the rule; the
    settings are ``rule``'s ``top_k``, ``diversity``, ``time_scale_s``, ``embedding_weight`` and
    ``min_gap_s``)."""
    top_k, diversity = rule.top_k, rule.diversity
    merit = np.asarray(merit, np.float64)
    n = len(merit)
    ok = np.isfinite(merit) if eligible is None else (np.asarray(eligible, bool) & np.isfinite(merit))
    if n == 0 or not ok.any() or top_k < 1:
        return []
    low, high = merit[ok].min(), merit[ok].max()
    relevance = (merit - low) / max(high - low, QUALITY_RANGE)
    similarity = frame_similarity(embeddings, times, rule.embedding_weight, rule.time_scale_s)
    times = np.asarray(times, np.float64)
    picked = [int(np.flatnonzero(ok)[np.argmax(relevance[ok])])]
    while len(picked) < top_k:
        available = ok.copy()
        available[picked] = False
        for j in picked:
            available &= np.abs(times - times[j]) >= rule.min_gap_s
        if not available.any():
            break
        gain = (1.0 - diversity) * relevance - diversity * similarity[:, picked].max(axis=1)
        gain[~available] = -np.inf
        picked.append(int(np.argmax(gain)))
    return picked
