"""Set-based (template) verification of videos, YouTube Faces style, and frame-level EDC.

Each video becomes one *template*: the mean of the L2-normalised embeddings of k of its frames,
re-normalised.  Two videos are compared by the cosine similarity of their templates.  Which k
frames go in is the question a quality score answers: the k best by quality, against k random
frames and the first k frames (``shared/methods/edc.md``, "Video frame selection").

Conventions fixed here:

* A frame whose quality is NaN has no face (hence no embedding) and is never chosen, by any
  rule: a template can only be made of faces.  ``k=None`` means every frame with a face, so all
  rules agree there.
* A match is ``score > threshold`` (as in :func:`vidfiqa.eval.verification.tar_at_far`).
* Accuracy follows the 10-fold protocol of YTF/LFW: each fold is scored with the threshold that
  maximises accuracy on the *other* folds; a fold without pairs (or without other folds to
  learn from) is skipped and reported, never silently counted.
* A video's random frames come from a generator seeded by ``(seed, video key)``, so they do not
  depend on which other videos or pairs happen to be present.

``videos`` everywhere maps a key ``"Person/video"`` to ``(quality (F,), embeddings (F, D))`` with
frames in temporal order (rows of frames without a face may hold anything, NaN typically), or
to ``(quality, embeddings, diversity_embeddings)``: the ``selected`` rule keeps its frames apart
with the third (the student's own embeddings, as `vidfiqa run` does), else with the second.

Rules: ``quality`` / ``random`` / ``first`` take k frames with equal weights; ``weighted`` takes
every frame, weighted by a softmax over quality (``temperature``; k does not apply);
``selected`` takes the k frames `vidfiqa run`'s diverse selection picks (select/template_rules.py), by
the selection rule of the settings given (``selection``: `vidfiqa eval ytf --config`; the defaults
otherwise), with its ``top_k`` replaced by k; ``product`` is the template `vidfiqa run` and
`watch` ship (``template_rules.product_template``: the pipeline's own builder, with its own
settings; k and ``temperature`` do not apply).
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..boxes import l2_normalize
from ..select.rule import DEFAULT_FPS, SelectionRule
from ..select.template_rules import TEMPLATE_TEMPERATURE
from . import edc
from .verification import Pairs, comparison_scores
from .verification import tar_at_far as _tar_at_far

SELECTIONS = ("quality", "random", "first", "weighted", "selected", "product")
TOP_K_RULES = ("quality", "random", "first")  # k frames, equal weights
DEFAULT_KS = (1, 3, 5, None)
#: The ``weighted`` rule's softmax temperature for the bundled student's quality: the product's
#: (select/template_rules.py), chosen on the choice half of the YouTube Faces dev people.
DEFAULT_TEMPERATURE = TEMPLATE_TEMPERATURE
# YouTube Faces frames carry no timestamps: their numbers become seconds as the pipeline's do for
# any source without timing, for the ``selected`` rule's time terms.
VIDEO_FPS = DEFAULT_FPS
FAR = 1e-2
N_FOLDS = 10

Videos = Mapping[str, tuple]  # (quality, embeddings) or (quality, embeddings, diversity embeddings)


# ----------------------------------------------------------------------------- templates
def select_frames(quality: np.ndarray, k: int | None, rule: str, rng: np.random.Generator) -> np.ndarray:
    """Indices of the frames that make a video's template, in temporal order.

    ``quality``: the k highest-quality frames (ties: the earlier frame); ``random``: k frames
    drawn from ``rng``; ``first``: the first k frames.  Only frames with a finite quality (a face)
    are candidates; with fewer than k of them all are taken, with none the result is empty.
    """
    if rule not in TOP_K_RULES:
        raise ValueError(f"unknown frame selection {rule!r}: choose from {', '.join(TOP_K_RULES)}")
    if k is not None and k < 1:
        raise ValueError(f"k must be at least 1 (or None for all frames), got {k}")
    quality = np.asarray(quality, dtype=np.float64)
    faces = np.flatnonzero(np.isfinite(quality))
    if k is None or k >= faces.size:
        return faces
    if rule == "quality":
        chosen = faces[np.argsort(-quality[faces], kind="stable")[:k]]
    elif rule == "random":
        chosen = rng.choice(faces, size=k, replace=False)
    else:
        chosen = faces[:k]
    return np.sort(chosen)


def mean_template(embeddings: np.ndarray) -> np.ndarray:
    """The plain mean template: mean of the L2-normalised rows, re-normalised: each frame weighs the same whatever its
    embedding norm, and the cosine of two templates is then a plain dot product."""
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or len(e) == 0:
        raise ValueError(f"a template needs a non-empty (N, D) array of embeddings, got shape {e.shape}")
    if not np.all(np.isfinite(e)):
        raise ValueError("a template's embeddings must be finite (frames without a face cannot be used)")
    return l2_normalize(l2_normalize(e).mean(axis=0))


def _video_rng(seed: int, key: str) -> np.random.Generator:
    """A generator for one video: stable across runs (crc32, unlike hash()) and across subsets."""
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


def video_template(videos: Videos, key: str, k: int | None, rule: str, seed: int = 0, temperature: float = DEFAULT_TEMPERATURE,
                   selection: SelectionRule | None = None) -> np.ndarray:
    """The template of video ``key`` by ``rule`` (see the module docstring)."""
    from ..select.template_rules import product_template, selected_frames, weighted_template

    if key not in videos:
        raise ValueError(f"video {key!r} is not among the videos given")
    quality, embeddings = videos[key][0], np.asarray(videos[key][1])
    if not np.isfinite(np.asarray(quality, np.float64)).any():
        raise ValueError(f"video {key!r} has no frame with a face, so no template")
    if rule == "weighted":
        return weighted_template(embeddings, quality, temperature)
    if rule == "product":
        return product_template(embeddings, quality)
    if rule == "selected":
        diversity = np.asarray(videos[key][2]) if len(videos[key]) > 2 else embeddings
        times = np.arange(len(quality)) / VIDEO_FPS
        selection = selection or SelectionRule.default()
        chosen = selected_frames(quality, times, diversity, selection if k is None else replace(selection, top_k=k))
    else:
        chosen = select_frames(quality, k, rule, _video_rng(seed, key))
    return mean_template(embeddings[chosen])


def pair_scores(videos: Videos, pairs: Sequence[tuple[str, str]], k: int | None, rule: str, seed: int = 0,
                temperature: float = DEFAULT_TEMPERATURE, selection: SelectionRule | None = None) -> np.ndarray:
    """Cosine similarity of the two videos' templates for each pair (one template per video,
    however many pairs it is in)."""
    if len(pairs) == 0:
        return np.zeros(0)
    keys = sorted({key for pair in pairs for key in pair})
    row = {key: i for i, key in enumerate(keys)}
    templates = np.stack([video_template(videos, key, k, rule, seed, temperature, selection) for key in keys])
    a = templates[[row[p[0]] for p in pairs]]
    b = templates[[row[p[1]] for p in pairs]]
    return np.einsum("ij,ij->i", a, b)


# ----------------------------------------------------------------------------- accuracy
def best_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """``(threshold, accuracy)`` maximising accuracy of ``score > threshold`` on these pairs.

    Candidates are the midpoints of the sorted distinct scores plus one below all of them
    (accept every pair) and the highest score (reject every pair); of equally good ones the
    lowest wins, so the choice is deterministic.
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    if scores.size == 0:
        raise ValueError("a threshold needs at least one pair")
    u = np.unique(scores)
    candidates = np.r_[np.nextafter(u[0], -np.inf), (u[:-1] + u[1:]) / 2, u[-1]]
    genuine, impostor = np.sort(scores[same]), np.sort(scores[~same])
    accepted_genuine = genuine.size - np.searchsorted(genuine, candidates, side="right")
    rejected_impostor = np.searchsorted(impostor, candidates, side="right")
    correct = accepted_genuine + rejected_impostor
    best = int(np.argmax(correct))
    return float(candidates[best]), float(correct[best] / scores.size)


def accuracy(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Fraction of pairs decided right by ``score > threshold``."""
    return float(np.mean((np.asarray(scores) > threshold) == np.asarray(same, dtype=bool)))


def fold_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray, n_folds: int = N_FOLDS) -> dict:
    """Accuracy under the k-fold protocol: each fold with the threshold learnt on the others.

    Returns ``{"mean", "std", "per_fold": [{"fold", "pairs", "threshold", "accuracy"}],
    "folds_used", "skipped": [{"fold", "reason"}]}``; mean and std (population, over the folds
    used) are NaN when no fold could be scored.
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    folds = np.asarray(folds, dtype=np.int64)
    if not scores.shape == same.shape == folds.shape:
        raise ValueError("scores, same and folds must have one value per pair")
    if folds.size and (folds.min() < 0 or folds.max() >= n_folds):
        raise ValueError(f"fold numbers must be in 0..{n_folds - 1}")
    per_fold, skipped = [], []
    for fold in range(n_folds):
        test = folds == fold
        if not test.any():
            skipped.append({"fold": fold, "reason": "no pairs"})
            continue
        if test.all():
            skipped.append({"fold": fold, "reason": "no pairs in the other folds to learn a threshold from"})
            continue
        threshold, _ = best_threshold(scores[~test], same[~test])
        per_fold.append({"fold": fold, "pairs": int(test.sum()), "threshold": threshold, "accuracy": accuracy(scores[test], same[test], threshold)})
    values = np.array([f["accuracy"] for f in per_fold])
    return {
        "mean": float(values.mean()) if values.size else float("nan"),
        "std": float(values.std()) if values.size else float("nan"),
        "per_fold": per_fold,
        "folds_used": len(per_fold),
        "skipped": skipped,
    }


def tar_at_far(scores: np.ndarray, same: np.ndarray, far: float = FAR) -> float:
    """TAR at the threshold giving FAR ``far`` (verification.py's rule); NaN without both kinds."""
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    if not same.any():
        return float("nan")
    return _tar_at_far(scores, same, far)


def _tar_entry(scores: np.ndarray, same: np.ndarray, far: float) -> dict:
    """TAR@FAR and whether there were enough different-person pairs to resolve that FAR (with
    fewer than 1/FAR the threshold is simply the highest different-person score)."""
    n_different = int(np.count_nonzero(~np.asarray(same, dtype=bool)))
    return {"tar_at_far": tar_at_far(scores, same, far), "far": far, "far_resolved": bool(far * n_different >= 1)}


# ----------------------------------------------------------------------------- sweeps
def rule_ks(rule: str, ks: Sequence[int | None]) -> list[int | None]:
    """The k values a rule is swept over: ``weighted`` has none (every frame counts), ``selected``
    the integer ones (it picks at most k frames), or None - its settings' own ``top_k`` - when
    there are none."""
    if rule in ("weighted", "product"):
        return [None]
    if rule == "selected":
        return [k for k in ks if k is not None] or [None]
    return list(ks)


def _sweep(videos: Videos, keys: list[tuple[str, str]], ks, rules, seed: int, judge, temperature: float = DEFAULT_TEMPERATURE,
           scores_by_label: dict[str, np.ndarray] | None = None, selection: SelectionRule | None = None) -> list[dict]:
    """One row per (rule, k): the pair scores of that selection, judged by ``judge``; each row's
    scores are also kept in ``scores_by_label`` (by :func:`row_label`) when it is given."""
    rows = []
    for rule in rules:
        for k in rule_ks(rule, ks):
            scores = pair_scores(videos, keys, k, rule, seed, temperature, selection)
            extra = {"temperature": temperature} if rule == "weighted" else {}
            rows.append({"rule": rule, "k": k, **extra, **judge(scores)})
            if scores_by_label is not None:
                scores_by_label[row_label(rows[-1])] = scores
    return rows


def bootstrap_tar(scores: Mapping[str, np.ndarray], first: np.ndarray, second: np.ndarray, same: np.ndarray, videos: int,
                  reference: str, far: float = FAR, draws: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Confidence intervals for TAR@FAR over *videos*: each draw resamples the videos with
    replacement and weighs every pair by how often its two videos were drawn (a video drawn
    twice counts twice), the same draws for every rule, so the difference of a rule from
    ``reference`` gets its own (paired) interval.  ``first``/``second``: the pairs' video numbers
    (0..videos-1).  Returns ``{rule: {"tar", "low", "high", "diff", "diff_low", "diff_high",
    "p_better"}}`` (p_better: the share of draws where the rule beats the reference)."""
    rng = np.random.default_rng(seed)
    same = np.asarray(same, bool)
    names = list(scores)
    values = {name: np.asarray(scores[name], np.float64) for name in names}
    draws_tar = {name: np.empty(draws) for name in names}
    for d in range(draws):
        counts = np.bincount(rng.integers(0, videos, videos), minlength=videos).astype(np.float64)
        weight = counts[first] * counts[second]
        for name in names:
            draws_tar[name][d] = weighted_tar_at_far(values[name], same, weight, far)
    alpha = (1 - level) / 2
    point = {name: tar_at_far(values[name], same, far) for name in names}
    out = {}
    for name in names:
        t, diff = draws_tar[name], draws_tar[name] - draws_tar[reference]
        out[name] = {"tar": point[name], "low": float(np.nanquantile(t, alpha)), "high": float(np.nanquantile(t, 1 - alpha)),
                     "diff": point[name] - point[reference],
                     "diff_low": float(np.nanquantile(diff, alpha)), "diff_high": float(np.nanquantile(diff, 1 - alpha)),
                     "p_better": float(np.mean(diff > 0))}
    return out


def weighted_tar_at_far(scores: np.ndarray, same: np.ndarray, weight: np.ndarray, far: float = FAR) -> float:
    """TAR@FAR with pair weights: the threshold is the lowest impostor score above which at most
    ``far`` of the impostor weight lies (with unit weights, :func:`tar_at_far`'s threshold)."""
    impostor, genuine = ~same & (weight > 0), same & (weight > 0)
    if not impostor.any() or not genuine.any():
        return float("nan")
    order = np.argsort(-scores[impostor], kind="stable")
    s, w = scores[impostor][order], weight[impostor][order]
    # The threshold is the first score (from the top) whose inclusion would accept more than
    # ``far`` of the impostor weight; scores above it are accepted.
    exceed = np.cumsum(w) > far * w.sum()
    threshold = s[np.argmax(exceed)] if exceed.any() else -np.inf
    g, gw = scores[genuine], weight[genuine]
    return float(gw[g > threshold].sum() / gw.sum())


def _pair_counts(same: np.ndarray) -> dict:
    return {"pairs": int(same.size), "same": int(same.sum()), "different": int((~same).sum())}


def evaluate(
    videos: Videos,
    pairs: Sequence[tuple[str, str, bool, int]],
    ks: Iterable[int | None] = DEFAULT_KS,
    rules: Iterable[str] = SELECTIONS,
    seed: int = 0,
    far: float = FAR,
    temperature: float = DEFAULT_TEMPERATURE,
    selection: SelectionRule | None = None,
) -> dict:
    """Protocol pairs ``(key1, key2, same, fold)``: for every (rule, k) the fold accuracy and
    TAR@FAR.  JSON-ready apart from NaN (``k`` None = all frames)."""
    keys = [(p[0], p[1]) for p in pairs]
    same = np.array([bool(p[2]) for p in pairs], dtype=bool)
    folds = np.array([int(p[3]) for p in pairs], dtype=np.int64)

    def judge(scores):
        return {"accuracy": fold_accuracy(scores, same, folds), **_tar_entry(scores, same, far)}

    return {"protocol": f"{N_FOLDS}-fold, threshold from the other folds", **_pair_counts(same),
            "results": _sweep(videos, keys, list(ks), list(rules), seed, judge, temperature, selection=selection)}


def person_of(key: str) -> str:
    """The person of a video key ``"Person/video"``."""
    return key.partition("/")[0]


def extra_pairs(keys: Iterable[str]) -> list[tuple[str, str, bool]]:
    """Every pair of distinct videos: same person (cross-video) or different people."""
    keys = sorted(set(keys))
    return [(a, b, person_of(a) == person_of(b)) for i, a in enumerate(keys) for b in keys[i + 1 :]]


def evaluate_extra(
    videos: Videos,
    pairs: Sequence[tuple[str, str, bool]],
    ks: Iterable[int | None] = DEFAULT_KS,
    rules: Iterable[str] = SELECTIONS,
    seed: int = 0,
    far: float = FAR,
    temperature: float = DEFAULT_TEMPERATURE,
    bootstrap: int = 0,
    selection: SelectionRule | None = None,
) -> dict:
    """Pairs without folds ``(key1, key2, same)``: accuracy at the best threshold *on these same
    pairs* (optimistic: the threshold has seen the answers) and TAR@FAR, per (rule, k)."""
    keys = [(p[0], p[1]) for p in pairs]
    same = np.array([bool(p[2]) for p in pairs], dtype=bool)

    def judge(scores):
        if scores.size == 0:
            return {"best_threshold": float("nan"), "accuracy": float("nan"), **_tar_entry(scores, same, far)}
        threshold, acc = best_threshold(scores, same)
        return {"best_threshold": threshold, "accuracy": acc, **_tar_entry(scores, same, far)}

    labelled: dict[str, np.ndarray] = {}
    rows = _sweep(videos, keys, list(ks), list(rules), seed, judge, temperature, scores_by_label=labelled, selection=selection)
    result = {"protocol": "all video pairs present, best threshold on the same pairs (optimistic)", **_pair_counts(same), "results": rows}
    if bootstrap and keys:
        # Intervals over videos for every row, and each row's difference from the all-frames mean.
        number = {key: i for i, key in enumerate(sorted({k for pair in keys for k in pair}))}
        first = np.array([number[a] for a, _ in keys])
        second = np.array([number[b] for _, b in keys])
        reference = row_label({"rule": "quality", "k": None})
        if reference not in labelled:
            labelled[reference] = pair_scores(videos, keys, None, "quality", seed, temperature)
        intervals = bootstrap_tar(labelled, first, second, same, len(number), reference, far, draws=bootstrap, seed=seed)
        for row in rows:
            row["bootstrap"] = intervals[row_label(row)]
        result["bootstrap"] = {"draws": bootstrap, "over": "videos (resampled with replacement)", "level": 0.95,
                               "reference": "all frames (mean)"}
    return result


def row_label(row: Mapping) -> str:
    """``quality k=3``, ``weighted``, ``all frames`` (every rule agrees when k is all)."""
    if row["rule"] in TOP_K_RULES and row["k"] is None:
        return "all frames"
    return row["rule"] if row["k"] is None else f"{row['rule']} k={row['k']}"


def protocol_coverage(pairs: Iterable[tuple[str, str]], present: set[str], with_face: set[str]) -> dict:
    """Why protocol pairs cannot be evaluated: a video absent from the scores, or a video present
    whose frames hold no face (no template).  A pair with both problems counts as missing."""
    pairs = list(pairs)
    referenced = {key for pair in pairs for key in pair}
    missing = sum(1 for a, b in pairs if a not in present or b not in present)
    no_face = sum(1 for a, b in pairs if a in present and b in present and not (a in with_face and b in with_face))
    return {
        "pairs_missing_video": missing,
        "pairs_video_without_face": no_face,
        "videos_referenced": len(referenced),
        "videos_missing": len(referenced - present),
        "videos_without_face": len((referenced & present) - with_face),
    }


# ----------------------------------------------------------------------------- frame-level EDC
def _cross_video_pairs(video_id: np.ndarray, person_id: np.ndarray, max_impostors: int, rng: np.random.Generator) -> Pairs:
    """Frame pairs from different videos: all genuine (same person) pairs, and all impostor pairs
    or a seeded uniform sample of ``max_impostors``, built without ever listing all n^2 pairs
    (full YTF has tens of thousands of frames)."""
    groups = [np.flatnonzero(person_id == p) for p in np.unique(person_id)]
    gen_first, gen_second = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for idx in groups:
        i, j = np.triu_indices(idx.size, k=1)
        other_video = video_id[idx[i]] != video_id[idx[j]]
        gen_first.append(idx[i][other_video])
        gen_second.append(idx[j][other_video])
    sizes = np.array([g.size for g in groups], dtype=np.int64)
    n_impostor = int((sizes.sum() ** 2 - (sizes**2).sum()) // 2)
    if n_impostor <= max_impostors:
        imp_first, imp_second = _all_impostors(groups)
    else:
        imp_first, imp_second = _sample_impostors(person_id, max_impostors, rng)
    first = np.concatenate(gen_first + [imp_first])
    second = np.concatenate(gen_second + [imp_second])
    n_gen = sum(g.size for g in gen_first)
    genuine = np.r_[np.ones(n_gen, bool), np.zeros(imp_first.size, bool)]
    return Pairs(first=first, second=second, genuine=genuine)


def _all_impostors(groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of frames of two different people (each person against the later ones)."""
    first, second = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for p, mine in enumerate(groups[:-1]):
        later = np.concatenate(groups[p + 1 :])
        first.append(np.repeat(mine, later.size))
        second.append(np.tile(later, mine.size))
    return np.concatenate(first), np.concatenate(second)


def _sample_impostors(person_id: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` distinct impostor pairs drawn uniformly: random frame pairs of different people,
    de-duplicated, until enough, then a uniform subset of them."""
    n = person_id.size
    codes = np.zeros(0, np.int64)
    while codes.size < count:
        i, j = rng.integers(0, n, size=(2, 2 * count))
        ok = person_id[i] != person_id[j]
        lo, hi = np.minimum(i, j)[ok], np.maximum(i, j)[ok]
        codes = np.unique(np.r_[codes, lo * n + hi])
    codes = np.sort(rng.choice(codes, size=count, replace=False))
    return codes // n, codes % n


def frame_level_edc(
    videos: Videos,
    person_of: Mapping[str, str],
    frames_per_video: int = 20,
    seed: int = 0,
    fmrs: Sequence[float] = (1e-2, 1e-3),
    limits: Sequence[float] = (0.3,),
    max_impostors: int = 200_000,
) -> dict:
    """FNMR-EDC (:mod:`vidfiqa.eval.edc`) of the frame quality over single frames.

    Up to ``frames_per_video`` frames with a face per video (a seeded uniform sample, not by
    quality, which would bias the curve) keep the pair count manageable.  Pairs are frames of
    *different* videos: frames of one video are near-duplicates and would make genuine pairs
    trivially easy.  Each FMR of ``fmrs`` is reported only when there are at least 1/FMR
    impostor pairs; if none qualifies, the largest is reported (marked unresolved).
    """
    if frames_per_video < 1:
        raise ValueError("frames_per_video must be at least 1")
    rng = np.random.default_rng(seed)
    keys = sorted(videos)
    people = sorted({person_of[key] for key in keys})
    person_index = {p: i for i, p in enumerate(people)}
    embeddings, quality, video_id, person_id = [], [], [], []
    for v, key in enumerate(keys):
        q, e = videos[key][0], videos[key][1]
        faces = np.flatnonzero(np.isfinite(np.asarray(q, dtype=np.float64)))
        if faces.size > frames_per_video:
            faces = np.sort(rng.choice(faces, size=frames_per_video, replace=False))
        embeddings.append(np.asarray(e, dtype=np.float64)[faces])
        quality.append(np.asarray(q, dtype=np.float64)[faces])
        video_id.append(np.full(faces.size, v))
        person_id.append(np.full(faces.size, person_index[person_of[key]]))
    counts = {"videos": len(keys), "people": len(people), "frames_per_video": frames_per_video}
    if not keys or sum(len(q) for q in quality) == 0:
        return {**counts, "frames": 0, "skipped": "no frame with a face"}
    frame_video, frame_person = np.concatenate(video_id), np.concatenate(person_id)
    pairs = _cross_video_pairs(frame_video, frame_person, max_impostors, rng)
    n_gen, n_imp = int(pairs.genuine.sum()), int((~pairs.genuine).sum())
    counts.update(frames=int(frame_video.size), genuine_pairs=n_gen, impostor_pairs=n_imp)
    if n_gen == 0 or n_imp == 0:
        why = "no person has two videos with faces" if n_gen == 0 else "all videos show one person"
        return {**counts, "skipped": f"{why}: an EDC needs genuine and impostor pairs"}
    usable = [f for f in fmrs if f * n_imp >= 1] or [max(fmrs)]
    comparison = comparison_scores(np.concatenate(embeddings), pairs)
    report = edc.evaluate(comparison, pairs, {"quality": np.concatenate(quality)}, fmrs=usable, limits=limits, seed=seed)
    return {**counts, "pairs": "frames of different videos; genuine = same person", **edc.strip_curves(report)}


# ----------------------------------------------------------------------------- reading scores
def read_scores(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``videos`` from a ``vidfiqa rescore`` parquet (columns video, frame_index, quality,
    embedding).  A frame counts as a face only with a finite quality *and* an embedding;
    otherwise its quality becomes NaN, so it is never selected."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from ..errors import InputError

    columns = ["video", "frame_index", "quality", "embedding"]
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(f"{path}: cannot read as parquet: {exc}", path=path) from None
    absent = [c for c in columns if c not in table.column_names]
    if absent:
        raise InputError(f"{path}: missing column(s) {', '.join(absent)}; expected the output of `vidfiqa rescore`", path=path)
    video = np.array(table.column("video").to_pylist(), dtype=object)
    frame = np.asarray(table.column("frame_index").to_numpy(zero_copy_only=False), dtype=np.int64)
    quality = np.array(table.column("quality").to_numpy(zero_copy_only=False), dtype=np.float64)  # a writable copy
    emb_column = table.column("embedding").combine_chunks()
    lengths = np.asarray(pc.list_value_length(emb_column).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    dims = np.unique(lengths[lengths > 0])
    if dims.size > 1:
        raise InputError(f"{path}: embeddings of different lengths ({', '.join(map(str, dims))}); one model per file", path=path)
    if dims.size == 0:
        raise InputError(f"{path}: no frame has an embedding; template verification needs them (rescore with an embedding model)", path=path)
    dim = int(dims[0])
    embeddings = np.full((len(video), dim), np.nan, dtype=np.float32)
    has = lengths > 0
    embeddings[has] = np.asarray(emb_column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dim)
    quality[~has] = np.nan
    return _group_by_video(video, frame, quality, embeddings, path)


def source_frames(path: str | Path) -> dict[str, np.ndarray] | None:
    """Each video's source frame numbers (the ``frame`` column of a ``vidfiqa rescore`` parquet)
    in the order :func:`read_scores` gives its rows, or None for a file without that column.
    ``frame_index`` is only a position among the frames a run chose (``--max-frames``), so two
    files line up frame by frame only when these agree."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if "frame" not in table.column_names:
        return None
    video = np.array(table.column("video").to_pylist(), dtype=object)
    position = np.asarray(table.column("frame_index").to_numpy(zero_copy_only=False), dtype=np.int64)
    frame = np.asarray(table.column("frame").to_numpy(zero_copy_only=False), dtype=np.int64)
    order = np.lexsort((position, video.astype(str)))
    video, frame = video[order], frame[order]
    # One slice per video (rows are sorted by video), as _group_by_video does: no scan per video.
    starts = np.r_[0, np.flatnonzero(video[1:] != video[:-1]) + 1, len(video)]
    return {str(video[lo]): frame[lo:hi] for lo, hi in zip(starts[:-1], starts[1:])}


def _group_by_video(video, frame, quality, embeddings, path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Rows -> ``{key: (quality, embeddings)}`` with each video's frames in temporal order."""
    from ..errors import InputError

    if any(v is None for v in video):
        raise InputError(f"{path}: rows without a video key", path=path)
    order = np.lexsort((frame, video.astype(str)))
    video, frame, quality, embeddings = video[order], frame[order], quality[order], embeddings[order]
    starts = np.r_[0, np.flatnonzero(video[1:] != video[:-1]) + 1, len(video)]
    out = {}
    for lo, hi in zip(starts[:-1], starts[1:]):
        if np.any(frame[lo + 1 : hi] == frame[lo : hi - 1]):
            raise InputError(f"{path}: video {video[lo]} lists a frame_index twice", path=path)
        out[str(video[lo])] = (quality[lo:hi], embeddings[lo:hi])
    return out


# ----------------------------------------------------------------------------- the report
def _k_label(k: int | None) -> str:
    return "all" if k is None else str(k)


def _fmt(value, spec: str = ".3f") -> str:
    return "n/a" if value is None or not np.isfinite(value) else format(value, spec)


def _coverage_lines(coverage: Mapping) -> list[str]:
    c = coverage
    return [
        f"**{c['evaluable']} of {c['total']} protocol pairs were evaluable** with the videos present "
        f"({c.get('same', 'n/a')} same, {c.get('different', 'n/a')} different).",
        "",
        f"Not evaluable: {c['pairs_missing_video']} pairs reference a video absent from the scores "
        f"({c['videos_missing']} of the {c['videos_referenced']} videos the protocol uses are missing); "
        f"{c['pairs_video_without_face']} pairs reference a video present but without any face "
        f"({c['videos_without_face']} such videos).",
        "",
        f"Evaluable pairs per fold: {c.get('per_fold', 'n/a')}.",
    ]


def _protocol_lines(result: Mapping | None) -> list[str]:
    if not result or not result["pairs"]:
        return ["No protocol pair could be evaluated."]
    lines = [f"{result['pairs']} pair(s) ({result['same']} same, {result['different']} different); {result['protocol']}.", ""]
    # Every (rule, k) row sees the same pairs and folds, so the first row says which were skipped.
    skipped = result["results"][0]["accuracy"]["skipped"]
    skipped_text = "; ".join(f"{s['fold']} ({s['reason']})" for s in skipped)
    if not result["results"][0]["accuracy"]["folds_used"]:
        return lines + [f"No fold could be scored, so there is no protocol accuracy. Folds: {skipped_text}."]
    lines += [f"| selection | k | accuracy (mean ± std) | folds used | TAR@FAR={FAR:g} |", "|---|---|---|---|---|"]
    for row in result["results"]:
        acc = row["accuracy"]
        tar = _fmt(row["tar_at_far"]) + ("" if row["far_resolved"] else " (FAR not resolved)")
        lines.append(f"| {row['rule']} | {_k_label(row['k'])} | {_fmt(acc['mean'])} ± {_fmt(acc['std'])} | {acc['folds_used']} | {tar} |")
    if skipped:
        lines += ["", f"Folds skipped: {skipped_text}."]
    return lines


def _extra_lines(result: Mapping) -> list[str]:
    lines = [
        f"{result['pairs']} pair(s) ({result['same']} same-person cross-video, {result['different']} different-person) "
        "among all videos present. **Optimistic**: the threshold is chosen on these same pairs, with no folds; "
        "not comparable with protocol accuracy.",
        "",
        f"| selection | k | accuracy at best threshold | TAR@FAR={FAR:g} |",
        "|---|---|---|---|",
    ]
    boot = "bootstrap" in result
    if boot:
        lines[-2] = lines[-2] + " 95 % interval (videos) | difference from all frames [95 %] |"
        lines[-1] = lines[-1] + "---|---|"
    for row in result["results"]:
        tar = _fmt(row["tar_at_far"]) + ("" if row["far_resolved"] else " (FAR not resolved)")
        line = f"| {row['rule']}{' T=' + format(row['temperature'], 'g') if 'temperature' in row else ''} | {_k_label(row['k'])} | {_fmt(row['accuracy'])} | {tar} |"
        if boot:
            b = row["bootstrap"]
            line += f" [{_fmt(b['low'])}, {_fmt(b['high'])}] | {b['diff']:+.3f} [{b['diff_low']:+.3f}, {b['diff_high']:+.3f}] |"
        lines.append(line)
    return lines


def _edc_lines(result: Mapping) -> list[str]:
    if "skipped" in result:
        return [f"Skipped ({result['frames']} frames from {result['videos']} videos): {result['skipped']}."]
    lines = [
        f"{result['frames']} frames (up to {result['frames_per_video']} per video, {result['videos']} videos, {result['people']} people); "
        f"{result['genuine_pairs']:,} genuine and {result['impostor_pairs']:,} impostor pairs of frames from different videos.",
        "",
        "| FMR | threshold | FNMR0 | limit | normalised pAUC | random (mean ± std) | floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in result["fmr"]:
        fmr = f"{entry['fmr']:g}" + ("" if entry["fmr_resolved"] else " (not resolved)")
        for limit in result["limits"]:
            lk = f"{limit:g}"
            rnd = entry["random"][lk]
            lines.append(
                f"| {fmr} | {_fmt(entry['threshold'], '.4f')} | {_fmt(entry['fnmr0'])} | {lk} "
                f"| {_fmt(entry['methods']['quality']['normalised'][lk])} | {_fmt(rnd['mean'], '.2f')} ± {_fmt(rnd['std'], '.2f')} "
                f"| {_fmt(entry['floor'][lk]['normalised'])} |"
            )
    return lines


def report_markdown(result: Mapping) -> str:
    """The report as markdown; sections appear for the parts ``result`` holds."""
    lines = ["# YouTube Faces: template verification by frame selection", ""]
    inputs = result.get("inputs", {})
    if inputs:
        lines += [", ".join(f"{k}: `{v}`" for k, v in inputs.items()), ""]
    if "coverage" in result:
        lines += ["## Protocol coverage", "", *_coverage_lines(result["coverage"]), ""]
    if "protocol" in result:
        lines += ["## Protocol pairs (10 folds)", "", *_protocol_lines(result["protocol"]), ""]
    if result.get("extra"):
        lines += ["## Extra pairs (all video pairs present; optimistic)", "", *_extra_lines(result["extra"]), ""]
    if result.get("frame_edc"):
        lines += ["## Frame-level EDC of the quality score", "", *_edc_lines(result["frame_edc"]), ""]
    return "\n".join(lines)


def _plot_series(result: Mapping) -> list[tuple[str, list[dict], bool]]:
    """(title, rows, with error bars) for each group that has numbers to plot."""
    panels = []
    protocol = result.get("protocol")
    if protocol and any(row["accuracy"]["folds_used"] for row in protocol["results"]):
        rows = [{**row, "value": row["accuracy"]["mean"], "err": row["accuracy"]["std"]} for row in protocol["results"]]
        panels.append((f"protocol pairs ({protocol['pairs']}), 10-fold accuracy", rows, True))
    extra = result.get("extra")
    if extra and extra["pairs"]:
        rows = [{**row, "value": row["accuracy"], "err": 0.0} for row in extra["results"]]
        panels.append((f"extra pairs ({extra['pairs']}), best-threshold accuracy (optimistic)", rows, False))
    return panels


def plot_png(result: Mapping, dpi: int = 120) -> bytes:
    """Accuracy against k, one line per selection rule, one chart per group of pairs (matplotlib's
    object API on the Agg canvas, as in :mod:`vidfiqa.eval.edc_plot`: no global pyplot state)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = _plot_series(result)
    fig = Figure(figsize=(6 * max(1, len(panels)), 4.5), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
    if not panels:
        axes[0].text(0.5, 0.5, "no pairs could be evaluated", ha="center", va="center")
        axes[0].set_axis_off()
    styles = [("o", "-"), ("s", "--"), ("^", ":")]
    for ax, (title, rows, bars) in zip(axes, panels):
        labels = list(dict.fromkeys(_k_label(row["k"]) for row in rows))
        rules = list(dict.fromkeys(row["rule"] for row in rows))
        for n, rule in enumerate(rules):
            mine = {_k_label(r["k"]): r for r in rows if r["rule"] == rule}
            # A small sideways shift and distinct styles keep rules that agree (all at k=all) visible.
            x = [labels.index(lab) + 0.06 * (n - (len(rules) - 1) / 2) for lab in mine]
            y = [mine[lab]["value"] for lab in mine]
            err = [mine[lab]["err"] for lab in mine] if bars else None
            marker, line = styles[n % len(styles)]
            ax.errorbar(x, y, yerr=err, marker=marker, linestyle=line, capsize=3, label=rule)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel("frames per template (k)")
        ax.set_ylabel("verification accuracy")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(title="frame selection", fontsize=8, title_fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_report(result: Mapping, json_path, markdown_path=None, plot_path=None) -> None:
    """Write the report as strict JSON (NaN -> null), and optionally markdown and a PNG; every
    file is written atomically."""
    import json

    from ..atomic import atomic_write_bytes, atomic_write_text

    atomic_write_text(json_path, json.dumps(edc._json_safe(result), indent=1, allow_nan=False) + "\n")
    if markdown_path:
        atomic_write_text(markdown_path, report_markdown(result))
    if plot_path:
        atomic_write_bytes(plot_path, plot_png(result))
