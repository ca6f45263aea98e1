"""Error-versus-Discard Characteristic (FNMR-EDC) and its pAUC, as in ``shared/methods/edc.md``.

The metric (ISO/IEC 29794-1; Schlett et al., TBIOM 2024), with the conventions fixed here:

* **Threshold fixed once.**  The decision threshold is set at 0 % discard from *all* impostor
  comparison scores for a target FMR and never recomputed while discarding.  Recomputing it on
  each retained subset (as some public code does) is a different metric; see
  :func:`edc_curve`, which ignores impostor pairs' quality entirely for that reason.
  A comparison is a match when ``score > threshold`` (the convention of
  :func:`vidfiqa.eval.verification.tar_at_far`): the threshold is the ``k+1``-th highest impostor
  score with ``k = floor(fmr * n_impostor)``, so the realised FMR never exceeds the target.
* **Pair quality** is ``min(q_a, q_b)`` (:func:`pair_quality`).
* **Discard fraction over genuine pairs.**  FNMR is a rate over genuine (mated) pairs, so the
  discard fraction is counted over the same pairs: ``x = discarded genuine / all genuine``
  (the ISO / Schlett convention).  Counting over all pairs would make the x axis depend on how
  impostor pairs' qualities happen to interleave with the genuine ones, which FNMR never sees.
* **Ties go together.**  Genuine pairs are discarded from the lowest pair quality upward; pairs of
  equal quality are discarded as one group, so the curve only has points at group boundaries
  (plus ``x = 0``).  A constant quality score therefore has the single point ``(0, FNMR0)``.
* **Stepwise pAUC.**  The FNMR at a point holds until the next point (a right-continuous step
  function); :func:`pauc` integrates it from 0 to the limit.  Normalised pAUC divides by
  ``FNMR0 x limit``: a random pair order scores exactly 1.0 in expectation (after discarding any
  uniformly random subset the expected error fraction of the rest is still FNMR0), lower is
  better.  :func:`random_baseline` also gives the seeded mean and spread of random *photo*
  scores, whose pairs move together and so scatter more widely around 1.0.
* **Floor (headroom).**  A perfect order discards exactly the failing genuine pairs first:
  ``FNMR(x) = (FNMR0 - x) / (1 - x)`` clipped at 0.  :func:`floor_curve` samples that formula at
  the same grid of discard fractions a tie-free score has (``j / n_genuine``) and integrates it
  with the same stepwise rule, so it is the exact best any score can reach on this pair set;
  :func:`floor_pauc_continuous` is the integral of the formula itself (lower by < 1/n_genuine).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .verification import Pairs

DEFAULT_FMRS = (1e-3, 1e-2)
DEFAULT_LIMITS = (0.2, 0.3)


# ----------------------------------------------------------------------------- building blocks
def threshold_at_fmr(impostor_scores: np.ndarray, fmr: float) -> tuple[float, float]:
    """Decision threshold for a target FMR and the FMR it really gives, ``(threshold, realised)``.

    Matches are ``score > threshold``.  With fewer than ``1 / fmr`` impostor pairs the threshold
    is the highest impostor score (realised FMR 0): the target cannot be resolved, which
    :func:`evaluate` reports as ``fmr_resolved = False``.
    """
    impostor = np.sort(np.asarray(impostor_scores, dtype=np.float64))
    if impostor.size == 0:
        raise ValueError("no impostor pairs: a threshold for a target FMR needs some")
    if not 0.0 < fmr < 1.0:
        raise ValueError(f"FMR must be in (0, 1), got {fmr}")
    k = int(np.floor(fmr * impostor.size))
    threshold = float(impostor[-k - 1])
    realised = float(np.count_nonzero(impostor > threshold) / impostor.size)
    return threshold, realised


def pair_quality(photo_quality: np.ndarray, pairs: Pairs) -> np.ndarray:
    """Quality of each pair: the lower of its two photos' qualities."""
    q = np.asarray(photo_quality, dtype=np.float64)
    return np.minimum(q[pairs.first], q[pairs.second])


def pauc(discard: np.ndarray, fnmr: np.ndarray, limit: float) -> float:
    """Area under a stepwise EDC from 0 to ``limit``.

    ``discard`` is increasing and starts at 0; ``fnmr[i]`` holds on ``[discard[i], discard[i+1])``
    and the last value holds to the limit.
    """
    discard = np.asarray(discard, dtype=np.float64)
    fnmr = np.asarray(fnmr, dtype=np.float64)
    if not 0.0 <= limit <= 1.0:
        raise ValueError(f"pAUC limit must be in [0, 1], got {limit}")
    if discard.size == 0 or discard[0] != 0.0:
        raise ValueError("an EDC curve must start at discard fraction 0")
    left = np.minimum(discard, limit)
    right = np.minimum(np.r_[discard[1:], max(limit, discard[-1])], limit)
    return float(np.sum(fnmr * (right - left)))


# ----------------------------------------------------------------------------- the curve
@dataclass
class EDCCurve:
    """One FNMR-EDC: ``fnmr[i]`` is the FNMR of the genuine pairs left after discarding the
    fraction ``discard[i]`` of them (lowest quality first), at the fixed ``threshold``."""

    discard: np.ndarray  # float64 (P,), increasing, discard[0] == 0
    fnmr: np.ndarray  # float64 (P,)
    discarded: np.ndarray  # int64 (P,): genuine pairs discarded at each point
    errors: np.ndarray  # int64 (P,): false non-matches among the genuine pairs left
    n_genuine: int
    threshold: float
    fmr: float  # target FMR the threshold was set for (NaN if a threshold was given)

    @property
    def fnmr0(self) -> float:
        return float(self.fnmr[0])

    def pauc(self, limit: float) -> float:
        return pauc(self.discard, self.fnmr, limit)

    def normalised_pauc(self, limit: float) -> float:
        """pAUC / (FNMR0 x limit): ~1 for a random order, lower is better; NaN when FNMR0 = 0."""
        denom = self.fnmr0 * limit
        return self.pauc(limit) / denom if denom > 0 else float("nan")

    def at(self, x: np.ndarray | float) -> np.ndarray:
        """FNMR of the step function at discard fraction(s) ``x``."""
        idx = np.searchsorted(self.discard, np.asarray(x, dtype=np.float64), side="right") - 1
        return self.fnmr[np.clip(idx, 0, len(self.fnmr) - 1)]

    def points(self, max_points: int = 201, max_discard: float = 1.0) -> dict:
        """JSON-able points up to ``max_discard``: every point when there are few, else the step
        function sampled on an even grid (same step meaning: each value holds to the next x)."""
        keep = self.discard <= max_discard
        if keep.sum() <= max_points:
            x, y = self.discard[keep], self.fnmr[keep]
        else:
            x = np.linspace(0.0, max_discard, max_points)
            y = self.at(x)
        return {"discard": [round(float(v), 6) for v in x], "fnmr": [round(float(v), 6) for v in y]}


def edc_curve(
    scores: np.ndarray,
    genuine: np.ndarray,
    quality: np.ndarray,
    fmr: float = 1e-3,
    threshold: float | None = None,
) -> EDCCurve:
    """FNMR-EDC of pair qualities ``quality`` over all pairs (``genuine`` marks the mated ones).

    The threshold comes from the impostor scores for ``fmr`` unless ``threshold`` is given; it
    is fixed for the whole curve.  Impostor pairs' qualities are not used.
    """
    scores = np.asarray(scores, dtype=np.float64)
    genuine = np.asarray(genuine, dtype=bool)
    quality = np.asarray(quality, dtype=np.float64)
    if not scores.shape == genuine.shape == quality.shape:
        raise ValueError("scores, genuine and quality must have one value per pair")
    if threshold is None:
        threshold, _ = threshold_at_fmr(scores[~genuine], fmr)
    else:
        fmr = float("nan")
    q, failed = quality[genuine], scores[genuine] <= threshold
    if q.size == 0:
        raise ValueError("no genuine pairs: an FNMR-EDC needs some")
    if not np.all(np.isfinite(q)):
        raise ValueError("pair qualities must be finite (drop photos without a quality first)")
    discard, fnmr, discarded, errors = _genuine_edc(q, failed)
    return EDCCurve(discard, fnmr, discarded, errors, n_genuine=int(q.size), threshold=float(threshold), fmr=float(fmr))


def _genuine_edc(q: np.ndarray, failed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The curve of genuine pairs with qualities ``q`` of which ``failed`` are false non-matches:
    ``(discard fraction, FNMR, discarded count, errors left)`` at 0 and at tie-group boundaries."""
    n = q.size
    # Stable sort: the order inside a tie group does not matter, as the group leaves at once.
    order = np.argsort(q, kind="stable")
    q, failed = q[order], failed[order]
    # Errors left after discarding the first d pairs = failures among positions d..n-1.
    errors_left = np.r_[np.cumsum(failed[::-1])[::-1], 0]
    # A point at 0 and after each complete tie group (but not after the last: nothing is left).
    discarded = np.r_[0, np.flatnonzero(q[1:] != q[:-1]) + 1].astype(np.int64)
    errors = errors_left[discarded].astype(np.int64)
    return discarded / n, errors / (n - discarded), discarded, errors


# ----------------------------------------------------------------------------- references
def floor_curve(n_genuine: int, n_errors: int, threshold: float = float("nan"), fmr: float = float("nan")) -> EDCCurve:
    """The perfect order: failing genuine pairs discarded first, one at a time.

    At ``x = j / n`` this is exactly ``(FNMR0 - x) / (1 - x)`` clipped at 0.
    """
    if n_genuine <= 0 or not 0 <= n_errors <= n_genuine:
        raise ValueError("need n_genuine > 0 and 0 <= n_errors <= n_genuine")
    # After the last failure has gone, FNMR stays 0: one more point there is enough.
    discarded = np.arange(min(n_errors, n_genuine - 1) + 1, dtype=np.int64)
    errors = n_errors - discarded
    return EDCCurve(
        discard=discarded / n_genuine,
        fnmr=errors / (n_genuine - discarded),
        discarded=discarded,
        errors=errors,
        n_genuine=int(n_genuine),
        threshold=float(threshold),
        fmr=float(fmr),
    )


def floor_pauc_continuous(fnmr0: float, limit: float) -> float:
    """Integral of ``max(0, (FNMR0 - x) / (1 - x))`` from 0 to ``limit``, in closed form."""
    a = min(limit, fnmr0)
    if a <= 0:
        return 0.0
    if a >= 1.0:  # FNMR0 = 1 and limit = 1: the integrand is 1 everywhere
        return 1.0
    # (F - x) / (1 - x) = 1 - (1 - F) / (1 - x)  ->  a + (1 - F) ln(1 - a)
    return float(a + (1.0 - fnmr0) * math.log1p(-a))


def random_baseline(
    failed: np.ndarray,
    limits: Sequence[float],
    permutations: int = 200,
    seed: int = 0,
    pairs: Pairs | None = None,
) -> dict:
    """Normalised pAUC of random quality scores: the exact expectation and a seeded spread.

    ``failed`` marks the genuine pairs that fail at the threshold.  A random *pair* order has
    expectation exactly 1.0 (any uniformly random subset keeps FNMR0 in expectation).  A random
    score per *photo* - what a quality method without information is - moves all pairs of a
    photo together (pair quality = min), so its spread is wider and its mean only ~1.0; given
    ``pairs`` (the genuine ones, in the order of ``failed``) the seeded draws are photo-level,
    the same process as the ``random`` scorer, else pair-level shuffles.
    Returns ``{limit: {"expected": 1.0, "mean": ..., "std": ..., "level": ...}}``.
    """
    failed = np.asarray(failed, dtype=bool)
    n, e = failed.size, int(failed.sum())
    level = "photo" if pairs is not None else "pair"
    if n == 0 or e == 0:
        return {f"{limit:g}": {"expected": 1.0, "mean": float("nan"), "std": float("nan"), "level": level} for limit in limits}
    if pairs is not None and len(pairs) != n:
        raise ValueError("pairs must be the genuine pairs, one per entry of failed")
    rng = np.random.default_rng(seed)
    n_photos = int(max(pairs.first.max(), pairs.second.max())) + 1 if pairs is not None else 0
    values = np.empty((permutations, len(limits)))
    for p in range(permutations):
        if pairs is None:
            q = rng.permutation(n).astype(np.float64)
        else:
            q = pair_quality(rng.random(n_photos), pairs)
        discard, fnmr, _, _ = _genuine_edc(q, failed)
        for k, limit in enumerate(limits):
            values[p, k] = pauc(discard, fnmr, limit) / ((e / n) * limit)
    return {
        f"{limit:g}": {
            "expected": 1.0,
            "mean": float(values[:, k].mean()),
            "std": float(values[:, k].std(ddof=1)) if permutations > 1 else float("nan"),
            "level": level,
        }
        for k, limit in enumerate(limits)
    }


# ----------------------------------------------------------------------------- the report
def _finite(x: float) -> float | None:
    """JSON has no NaN: undefined values become null."""
    return float(x) if np.isfinite(x) else None


def evaluate(
    comparison: np.ndarray,
    pairs: Pairs,
    photo_quality: Mapping[str, np.ndarray],
    fmrs: Sequence[float] = DEFAULT_FMRS,
    limits: Sequence[float] = DEFAULT_LIMITS,
    max_points: int = 201,
    permutations: int = 200,
    seed: int = 0,
) -> dict:
    """EDC results of several named per-photo quality scores, as a JSON-able dict.

    ``comparison[i]`` is the comparison score of ``pairs`` row ``i`` (higher = more similar);
    ``photo_quality[name]`` has one finite value per photo that ``pairs`` indexes.  For each FMR:
    the threshold, FNMR0, the floor and the random baseline, and per method the raw and
    normalised pAUC at each limit and the (downsampled) curve.  Curves are also returned, as
    :class:`EDCCurve` objects, under the key ``"_curves"`` of each FMR entry (for plotting; drop
    it before writing JSON, see :func:`strip_curves`).
    """
    if "floor" in photo_quality:
        raise ValueError("'floor' names the perfect-order reference; call the quality score something else")
    comparison = np.asarray(comparison, dtype=np.float64)
    genuine = np.asarray(pairs.genuine, dtype=bool)
    n_gen, n_imp = int(genuine.sum()), int((~genuine).sum())
    pair_q = {name: pair_quality(q, pairs) for name, q in photo_quality.items()}
    genuine_pairs = Pairs(pairs.first[genuine], pairs.second[genuine], pairs.genuine[genuine])
    per_fmr = []
    for fmr in fmrs:
        threshold, realised = threshold_at_fmr(comparison[~genuine], fmr)
        failed = comparison[genuine] <= threshold
        floor = floor_curve(n_gen, int(failed.sum()), threshold, fmr)
        fnmr0 = floor.fnmr0
        entry: dict[str, Any] = {
            "fmr": fmr,
            "threshold": threshold,
            "realised_fmr": realised,
            # Fewer impostor pairs than 1/FMR: the threshold is the top impostor score.
            "fmr_resolved": bool(fmr * n_imp >= 1),
            "fnmr0": fnmr0,
            "floor": {
                f"{limit:g}": {
                    "pauc": floor.pauc(limit),
                    "normalised": _finite(floor.normalised_pauc(limit)),
                    "normalised_continuous": _finite(floor_pauc_continuous(fnmr0, limit) / (fnmr0 * limit)) if fnmr0 > 0 else None,
                }
                for limit in limits
            },
            "random": random_baseline(failed, limits, permutations, seed, pairs=genuine_pairs),
            "methods": {},
            "_curves": {"floor": floor},
        }
        for name, q in pair_q.items():
            curve = edc_curve(comparison, genuine, q, threshold=threshold)
            curve.fmr = fmr
            entry["_curves"][name] = curve
            entry["methods"][name] = {
                "pauc": {f"{limit:g}": curve.pauc(limit) for limit in limits},
                "normalised": {f"{limit:g}": _finite(curve.normalised_pauc(limit)) for limit in limits},
                "points": curve.points(max_points),
            }
        per_fmr.append(entry)
    return {
        "convention": {
            "threshold": "fixed at 0 % discard from all impostor scores; match = score > threshold",
            "pair_quality": "min(q_a, q_b)",
            "discard_fraction": "over genuine pairs",
            "ties": "discarded together",
            "pauc": "stepwise, normalised by FNMR0 x limit",
        },
        "pairs": {"genuine": n_gen, "impostor": n_imp},
        "limits": list(limits),
        "fmr": per_fmr,
    }


def strip_curves(report: dict) -> dict:
    """A copy of an :func:`evaluate` report without the ``_curves`` objects."""
    out = dict(report)
    out["fmr"] = [{k: v for k, v in entry.items() if k != "_curves"} for entry in report["fmr"]]
    return out


def _json_safe(value):
    """Strict JSON has no NaN/inf and no numpy scalars: undefined values become null."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def report_json(report: dict, indent: int = 1) -> str:
    """An :func:`evaluate` report (plus anything the caller added) as strict JSON text."""
    import json

    return json.dumps(_json_safe(strip_curves(report)), indent=indent, allow_nan=False) + "\n"
