"""FaceQAN and FROQ on this machine: speed, and FROQ's calibration with and without standardising.

    python benchmarks/bench_faceqan_froq.py [--per-person 21] [--threads 1] [--cache /tmp/froq_labels.npz]

Crops: the first ``--per-person`` aligned glint24 crops of each of the 24 people, plus one
degraded copy of each (Gaussian blur sigma 3 for even rows, 4x down- and upscaling for odd ones),
so the pseudo-labels have range.  Pseudo-labels use FROQ's defaults (8x8 occlusion grid, 10
noise draws, alpha 1e-3: 76 forward passes per face); they are cached in ``--cache`` because they
dominate the run time.  Reported:

* FaceQAN seconds per face with its defaults (l=5, k=10, eps=1e-3, p=5);
* FROQ milliseconds per face when scoring (one hooked forward pass, batches of 32);
* FROQ calibration rho (raw mean vs standardised mean) on all crops, and a split by identity
  (calibrate on 12 people, Spearman of the score with the pseudo-labels on the other 12).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.stats import spearmanr

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared"))


def load_glint(per_person: int) -> tuple[np.ndarray, np.ndarray]:
    """(crops (N, 112, 112, 3) RGB, person index (N,)) for the first ``per_person`` of each."""
    people = sorted(p for p in (SHARED / "data" / "glint24_aligned").iterdir() if p.is_dir())
    crops, who = [], []
    for i, person in enumerate(people):
        for path in sorted(person.glob("*.png"))[:per_person]:
            crops.append(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
            who.append(i)
    return np.stack(crops), np.array(who)


def degrade(crops: np.ndarray) -> np.ndarray:
    out = np.stack([cv2.GaussianBlur(c, (0, 0), 3) for c in crops])
    for i in range(1, len(crops), 2):
        small = cv2.resize(crops[i], (28, 28), interpolation=cv2.INTER_AREA)
        out[i] = cv2.resize(small, (112, 112), interpolation=cv2.INTER_LINEAR)
    return out


def main() -> None:
    from vidfiqa.quality.faceqan import FaceQAN
    from vidfiqa.quality.froq import FROQ, calibrate_model
    from vidfiqa.quality.froq_labels import PseudoLabels, pseudo_labels
    from vidfiqa.quality.frmodel import FRModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-person", type=int, default=21)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/froq_labels.npz"))
    parser.add_argument("--faceqan-faces", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    weights = Path(os.environ.get("VIDFIQA_WEIGHTS", SHARED / "models"))
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")

    clean, who = load_glint(args.per_person)
    crops = np.concatenate([clean, degrade(clean)])
    who = np.concatenate([who, who])
    print(f"{len(clean)} glint24 crops + {len(clean)} degraded copies")

    # FaceQAN, defaults.
    faceqan = FaceQAN(weights=weights)
    faceqan.score(clean[:1])  # warm-up
    start = time.perf_counter()
    faceqan.score(clean[: args.faceqan_faces])
    print(f"FaceQAN (l=5, k=10): {(time.perf_counter() - start) / args.faceqan_faces:.2f} s/face")

    # Pseudo-labels (cached).
    fr = FRModel("mobilefacenet", weights)
    if args.cache.is_file() and np.load(args.cache)["n"] == len(crops):
        data = np.load(args.cache)
        labels = PseudoLabels(data["flip"], data["occlusion"], data["noise"])
        print(f"pseudo-labels from {args.cache}")
    else:
        start = time.perf_counter()
        labels = pseudo_labels(fr, crops)
        print(f"pseudo-labels: {(time.perf_counter() - start) / len(crops) * 1000:.0f} ms/face")
        np.savez(args.cache, n=len(crops), flip=labels.flip, occlusion=labels.occlusion, noise=labels.noise)
    half = len(clean)
    print(f"q clean {labels.q[:half].mean():.4f}, degraded {labels.q[half:].mean():.4f}; noise term range {labels.noise.min():.6f}..{labels.noise.max():.6f}")

    # Calibration on everything: both variants are in the report.
    cal = calibrate_model(fr, crops, labels=labels)
    print("\n".join(cal.report()))

    # Split by identity: calibrate on people 0-11, evaluate on 12-23.
    train, test = who < 12, who >= 12
    sub = lambda m: PseudoLabels(labels.flip[m], labels.occlusion[m], labels.noise[m])  # noqa: E731
    for standardize in (False, True):
        part = calibrate_model(fr, crops[train], standardize=standardize, labels=sub(train))
        scorer = FROQ(calibration=part, weights=weights)
        rho = spearmanr(scorer.score(crops[test]), labels.q[test]).statistic
        print(f"split by identity, standardize={standardize}: calibration rho {part.rho:+.4f} ({len(part.layers)} layers), held-out rho {rho:+.4f}")

    # FROQ scoring speed with the full calibration.
    scorer = FROQ(calibration=cal, weights=weights)
    scorer.score(clean[:32])
    start = time.perf_counter()
    scorer.score(clean[:256])
    print(f"FROQ scoring: {(time.perf_counter() - start) / 256 * 1000:.1f} ms/face ({len(cal.layers)} hooked layers)")


if __name__ == "__main__":
    main()
