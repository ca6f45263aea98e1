"""Face verification on identity-labelled sets: all genuine pairs, all (or sampled) impostor pairs.

Comparison scores are cosine similarities of embeddings (or negative L2 distances for models
such as dlib's that are trained for Euclidean distance).  ROC AUC is the Mann-Whitney statistic,
computed from ranks so that a million pairs take milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from ..boxes import l2_normalize


@dataclass
class Pairs:
    """Index pairs into a set of samples and whether each pair is the same identity."""

    first: np.ndarray
    second: np.ndarray
    genuine: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.first)


def all_pairs(labels: np.ndarray, max_impostors: int | None = 200_000, seed: int = 0) -> Pairs:
    """Every genuine pair; impostor pairs all or a seeded uniform sample of ``max_impostors``."""
    labels = np.asarray(labels)
    i, j = np.triu_indices(len(labels), k=1)
    same = labels[i] == labels[j]
    gen = np.flatnonzero(same)
    imp = np.flatnonzero(~same)
    if max_impostors is not None and len(imp) > max_impostors:
        imp = np.sort(np.random.default_rng(seed).choice(imp, max_impostors, replace=False))
    keep = np.concatenate([gen, imp])
    return Pairs(first=i[keep], second=j[keep], genuine=same[keep])


def comparison_scores(embeddings: np.ndarray, pairs: Pairs, metric: str = "cosine") -> np.ndarray:
    """Higher = more similar, for every pair."""
    a, b = embeddings[pairs.first], embeddings[pairs.second]
    if metric == "cosine":
        return np.einsum("ij,ij->i", l2_normalize(a), l2_normalize(b), dtype=np.float64)
    if metric == "euclidean":
        return -np.linalg.norm(a.astype(np.float64) - b.astype(np.float64), axis=1)
    raise ValueError(f"unknown metric {metric!r}")


def roc_auc(scores: np.ndarray, genuine: np.ndarray) -> float:
    """Probability that a random genuine pair scores above a random impostor pair (ties count 1/2)."""
    genuine = np.asarray(genuine, bool)
    n_pos, n_neg = int(genuine.sum()), int((~genuine).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[genuine].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def tar_at_far(scores: np.ndarray, genuine: np.ndarray, far: float) -> float:
    """True accept rate at the threshold where the false accept rate is ``far``."""
    genuine = np.asarray(genuine, bool)
    impostor = np.sort(scores[~genuine])
    if impostor.size == 0:
        return float("nan")
    k = int(np.floor(far * impostor.size))
    threshold = impostor[-k - 1] if k < impostor.size else -np.inf
    return float((scores[genuine] > threshold).mean())


@dataclass
class VerificationReport:
    name: str
    photos: int
    embedded: int
    identities: int
    genuine_pairs: int
    impostor_pairs: int
    auc: float
    tar_at_far_1e2: float
    tar_at_far_1e3: float

    def row(self) -> str:
        return (
            f"| {self.name} | {self.photos} | {self.embedded} | {self.identities} | {self.genuine_pairs:,} | {self.impostor_pairs:,} "
            f"| {self.auc:.4f} | {self.tar_at_far_1e2:.3f} | {self.tar_at_far_1e3:.3f} |"
        )


def verify(name: str, embeddings: np.ndarray, labels: np.ndarray, photos: int, metric: str = "cosine", max_impostors: int | None = 200_000) -> VerificationReport:
    pairs = all_pairs(labels, max_impostors=max_impostors)
    scores = comparison_scores(embeddings, pairs, metric)
    return VerificationReport(
        name=name,
        photos=photos,
        embedded=len(embeddings),
        identities=int(np.unique(labels).size),
        genuine_pairs=int(pairs.genuine.sum()),
        impostor_pairs=int((~pairs.genuine).sum()),
        auc=roc_auc(scores, pairs.genuine),
        tar_at_far_1e2=tar_at_far(scores, pairs.genuine, 1e-2),
        tar_at_far_1e3=tar_at_far(scores, pairs.genuine, 1e-3),
    )
