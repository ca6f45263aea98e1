"""Face verification (ROC AUC, TAR@FAR) on the identity sets of ../shared/data.

    python benchmarks/verification.py [--model mobilefacenet] [--sets faces glint24_aligned ...]

Pairs: every genuine pair of each set's identities.csv and up to 200,000 seeded impostor pairs.
Photos whose face is not found are left out (and counted).  Results:
benchmarks/results/verification_<model>_<host>.json (machine, load average at start and end, one
entry per set) and the markdown table README shows, printed.  A run with ``--sets`` replaces only
those sets' entries of an existing results file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
SHARED = Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared"))

# How each set is read: already-aligned crops skip detection; tight crops get a border first.
SETS = {
    "faces": dict(aligned=False, pad=0.0),
    "glint24_aligned": dict(aligned=True, pad=0.0),
    "celeba_wild": dict(aligned=False, pad=0.0),
    "rmfd_masked": dict(aligned=False, pad=0.4),
}


def evaluate(name: str, model: str, backend: str, limit: int | None = None):
    from vidfiqa.datasets import read_identity_csv
    from vidfiqa.detect import RetinaFaceDetector
    from vidfiqa.embed import make_embedder
    from vidfiqa.eval.verification import verify
    from vidfiqa.photos import embed_photos

    how = SETS[name]
    ids = read_identity_csv(SHARED / "data" / name / "identities.csv")
    if limit:
        ids = ids.subset(np.arange(min(limit, len(ids))))
    embedder = make_embedder(model, backend=backend)
    detector = None if how["aligned"] else RetinaFaceDetector(input_size=640)
    emb, found = embed_photos(ids.paths, embedder, detector, aligned_input=how["aligned"], pad=how["pad"])
    metric = "euclidean" if model == "dlib" else "cosine"
    return verify(name, emb[found], ids.labels[found], photos=len(ids), metric=metric)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilefacenet")
    parser.add_argument("--backend", default="onnx", choices=["torch", "onnx"])
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/verification_<model>_<host>.json")
    args = parser.parse_args()
    out = args.out or HERE / "results" / f"verification_{args.model}_{platform.node() or 'host'}.json"
    from benchinfo import Run, load_note

    run = Run("verification.py", sys.argv[1:], timed=False)
    os.environ.setdefault("VIDFIQA_WEIGHTS", str(SHARED / "models"))
    print(f"model: {args.model} ({args.backend}); detector RetinaFace-MNet0.25 at 640, largest face per photo")
    print("\n| set | photos | embedded | identities | genuine pairs | impostor pairs | ROC AUC | TAR@FAR=1e-2 | TAR@FAR=1e-3 |")
    print("|---|---|---|---|---|---|---|---|---|")
    previous = json.loads(out.read_text()).get("sets", {}) if out.is_file() else {}
    sets = {}
    for name in args.sets:
        start = time.perf_counter()
        report = evaluate(name, args.model, args.backend)
        seconds = time.perf_counter() - start
        sets[name] = {**dataclasses.asdict(report), "how": SETS[name], "seconds": round(seconds, 1),
                      "row": report.row()}
        print(report.row(), f"<!-- {seconds:.0f}s -->", flush=True)
    data = run.write(out, {
        "model": args.model, "backend": args.backend,
        "metric": "euclidean (L2)" if args.model == "dlib" else "cosine",
        "detector": "RetinaFace-MNet0.25, input 640, largest face per photo (none for aligned sets)",
        "pairs": "every genuine pair; up to 200,000 impostor pairs, seed 0",
        "sets": {**previous, **sets},
    })
    print(load_note(data))


if __name__ == "__main__":
    main()
