"""Teacher signals for every crop of the crop set -> training/labels/candidates_v1.csv.

    python training/label_teachers.py [--cropset ~/.cache/vidfiqa/trainset/cropset_v1.npz]

Also caches the frozen MobileFaceNet embeddings of each crop and of its horizontal flip (the
student's representation-consistency targets) next to the crop set.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vidfiqa.train.cropset import CropSet, split_of  # noqa: E402
from vidfiqa.train.teacher import certainty_ratio, embedding_norm  # noqa: E402

CACHE = Path(os.environ.get("VIDFIQA_CACHE", Path.home() / ".cache" / "vidfiqa"))
SHARED = Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared"))


def frozen_embeddings(crops: np.ndarray, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    if cache.is_file():
        with np.load(cache) as z:
            if len(z["plain"]) == len(crops):
                return z["plain"], z["flip"]
    from vidfiqa.embed import make_embedder

    embedder = make_embedder("mobilefacenet", weights=SHARED / "models" / "mobilefacenet_foamliu.pt", backend="onnx", batch_size=128)
    plain = embedder.embed(crops)
    flip = embedder.embed(np.ascontiguousarray(crops[:, :, ::-1]))
    np.savez(cache, plain=plain, flip=flip)
    return plain, flip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cropset", type=Path, default=CACHE / "trainset" / "cropset_v1.npz")
    parser.add_argument("-o", "--output", type=Path, default=REPO / "training" / "labels" / "candidates_v1.csv")
    parser.add_argument("--froq", action="store_true", help="also FROQ perturbation pseudo-labels (slow: ~75 forward passes per crop)")
    args = parser.parse_args()
    start = time.time()
    cs = CropSet.load(args.cropset)
    crops = np.asarray(cs.crops)
    plain, flip = frozen_embeddings(crops, args.cropset.with_name(args.cropset.stem + "_mfn_embeddings.npz"))
    print(f"[{time.time() - start:.0f}s] embeddings {plain.shape}", flush=True)
    columns = {
        "embedding_norm": embedding_norm(plain),
        "flip_cos": np.sum(plain * flip, 1) / (np.linalg.norm(plain, axis=1) * np.linalg.norm(flip, axis=1)),
        "certainty_ratio": certainty_ratio(plain, cs.identity),
    }
    if args.froq:
        from vidfiqa.quality.froq import pseudo_labels  # noqa: WPS433

        columns["froq_pseudo_label"] = pseudo_labels(crops)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".part")
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "identity", "split", "eye_distance", "det_score", *columns])
        for i, key in enumerate(cs.keys):
            writer.writerow([key, cs.identity[i], split_of(cs.identity[i]), f"{cs.eye_distance[i]:.2f}", f"{cs.det_score[i]:.4f}", *(f"{columns[c][i]:.6f}" for c in columns)])
    tmp.replace(args.output)
    print(f"[{time.time() - start:.0f}s] wrote {args.output} ({len(cs)} rows)")


if __name__ == "__main__":
    main()
