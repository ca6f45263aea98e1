"""Linking tracks into persons: one template per track, tracks clustered by cosine similarity.

A track's *link template* (:func:`link_template`) is the quality-weighted mean of its faces'
L2-normalised embeddings, normalised again.  Two tracks are the same person when their templates
are similar enough, with one hard rule: **two tracks that overlap in time are never the same
person** (two faces seen at once are two people), and this holds for whole persons, not only
for pairs - a person never holds two tracks that overlap.

* :func:`link_persons` links the tracks of a whole input at once (offline): constrained
  agglomerative clustering, average linkage on cosine similarity, stopping at ``threshold``.
* :class:`PersonMemory` links the tracks of a live stream one by one, as they end: a person who
  leaves and comes back within ``memory_s`` keeps their id.

The default threshold and the embedding it applies to were chosen by measurement
(benchmarks/person_threshold.py, results in benchmarks/results/person_threshold_vm.json):
:data:`DEFAULT_THRESHOLD` is for templates of the eDifFIQA student's own 128-d embedding, the
one the pipeline already computes for every scored face.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..boxes import l2_normalize

#: Average-linkage cosine similarity of student-embedding templates at or above which tracks are
#: one person: the best link_persons pairwise F1 on one half of the identities (YTF videos and
#: 3-photo pseudo-tracks); on the other half it gives template-pair FAR <= 2e-3 at TAR 0.70 (YTF
#: videos) to >= 0.997 (3-photo tracks).
DEFAULT_THRESHOLD = 0.375
#: Faces a template averages: the ``top_k`` best by quality (None: all of them).  Top-5 beat the
#: plain mean and weighting all faces on the choice split (TAR at FAR 1e-2 0.977 vs 0.967, 0.974).
DEFAULT_TOP_K: int | None = 5
LINKAGES = ("average", "complete", "single")


def link_template(embeddings: np.ndarray, quality: np.ndarray | None = None, top_k: int | None = DEFAULT_TOP_K) -> np.ndarray:
    """One unit vector (D,) for a track from its faces' embeddings (N, D).

    Each embedding is L2-normalised first, so every face has the same say regardless of its
    embedding's norm.  With ``quality`` (N,), only the ``top_k`` best faces by quality count
    (all with ``top_k=None``), weighted by quality rescaled over those faces: 0.1 for the worst,
    1.1 for the best (equal qualities: the plain mean).  Without ``quality``: the plain mean of
    all faces.  Faces whose embedding or quality is not finite are left out.  Raises
    ``ValueError`` when no face is left.
    """
    emb = np.asarray(embeddings, np.float64)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), not {emb.shape}")
    keep = np.isfinite(emb).all(axis=1)
    q = None
    if quality is not None:
        q = np.asarray(quality, np.float64).reshape(-1)
        if len(q) != len(emb):
            raise ValueError(f"{len(q)} qualities for {len(emb)} embeddings")
        keep &= np.isfinite(q)
        q = q[keep]
    emb = l2_normalize(emb[keep])
    keep_rows = np.linalg.norm(emb, axis=1) > 0
    emb = emb[keep_rows]
    if len(emb) == 0:
        raise ValueError("no finite, non-zero embedding to make a template of")
    if q is None:
        weights = np.ones(len(emb))
    else:
        q = q[keep_rows]
        if top_k is not None and len(q) > top_k:
            best = np.argsort(-q, kind="stable")[:top_k]
            emb, q = emb[best], q[best]
        spread = q.max() - q.min()
        weights = (q - q.min()) / spread + 0.1 if spread > 0 else np.ones(len(q))
    template = weights @ emb
    return l2_normalize(template)


@dataclass(frozen=True, eq=False)
class TrackSpan:
    """What linking needs of one track: its id, when it was seen (seconds; ``end_s`` >=
    ``start_s``, both inclusive), its template (a unit vector, see :func:`link_template`) and a
    weight saying how good it is (e.g. its quality mass), used only to number the persons."""

    track_id: int
    start_s: float
    end_s: float
    template: np.ndarray
    weight: float = 1.0

    def overlaps(self, other: "TrackSpan") -> bool:
        """Both seen at some same instant (touching ends count: one frame seen together)."""
        return self.start_s <= other.end_s and other.start_s <= self.end_s


def link_persons(tracks: Sequence[TrackSpan], threshold: float = DEFAULT_THRESHOLD, linkage: str = "average") -> dict[int, int]:
    """Person id (1..P) of every track id: offline linking over a whole input.

    Agglomerative clustering on the cosine similarity of templates: the two most similar
    clusters merge, again and again, while their linkage similarity is at least ``threshold``.
    ``average`` linkage (the default, the measured choice) scores two clusters by the mean
    similarity over all their track pairs, ``complete`` by the least similar pair, ``single`` by
    the most similar one.  A merge that would put two overlapping tracks into one cluster is
    never made, so no person ever holds two tracks seen at the same time.

    Persons are numbered by their best track: the person whose highest-``weight`` track is the
    highest of all is 1, and so on; ties go to the person who appeared first, then to the lower
    track id.
    """
    if linkage not in LINKAGES:
        raise ValueError(f"unknown linkage {linkage!r}: choose one of {', '.join(LINKAGES)}")
    n = len(tracks)
    if n == 0:
        return {}
    ids = [t.track_id for t in tracks]
    if len(set(ids)) != n:
        raise ValueError("track ids must be unique")
    templates = l2_normalize(np.stack([np.asarray(t.template, np.float64).reshape(-1) for t in tracks]))
    start = np.array([t.start_s for t in tracks], np.float64)
    end = np.array([t.end_s for t in tracks], np.float64)
    # forbidden[a, b]: clusters a and b hold two tracks that overlap in time.
    forbidden = (start[:, None] <= end[None, :]) & (start[None, :] <= end[:, None])
    similarity = templates @ templates.T  # cluster-to-cluster linkage similarity
    size = np.ones(n)
    active = np.ones(n, bool)
    label = np.arange(n)
    score = np.where(forbidden, -np.inf, similarity)  # forbidden includes the diagonal
    best = np.argmax(score, axis=1)  # per row: the column of its highest score (kept up to date)
    best_score = score[np.arange(n), best]
    for _ in range(n - 1):
        a = int(np.argmax(best_score))
        b = int(best[a])
        if not best_score[a] >= threshold:
            break
        a, b = min(a, b), max(a, b)  # merge b into a
        if linkage == "average":
            row = (size[a] * similarity[a] + size[b] * similarity[b]) / (size[a] + size[b])
        elif linkage == "complete":
            row = np.minimum(similarity[a], similarity[b])
        else:
            row = np.maximum(similarity[a], similarity[b])
        similarity[a], similarity[:, a] = row, row
        forbidden[a] |= forbidden[b]
        forbidden[:, a] = forbidden[a]
        size[a] += size[b]
        active[b] = False
        label[label == b] = a
        new = np.where(forbidden[a] | ~active, -np.inf, row)
        score[a], score[:, a] = new, new
        score[b], score[:, b] = -np.inf, -np.inf
        # Rows that pointed at a or b look again; the others only compare with their new score to a.
        stale = np.flatnonzero(active & ((best == a) | (best == b)))
        stale = np.union1d(stale, [a])
        best[stale] = np.argmax(score[stale], axis=1)
        best_score[stale] = score[stale, best[stale]]
        best_score[b] = -np.inf
        better = active & (new > best_score)
        best[better], best_score[better] = a, new[better]
    return _number_persons(tracks, label)


def _number_persons(tracks: Sequence[TrackSpan], label: np.ndarray) -> dict[int, int]:
    key: dict[int, tuple[float, float, int]] = {}  # cluster -> (-best weight, first start, lowest track id)
    for t, cluster in zip(tracks, label.tolist()):
        mine = (-float(t.weight), float(t.start_s), int(t.track_id))
        old = key.get(cluster, mine)
        key[cluster] = (min(old[0], mine[0]), min(old[1], mine[1]), min(old[2], mine[2]))
    person = {cluster: i + 1 for i, cluster in enumerate(sorted(key, key=key.__getitem__))}
    return {t.track_id: person[cluster] for t, cluster in zip(tracks, label.tolist())}


@dataclass
class _Person:
    total: np.ndarray  # weighted sum of the unit templates of the person's tracks
    template: np.ndarray  # ``total`` normalised
    last_s: float  # end of the latest track
    spans: list[tuple[float, float]]  # time spans of the person's tracks (merged, at most MAX_SPANS)


class PersonMemory:
    """Person ids for the tracks of a live stream, assigned one track at a time (as it ends).

    :meth:`assign` compares a track's template with the running template of every remembered
    person (the normalised weight-sum of their tracks' templates) and returns the most similar
    one's id when the similarity is at least ``threshold``; persons seen at any instant of the
    track's own span are never candidates (two faces at once are two people).  Otherwise the
    track is a new person, with a new id: ids count up from 1 and are never reused.

    Time is stream time in seconds.  A person is remembered for ``memory_s`` after they were
    last seen (the end of their latest track): a track that starts within ``memory_s`` of that
    can be matched to them; after that they are forgotten, and coming back gives a new id.  The
    clock that forgets is the latest track start seen so far.  At most ``max_persons`` persons
    are remembered; beyond that the least recently seen one is forgotten.
    """

    MAX_SPANS = 64

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, memory_s: float = 600.0, max_persons: int = 1000):
        if max_persons < 1:
            raise ValueError("max_persons must be at least 1")
        if not memory_s >= 0:
            raise ValueError("memory_s must be >= 0")
        self.threshold = float(threshold)
        self.memory_s = float(memory_s)
        self.max_persons = int(max_persons)
        self._persons: dict[int, _Person] = {}
        self._next_id = 1
        self._clock = -np.inf

    def __len__(self) -> int:
        """Persons remembered now."""
        return len(self._persons)

    @property
    def person_ids(self) -> list[int]:
        return list(self._persons)

    def assign(self, template: np.ndarray, start_s: float, end_s: float, weight: float = 1.0) -> int:
        """The person id of a track seen from ``start_s`` to ``end_s`` with this template."""
        if end_s < start_s:
            raise ValueError(f"track ends ({end_s}) before it starts ({start_s})")
        vector = l2_normalize(np.asarray(template, np.float64).reshape(-1))
        self._clock = max(self._clock, float(start_s))
        self._forget()
        best_id, best_sim = None, -np.inf
        for pid, person in self._persons.items():
            if start_s - person.last_s > self.memory_s:
                continue
            if any(s <= end_s and start_s <= e for s, e in person.spans):
                continue
            sim = float(person.template @ vector)
            if sim > best_sim:
                best_id, best_sim = pid, sim
        w = max(float(weight), 1e-6)
        if best_id is not None and best_sim >= self.threshold:
            person = self._persons.pop(best_id)  # re-inserted last: dict order = least recently seen first
            person.total = person.total + w * vector
            person.template = l2_normalize(person.total)
            person.last_s = max(person.last_s, float(end_s))
            person.spans = _add_span(person.spans, (float(start_s), float(end_s)), self.MAX_SPANS)
            self._persons[best_id] = person
            return best_id
        pid = self._next_id
        self._next_id += 1
        self._persons[pid] = _Person(total=w * vector, template=vector, last_s=float(end_s), spans=[(float(start_s), float(end_s))])
        while len(self._persons) > self.max_persons:
            del self._persons[min(self._persons, key=lambda k: self._persons[k].last_s)]
        return pid

    def _forget(self) -> None:
        for pid in [pid for pid, p in self._persons.items() if self._clock - p.last_s > self.memory_s]:
            del self._persons[pid]


def _add_span(spans: list[tuple[float, float]], span: tuple[float, float], limit: int) -> list[tuple[float, float]]:
    """``spans`` with ``span`` added, overlapping ones merged, sorted, the latest ``limit`` kept."""
    out: list[tuple[float, float]] = []
    for s, e in sorted([*spans, span]):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out[-limit:]
