"""Train the occlusion component's head (vidfiqa/models/occlusion_head.json) on the crop set.

    python training/train_occlusion_head.py [--l2 1e-3]

A logistic regression on the bundled student's L2-normalised embedding.  Training people only
(``split_of``: the development people stay apart for benchmarks/components.py):

- positives: rmfd_masked photos marked ``masked`` (real masks) and clean crops of every other set
  with a seeded synthetic occluder (``vidfiqa.degrade`` ``occlusion``, severity 0.35..0.9);
- negatives: unmasked photos and the clean crops, plus the crop set's degraded copies whose chain
  has no occluder (blur, noise, darkness, compression...), so that a poor face is not read as a
  covered one.

The student's embeddings are cached in $VIDFIQA_CACHE/components/.  Prints the training and
development AUCs; writes the head with what it was trained on.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared"))
CACHE = Path(os.environ.get("VIDFIQA_CACHE", Path.home() / ".cache" / "vidfiqa"))
CROPSET = CACHE / "trainset" / "cropset_v1.npz"
SEED = 26


def masked_paths() -> dict[str, bool]:
    with open(SHARED / "data" / "rmfd_masked" / "masked.csv", newline="") as handle:
        return {f"rmfd_masked/{row['path']}": row["masked"] == "1" for row in csv.DictReader(handle)}


def examples() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:
    """(crops, label, is_dev, kind, person) for the head: see the module docstring."""
    from vidfiqa import degrade
    from vidfiqa.train.cropset import CropSet

    crops_set = CropSet.load(CROPSET)
    masked = masked_paths()
    rng = np.random.default_rng(SEED)
    crops, labels, dev, kinds, people = [], [], [], [], []
    split = crops_set.split
    for i, key in enumerate(crops_set.keys):
        source_path, _, chain = key.partition("|")
        path = source_path.partition("#")[0]
        crop = crops_set.crops[i]
        is_dev = split[i] == "dev"
        if path.startswith("rmfd_masked/"):
            if chain or path not in masked:
                continue
            crops.append(crop), labels.append(int(masked[path])), dev.append(is_dev), kinds.append("mask" if masked[path] else "unmasked")
            people.append(crops_set.identity[i])
            continue
        occluded = "occlusion" in chain
        crops.append(crop), labels.append(int(occluded)), dev.append(is_dev), kinds.append("occlusion" if occluded else ("degraded" if chain else "clean"))
        people.append(crops_set.identity[i])
        if not chain:
            spec = degrade._sample_one("occlusion", rng, float(rng.uniform(0.35, 0.9)))
            crops.append(degrade.apply(crop, spec)), labels.append(1), dev.append(is_dev), kinds.append("occlusion")
            people.append(crops_set.identity[i])
    return np.array(crops, np.uint8), np.array(labels), np.array(dev), kinds, people


def embeddings(crops: np.ndarray) -> np.ndarray:
    from vidfiqa.quality.ediffiqa import EDifFIQA

    digest = hashlib.sha1(crops.tobytes()).hexdigest()[:12]
    path = CACHE / "components" / f"occlusion_embeddings_{digest}.npy"
    if path.is_file():
        return np.load(path)
    _, e = EDifFIQA().score_and_embed(crops)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, e)
    return e


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression, classes weighted equally (L-BFGS)."""
    from scipy.optimize import minimize

    weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:-1], theta[-1]
        z = x @ w + b
        p = 1 / (1 + np.exp(-z))
        nll = weight * (np.logaddexp(0, z) - y * z)
        g = weight * (p - y)
        return float(nll.mean() + l2 * w @ w), np.append(x.T @ g / len(y) + 2 * l2 * w, g.mean())

    result = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    return result.x[:-1], float(result.x[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--l2", type=float, nargs="+", default=[1e-3, 1e-4, 1e-5],
                        help="candidates; the one with the best 5-fold AUC over the training people is used")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "benchmarks"))
    from components import auc

    from vidfiqa.boxes import l2_normalize
    from vidfiqa.components.occlusion import HEAD_FILE, OcclusionHead

    crops, labels, dev, kinds, people = examples()
    x = l2_normalize(embeddings(crops)).astype(np.float64)
    kinds_arr = np.array(kinds)
    y = labels.astype(np.float64)
    # Choose the regularisation by 5-fold cross-validation over the training people (folds by
    # person: a person's crops are never on both sides); the development people stay unseen.
    train_rows = np.flatnonzero(~dev)
    fold = np.array([int(hashlib.sha1(p.encode()).hexdigest()[:6], 16) % 5 for p in people])[train_rows]
    cv = {}
    for l2 in args.l2:
        scores = np.zeros(len(train_rows))
        for k in range(5):
            fit, held = train_rows[fold != k], train_rows[fold == k]
            wk, bk = fit_logistic(x[fit], y[fit], l2)
            scores[fold == k] = x[held] @ wk + bk
        cv[l2] = auc(scores[y[train_rows] == 1], scores[y[train_rows] == 0])
        print(f"l2 {l2:g}: 5-fold AUC over the training people {cv[l2]:.4f}")
    l2 = max(cv, key=lambda k: cv[k])
    w, b = fit_logistic(x[~dev], y[~dev], l2)
    head = OcclusionHead(w.astype(np.float32), b, ("ediffiqa_t_mfn", "ediffiqa_t_mfn_int8"))
    p = head(x)
    report = {}
    for name, rows in (("train", ~dev), ("dev", dev)):
        masks = rows & (kinds_arr == "mask")
        unmasked = rows & (kinds_arr == "unmasked")
        occl = rows & (kinds_arr == "occlusion")
        clean = rows & np.isin(kinds_arr, ["clean", "degraded"])
        report[name] = {"mask_vs_unmasked_auc": round(auc(p[masks], p[unmasked]), 4), "occluder_vs_clean_auc": round(auc(p[occl], p[clean]), 4),
                        "masks": int(masks.sum()), "unmasked": int(unmasked.sum()), "occluded": int(occl.sum()), "not_occluded": int(clean.sum())}
        print(name, report[name])
    head.save(HEAD_FILE, {"trained_by": "training/train_occlusion_head.py", "l2": l2, "cv_auc": {f"{k:g}": round(v, 4) for k, v in cv.items()}, "seed": SEED, "cropset": CROPSET.name,
                          "input": "L2-normalised 128-d embedding of the bundled student", "output": "sigmoid(w . e + b)",
                          "check": report})
    print(f"-> {HEAD_FILE}")


if __name__ == "__main__":
    main()
