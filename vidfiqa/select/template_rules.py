"""Ways to make one template (a unit vector) of a face's many frames, as `vidfiqa eval ytf` measures them.

* ``weighted``: every frame counts, weighted by a softmax over its quality with a temperature
  (in the quality's own units): ``w_i = exp((q_i - max q) / T)``.  A large T is the plain mean of
  all frames; a small one approaches the single best frame.
* ``selected``: the frames `vidfiqa run`'s diverse selection picks (``select/diverse.py``), with
  the pipeline's merit and selection rule (``select/rule.py``), averaged with equal weights.

Each frame's embedding is L2-normalised before it is averaged, so every frame's say is its
weight, whatever its embedding's norm.  :class:`TemplateBuilder` folds frames in one at a time
(streaming, constant memory), so a live track can carry its ``weighted`` template without
keeping its frames.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..boxes import l2_normalize
from .diverse import select_diverse
from .rule import SelectionRule, merit
from .smoothing import smooth_quality


#: The template `vidfiqa run` and `watch` give each track and person: the ``weighted`` rule over
#: every scored face, with this temperature on the student's quality scale (0..1): one standard
#: deviation of the student's quality over the YouTube Faces dev frames (0.171), the best of the
#: temperatures tried on the choice half of its people (benchmarks/ytf_templates.py; README).
TEMPLATE_RULE = "weighted"
TEMPLATE_TEMPERATURE = 0.17


def _unit_rows(embeddings: np.ndarray) -> np.ndarray:
    e = np.asarray(embeddings, np.float64)
    if e.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), not {e.shape}")
    return l2_normalize(e)


def softmax_weights(quality: np.ndarray, temperature: float) -> np.ndarray:
    """Weights summing to 1: ``exp((q - max q) / temperature)``; ``inf``: equal weights."""
    q = np.asarray(quality, np.float64)
    if not math.isfinite(temperature):
        return np.full(len(q), 1.0 / max(1, len(q)))
    if temperature <= 0:
        raise ValueError(f"the temperature must be positive, got {temperature}")
    w = np.exp((q - q.max()) / temperature)
    return w / w.sum()


def weighted_template(embeddings: np.ndarray, quality: np.ndarray, temperature: float) -> np.ndarray:
    """The ``weighted`` rule over frames with finite quality and embedding; ValueError if none."""
    e, q = _unit_rows(embeddings), np.asarray(quality, np.float64)
    keep = np.isfinite(q) & np.isfinite(e).all(axis=1)
    if not keep.any():
        raise ValueError("no frame with a finite quality and embedding to make a template of")
    return l2_normalize(softmax_weights(q[keep], temperature) @ e[keep])


def product_template(embeddings: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """The template `vidfiqa run` and `watch` ship for a track of these faces (frames in order),
    made by the very builder the pipeline uses: `vidfiqa eval ytf --rule product` reports it, so
    the report describes what users get whatever the shipped rule is.  ValueError if no frame
    has a finite quality and embedding."""
    builder = TemplateBuilder()
    builder.add(np.asarray(embeddings), np.asarray(quality))
    vector = builder.template()
    if vector is None:
        raise ValueError("no frame with a finite quality and embedding to make a template of")
    return vector.astype(np.float64)


def selected_frames(quality: np.ndarray, times_s: np.ndarray, embeddings: np.ndarray, rule: SelectionRule) -> np.ndarray:
    """Indices (temporal order) of the frames the pipeline's selection (``rule``) picks from
    these frames (frames in temporal order; NaN quality: no face, never picked).

    Every setting of the rule applies but ``min_quality``: that floor is on the bundled
    student's scale, and ``quality`` here may be any method's (a `vidfiqa rescore` parquet of
    FaceQAN carries no student quality), so the eval cannot apply it faithfully."""
    q = np.asarray(quality, np.float64)
    faces = np.flatnonzero(np.isfinite(q))
    if faces.size == 0:
        return faces
    smoothed = smooth_quality(q[faces], rule.smooth_window, rule.smooth_sigma).astype(np.float64)
    picks = select_diverse(merit(q[faces], smoothed), np.asarray(times_s, np.float64)[faces], np.asarray(embeddings, np.float64)[faces], rule)
    return np.sort(faces[np.asarray(picks, np.int64)])


class TemplateBuilder:
    """The ``weighted`` template of a stream of frames, one frame at a time.

    Keeps ``sum_i exp((q_i - m) / T) e_i`` with ``m`` the highest quality so far (rescaled when a
    better frame arrives), so nothing overflows and memory is one vector.  ``temperature`` inf:
    the plain mean."""

    def __init__(self, temperature: float = TEMPLATE_TEMPERATURE, model: str | None = None):
        if not (temperature > 0):
            raise ValueError(f"the temperature must be positive, got {temperature}")
        self.temperature = float(temperature)
        self.model = model  # the embedding model the template is in (named in manifests and events)
        self._sum: np.ndarray | None = None
        self._top = -math.inf
        self.count = 0

    def add(self, embeddings: np.ndarray, quality: np.ndarray) -> None:
        e, q = _unit_rows(embeddings), np.asarray(quality, np.float64).reshape(-1)
        keep = np.isfinite(q) & np.isfinite(e).all(axis=1) & (np.linalg.norm(e, axis=1) > 0)
        if not keep.any():
            return
        e, q = e[keep], q[keep]
        if math.isinf(self.temperature):
            part, top = e.sum(axis=0), 0.0
        else:
            top = max(self._top, float(q.max()))
            if self._sum is not None and top > self._top:
                self._sum = self._sum * math.exp((self._top - top) / self.temperature)
            part = np.exp((q - top) / self.temperature) @ e
        self._sum = part if self._sum is None else self._sum + part
        self._top = top
        self.count += int(keep.sum())

    def remove(self, embeddings: np.ndarray, quality: np.ndarray) -> None:
        """Take frames added before out again (a track split: they belong to the other part).
        The kept maximum stays an upper bound of the qualities left, which is all the sum needs."""
        e, q = _unit_rows(embeddings), np.asarray(quality, np.float64).reshape(-1)
        keep = np.isfinite(q) & np.isfinite(e).all(axis=1) & (np.linalg.norm(e, axis=1) > 0)
        if self._sum is None or not keep.any():
            return
        e, q = e[keep], q[keep]
        part = e.sum(axis=0) if math.isinf(self.temperature) else np.exp((q - self._top) / self.temperature) @ e
        self._sum = self._sum - part
        self.count = max(0, self.count - int(keep.sum()))
        if self.count == 0:
            self._sum, self._top = None, -math.inf

    def copy(self) -> "TemplateBuilder":
        other = TemplateBuilder(self.temperature, self.model)
        other.merge(self)
        return other

    def merge(self, other: "TemplateBuilder") -> None:
        """Fold in another builder's frames (the parts of a track split and joined again)."""
        if other._sum is None:
            return
        if self._sum is None:
            self._sum, self._top, self.count = other._sum.copy(), other._top, other.count
            return
        if math.isinf(self.temperature):
            self._sum = self._sum + other._sum
        else:
            top = max(self._top, other._top)
            self._sum = self._sum * math.exp((self._top - top) / self.temperature) + other._sum * math.exp((other._top - top) / self.temperature)
            self._top = top
        self.count += other.count

    def template(self) -> np.ndarray | None:
        """The unit template, or None before any frame."""
        if self._sum is None or not np.any(self._sum):
            return None
        return l2_normalize(self._sum).astype(np.float32)

    def record(self) -> dict[str, Any] | None:
        """The template as manifests and events give it (None: no scored face)."""
        vector = self.template()
        if vector is None:
            return None
        return {"model": self.model, "dim": int(vector.size), "rule": TEMPLATE_RULE, "temperature": self.temperature,
                "faces": self.count, "vector": [round(float(v), 6) for v in vector]}


def merged(builders: list["TemplateBuilder"]) -> TemplateBuilder | None:
    """One builder of the frames of several (a person's tracks); None if there are none."""
    if not builders:
        return None
    total = builders[0].copy()
    for other in builders[1:]:
        total.merge(other)
    return total
