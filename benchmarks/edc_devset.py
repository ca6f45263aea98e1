"""EDC of every quality method and baseline on the development set (held-out identities).

    python benchmarks/edc_devset.py [--methods ...] [--small] [--plot edc_dev.png] [--json edc_dev.json]

Development set: the ``dev`` identities of the training crop set (training/build_cropset.py;
no person in it was seen in training) - identity photos of faces/, celeba_wild/,
glint24_aligned/, rmfd_masked/, YouTube Faces frames and single-person clips - with their seeded
degraded copies.  At most ``--per-identity`` clean photos per identity (seeded choice) so that
big identities do not dominate the genuine pairs.  ``--small`` keeps 3 per identity, for the slow
methods (FaceQAN, DifFIQA).

Comparators: MobileFaceNet (same model as our student's backbone) and dlib's ResNet
(cross-model).  Scores of each method are cached in $VIDFIQA_CACHE/devset/ so a rerun only
computes what is new.  ``--json`` writes the report with the command, the machine, the load
average at start and end and the seconds each method spent scoring (crops not in the cache).
``--half choose|report`` keeps one half of the development people (a stable hash of the
name): new settings are chosen on ``choose`` and reported on ``report``.  ``--boot N`` (default 100) adds 95 % intervals of normalised pAUC@0.3 at FMR 1e-2 over N draws
of 80 % of the people, and of each method's paired difference to the embedding norm.
README's files: benchmarks/results/edc_dev_nomask.json (``--exclude rmfd_masked --methods
ediffiqa froq --label-columns flip_cos certainty_ratio``), edc_dev_small_nomask.json and
edc_devset_small_diffiqa.json (``--small --exclude rmfd_masked``, with FaceQAN and DifFIQA
``--diffiqa-repeats 2``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
SHARED = Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared"))
CACHE = Path(os.environ.get("VIDFIQA_CACHE", Path.home() / ".cache" / "vidfiqa"))
EYE_DISTANCE_IN_CROP = 73.5318 - 38.2946  # ArcFace template, pixels of the 112 crop
BASELINES = ["random", "face_size", "sharpness", "detector_confidence", "embedding_norm"]
TIMING: dict[str, dict] = {}  # method -> crops scored in this run and seconds (cache misses only)


def half_of(identity: str) -> str:
    """"choose" or "report": a stable split of the development people in two halves, so that a
    setting chosen on one half is reported on people it was not chosen on (issue 12)."""
    import hashlib

    return "choose" if hashlib.sha256(identity.encode()).digest()[0] % 2 == 0 else "report"


def select_dev(cropset, labels, per_identity: int, seed: int = 0) -> np.ndarray:
    """Indices of the dev crops: up to ``per_identity`` clean photos per identity + their copies."""
    rng = np.random.default_rng(seed)
    split = np.array([labels[k]["split"] for k in cropset.keys])
    identity = np.array(cropset.identity)
    parent = np.array(cropset.parent_key)
    clean = np.array([not d for d in cropset.degradation])
    chosen_parents = set()
    for name in np.unique(identity[(split == "dev") & (identity != "")]):
        members = np.flatnonzero((identity == name) & clean & (split == "dev"))
        if len(members) < 2:
            continue
        pick = rng.choice(members, size=min(per_identity, len(members)), replace=False)
        chosen_parents.update(cropset.keys[i] for i in pick)
    return np.flatnonzero(np.isin(parent, list(chosen_parents)))


def effective_face_size(cropset, idx: np.ndarray) -> np.ndarray:
    """Inter-eye distance in source pixels, reduced by a downscale degradation; aligned-set crops
    count as their 112-pixel crop resolution."""
    out = []
    for i in idx:
        eye = cropset.eye_distance[i]
        eye = EYE_DISTANCE_IN_CROP if not np.isfinite(eye) else eye
        for part in cropset.degradation[i].split("+"):
            if part.startswith("downscale"):
                size = float(part.split("size=")[1])
                eye = min(eye, EYE_DISTANCE_IN_CROP * size / 112)
        out.append(eye)
    return np.array(out, np.float32)


def detector_confidence(crops: np.ndarray) -> np.ndarray:
    """RetinaFace's confidence on the crop itself (40 % replicated border; 0 when not found)."""
    import cv2

    from vidfiqa.detect import RetinaFaceDetector

    det = RetinaFaceDetector(input_size=320, score_threshold=0.02)
    out = np.zeros(len(crops), np.float32)
    for i, c in enumerate(crops):
        padded = cv2.copyMakeBorder(c, 45, 45, 45, 45, cv2.BORDER_REPLICATE)
        faces = det.detect([padded])
        if len(faces):
            centre = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2
            best = np.argmin(np.linalg.norm(centre - 101, axis=1))  # the face in the middle
            out[i] = faces.scores[best]
    return out


def cached_scores(name: str, keys: list[str], compute, chunk: int = 32) -> np.ndarray:
    """Per-crop scores of one method, cached by crop key: only crops not yet scored are computed.

    ``compute(index)`` scores the crops at positions ``index`` of ``keys``.  The cache is written
    after every ``chunk`` crops, so an interrupted run of a slow method (DifFIQA: seconds a crop)
    resumes where it stopped.
    """
    path = CACHE / "devset" / f"{name}.npz"
    known: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as z:
            known = dict(zip(z["keys"].tolist(), z["scores"]))
    todo = np.array([i for i, k in enumerate(keys) if k not in known], dtype=np.int64)
    if len(todo):
        start = time.perf_counter()
        path.parent.mkdir(parents=True, exist_ok=True)
        for first in range(0, len(todo), chunk):
            part = todo[first : first + chunk]
            known.update(zip([keys[i] for i in part], np.asarray(compute(part), dtype=np.float64)))
            tmp = path.with_suffix(".part.npz")
            np.savez(tmp, keys=np.array(list(known)), scores=np.stack(list(known.values())))
            tmp.replace(path)
            if len(todo) > chunk:
                print(f"  {name}: {min(first + chunk, len(todo))}/{len(todo)} crops", flush=True)
        seconds = time.perf_counter() - start
        TIMING[name] = {"crops": int(len(todo)), "seconds": round(seconds, 1), "ms_per_crop": round(seconds / len(todo) * 1e3, 2)}
        print(f"  {name}: {len(todo)} crops in {seconds:.0f}s ({seconds / len(todo) * 1e3:.1f} ms/crop)", flush=True)
    return np.stack([known[k] for k in keys])


def method_scores(name: str, crops: np.ndarray, args) -> np.ndarray:
    from vidfiqa.quality import make_scorer

    if name == "froq":
        return make_scorer("froq", calibration=args.froq_calibration).score(crops)
    if name == "ediffiqa":
        return make_scorer("ediffiqa", **({"onnx": args.student} if args.student else {})).score(crops)
    if name == "diffiqa":
        options = {"repeats": args.diffiqa_repeats, **({"diffusion": args.diffiqa_model} if args.diffiqa_model else {})}
        return make_scorer("diffiqa", **options).score(crops)
    return make_scorer(name).score(crops)


def intervals(comparison: np.ndarray, pairs, ids: np.ndarray, quality: dict, draws: int, references: tuple[str, ...] = ()) -> dict:
    """front_end.pauc_intervals, printed as it goes."""
    from front_end import pauc_intervals

    return pauc_intervals(comparison, pairs, ids, quality, draws, verbose=True, references=references)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cropset", type=Path, default=CACHE / "trainset" / "cropset_v1.npz")
    parser.add_argument("--labels", type=Path, default=REPO / "training" / "labels" / "candidates_v1.csv")
    parser.add_argument("--methods", nargs="*", default=["ediffiqa", "froq"])
    parser.add_argument("--student", type=Path, default=None, help="student ONNX (default: the bundled one)")
    parser.add_argument("--also-student", type=Path, nargs="*", default=[],
                        help="more student ONNX files, rated beside the first with the same draws (each named by its folder), "
                             "with their paired difference to it")
    parser.add_argument("--froq-calibration", type=Path, default=REPO / "training" / "froq_mobilefacenet.json")
    parser.add_argument("--diffiqa-model", type=Path, default=None, help="diffusion checkpoint (default: the bundled one)")
    parser.add_argument("--diffiqa-repeats", type=int, default=10, help="DifFIQA noise repeats per face (the paper: 10)")
    parser.add_argument("--label-columns", nargs="*", default=[], help="also rate teacher signals from the labels CSV (e.g. flip_cos certainty_ratio)")
    parser.add_argument("--per-identity", type=int, default=10)
    parser.add_argument("--small", action="store_true", help="3 photos per identity (for FaceQAN / DifFIQA)")
    parser.add_argument("--comparators", nargs="+", default=["mobilefacenet", "dlib"])
    parser.add_argument("--exclude", nargs="*", default=[], help="leave out crops of these sources (e.g. rmfd_masked)")
    parser.add_argument("--half", choices=["choose", "report"], default=None,
                        help="only the development people of this half (a stable hash of the name): choose settings on one, report on the other")
    parser.add_argument("--boot", type=int, default=100, help="draws of 80 %% of the people for the intervals (0: none)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("VIDFIQA_WEIGHTS", str(SHARED / "models"))
    from benchinfo import Run

    run = Run("edc_devset.py", sys.argv[1:], timed=False)

    from vidfiqa.embed import make_embedder
    from vidfiqa.eval.edc import evaluate, report_json
    from vidfiqa.eval.edc_plot import Panel, write_edc_plot
    from vidfiqa.eval.verification import all_pairs, comparison_scores
    from vidfiqa.train.cropset import CropSet

    cropset = CropSet.load(args.cropset)
    with open(args.labels, newline="") as handle:
        labels = {r["key"]: r for r in csv.DictReader(handle)}
    per_identity = 3 if args.small else args.per_identity
    idx = select_dev(cropset, labels, per_identity)
    if args.exclude:
        idx = np.array([i for i in idx if cropset.keys[i].split("/")[0] not in args.exclude])
    if args.half:
        idx = np.array([i for i in idx if half_of(cropset.identity[i]) == args.half])
    keys = [cropset.keys[i] for i in idx]
    crops = np.asarray(cropset.crops)[idx]
    identity = np.array(cropset.identity)[idx]
    ids = np.unique(identity, return_inverse=True)[1]
    pairs = all_pairs(ids, max_impostors=None)
    print(f"dev set: {len(idx)} crops ({sum(1 for k in keys if '|' not in k)} clean), {len(np.unique(identity))} identities, "
          f"{int(pairs.genuine.sum())} genuine / {int((~pairs.genuine).sum())} impostor pairs", flush=True)

    quality = {}
    quality["random"] = np.random.default_rng(0).random(len(idx))
    quality["face_size"] = effective_face_size(cropset, idx)
    quality["sharpness"] = cached_scores("sharpness", keys, lambda i: method_scores("sharpness", crops[i], args))
    quality["detector_confidence"] = cached_scores("detector_confidence", keys, lambda i: detector_confidence(crops[i]))
    mfn = make_embedder("mobilefacenet", backend="onnx")
    quality["embedding_norm"] = np.linalg.norm(mfn.embed(crops), axis=1)
    for column in args.label_columns:
        # Teacher signals as if they were quality scores (certainty_ratio uses identity labels:
        # an oracle for comparison, not a usable scorer).
        quality[f"label:{column}"] = np.array([float(labels[k][column]) for k in keys])
    for name in args.methods:
        student_tag = ""
        if name == "ediffiqa":  # cache per model file, so a retrained student is rescored
            from vidfiqa.backbones.registry import sha256_file
            from vidfiqa.quality.ediffiqa import BUNDLED_ONNX

            student_tag = "_" + sha256_file(args.student or BUNDLED_ONNX)[:12]
        if name == "diffiqa":  # cache per diffusion model and repeat count
            from vidfiqa.backbones.registry import sha256_file
            from vidfiqa.quality.diffiqa import _find_checkpoint

            student_tag = f"_{sha256_file(_find_checkpoint(args.diffiqa_model, 'small'))[:12]}_r{args.diffiqa_repeats}"
        shown = f"{name} ({args.student.parent.name})" if (name == "ediffiqa" and args.student) else name
        quality[shown] = cached_scores(name + student_tag, keys, lambda i, n=name: method_scores(n, crops[i], args))
    students = [f"ediffiqa ({args.student.parent.name})" if args.student else "ediffiqa"] if "ediffiqa" in args.methods else []
    for other in args.also_student:
        from vidfiqa.backbones.registry import sha256_file
        from vidfiqa.quality import make_scorer

        quality[f"ediffiqa ({other.parent.name})"] = cached_scores(f"ediffiqa_{sha256_file(other)[:12]}", keys,
                                                                   lambda i, o=other: make_scorer("ediffiqa", onnx=o).score(crops[i]))

    report = {"dev_set": {"crops": len(idx), "identities": int(len(np.unique(identity))), "per_identity": per_identity, "excluded_sources": args.exclude,
                          "half": args.half}, "comparators": {}}
    panels = []
    for comparator in args.comparators:
        if comparator == "dlib":
            from vidfiqa.backbones.dlib_model import DlibEmbedder

            emb = cached_scores("dlib_embeddings", keys, lambda i: DlibEmbedder().embed(crops[i]))
            comparison = comparison_scores(emb, pairs, metric="euclidean")
        else:
            comparison = comparison_scores(mfn.embed(crops), pairs)
        result = evaluate(comparison, pairs, quality)
        report["comparators"][comparator] = json.loads(report_json(result))
        print(f"\n### comparator: {comparator}\n")
        print("| method | " + " | ".join(f"FMR {e['fmr']:g} pAUC@0.2 | FMR {e['fmr']:g} pAUC@0.3" for e in result["fmr"]) + " |")
        print("|---|" + "---|---|" * len(result["fmr"]))
        for name in quality:
            cells = []
            for e in result["fmr"]:
                m = e["methods"][name]["normalised"]
                cells += [f"{m['0.2']:.3f}", f"{m['0.3']:.3f}"]
            print(f"| {name} | " + " | ".join(cells) + " |")
        floors = []
        for e in result["fmr"]:
            floors += [f"{e['floor']['0.2']['normalised']:.3f}", f"{e['floor']['0.3']['normalised']:.3f}"]
        print("| *floor (perfect order)* | " + " | ".join(floors) + " |")
        print("FNMR at 0 % discard: " + ", ".join(f"{e['fnmr0']:.3f} at FMR {e['fmr']:g}" for e in result["fmr"]))
        first = result["fmr"][0]
        panels.append(Panel(title=f"{comparator}, FMR {first['fmr']:g}", curves=first["_curves"]))
        if args.boot:
            report["comparators"][comparator]["intervals"] = intervals(comparison, pairs, ids, quality, args.boot, references=tuple(students))
    if args.json:
        run.write(args.json, {**report, "scoring_time": TIMING})
    if args.plot:
        write_edc_plot(args.plot, panels)


if __name__ == "__main__":
    main()
