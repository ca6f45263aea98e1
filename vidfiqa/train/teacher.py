"""Teacher signals for the quality student, all computed with the frozen FR model.

- ``embedding_norm``: the L2 norm of the raw embedding (MagFace's observation; measured strong
  for MobileFaceNet before we built anything, see methods/ediffiqa.md).
- ``certainty_ratio``: CR-FIQA's target, cosine to the own identity centre over the largest
  cosine to another identity centre; needs identity labels, so it exists only for training
  data - which is why a student must learn to predict it from pixels.
- FROQ's perturbation pseudo-labels come from :mod:`vidfiqa.quality.froq`.

Every signal here is a per-crop number; ``rank_normalise`` maps any of them to [0, 1] so that
they can be combined and used as eDifFIQA labels.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from ..boxes import l2_normalize


def embedding_norm(embeddings: np.ndarray) -> np.ndarray:
    return np.linalg.norm(embeddings, axis=1).astype(np.float32)


def certainty_ratio(embeddings: np.ndarray, identity: list[str] | np.ndarray) -> np.ndarray:
    """CCS / NNCCS per sample; NaN for samples without identity or alone in their identity.

    The own centre leaves the sample out (with few photos per person, including it would
    reward every sample for resembling itself).  Cosines are shifted to [0, 2] before the ratio
    so that negative similarities do not flip its meaning.
    """
    identity = np.asarray(identity)
    unit = l2_normalize(embeddings)
    out = np.full(len(unit), np.nan, np.float32)
    names = [n for n in np.unique(identity) if n]
    if len(names) < 2:
        return out
    sums = np.stack([unit[identity == n].sum(axis=0) for n in names])
    counts = np.array([(identity == n).sum() for n in names])
    centres = l2_normalize(sums / counts[:, None])
    index = {n: i for i, n in enumerate(names)}
    for i, name in enumerate(identity):
        if not name or counts[index[name]] < 2:
            continue
        c = index[name]
        own = l2_normalize((sums[c] - unit[i]) / (counts[c] - 1))
        ccs = float(unit[i] @ own)
        others = centres @ unit[i]
        others[c] = -np.inf
        nnccs = float(others.max())
        out[i] = (1.0 + ccs) / (1.0 + nnccs + 1e-6)
    return out


def rank_normalise(values: np.ndarray) -> np.ndarray:
    """Ranks scaled to [0, 1] (ties averaged); NaN stays NaN."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    ok = np.isfinite(values)
    if ok.sum() > 1:
        out[ok] = (rankdata(values[ok]) - 1) / (ok.sum() - 1)
    elif ok.sum() == 1:
        out[ok] = 0.5
    return out.astype(np.float32)


def minmax(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    lo, hi = np.nanmin(values), np.nanmax(values)
    return ((values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)).astype(np.float32)


def relative_position_correction(labels: np.ndarray, embeddings: np.ndarray, identity, beta: float = 0.2, epsilon: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """eDifFIQA's C3 term: q° = clamp(q - ε·(1 - cos(e, ē_C)), 0, 1).

    ē_C is the mean (unit) embedding of the top ``beta`` fraction of identity C's samples by
    label.  Samples without identity keep their label.  Returns (corrected labels, a_x).
    """
    identity = np.asarray(identity)
    unit = l2_normalize(embeddings)
    labels = np.asarray(labels, dtype=np.float64)
    distance = np.zeros(len(labels))
    for name in np.unique(identity):
        if not name:
            continue
        members = np.flatnonzero(identity == name)
        top = members[np.argsort(-labels[members])[: max(1, int(round(beta * len(members))))]]
        centre = l2_normalize(unit[top].mean(axis=0))
        distance[members] = 1.0 - unit[members] @ centre
    corrected = np.clip(labels - epsilon * distance, 0.0, 1.0)
    return corrected.astype(np.float32), distance.astype(np.float32)


def intra_class_weights(embeddings: np.ndarray, identity) -> np.ndarray:
    """IG-FIQA-style sample weights: w = 1 + clip(z, -1, 0) with z the standardised mean
    cosine-to-centre of the sample's identity; identities that are spread out (noisy labels,
    hard classes) count less.  Samples without identity get weight 1."""
    identity = np.asarray(identity)
    unit = l2_normalize(embeddings)
    names = [n for n in np.unique(identity) if n]
    spread = {}
    for n in names:
        members = unit[identity == n]
        centre = l2_normalize(members.mean(axis=0))
        spread[n] = float((members @ centre).mean())
    values = np.array(list(spread.values()))
    mu, sd = values.mean(), values.std() + 1e-6
    w = np.ones(len(identity), np.float32)
    for i, n in enumerate(identity):
        if n:
            w[i] = 1.0 + np.clip((spread[n] - mu) / sd, -1.0, 0.0)
    return w
