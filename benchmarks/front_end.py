"""The detector front end, chosen by measurement: does enlarging small photos to ``input_size``
help the crops, or hurt them?

    python benchmarks/front_end.py [--per-identity 8] [--boot 100]   # -> results/front_end_vm.json, .md

Photos: the development identities (never seen in training; ``split == dev`` in
training/labels/candidates_v1.csv) of ``faces/`` and ``celeba_wild/`` - real photos, long side
150-400 px - at most ``--per-identity`` per person (seeded), each clean and in two seeded
degraded copies (blur, motion blur, noise, JPEG, downscaling, low light; the crop-set
degradations, with downscaling relative to the photo's size).

Front ends, each exactly what `vidfiqa score` / `faces` / `embed` / `run` run (detector ->
largest face -> 112x112 ArcFace alignment):

* ``enlarge to 640``: the long side resized to 640 whatever its size (the behaviour before);
* ``native (cap 640)``: the new default - shrunk to 640 if larger, never enlarged;
* ``enlarge to 400``: the middle ground the issue measured.

Per front end: the bundled student's quality, three baselines (embedding norm, sharpness,
detector confidence), and EDC (normalised pAUC@0.3 at FMR 1e-2, lower is better) with two
comparators on that front end's own crops: MobileFaceNet (the student's own backbone family) and
dlib's ResNet (another model).  Intervals: ``--boot`` draws of 80 % of the people (without
replacement; a person's photos stay together), the 2.5-97.5 percentiles of the student's and the
embedding norm's figures and of their paired difference against the native front end (all
genuine pairs, at most 200,000 impostor pairs, seeded).  Only photos every front end found a face in
count, so all see the same photos.

Landmark agreement: RetinaFace's 5 landmarks against YuNet's (the OpenCV model zoo detector in
../shared/models) on the clean photos, mean distance over the 5 points in units of RetinaFace's
eye distance, with both detectors under the same front end; and how far RetinaFace's landmarks
move between enlarging to 640 and native size.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from benchinfo import Run

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
MODELS = REPO.parent / "shared" / "models"
LABELS = REPO / "training" / "labels" / "candidates_v1.csv"
FRONT_ENDS = {"enlarge to 640": dict(input_size=640, upscale=True), "native (cap 640)": dict(input_size=640, upscale=False),
              "enlarge to 400": dict(input_size=400, upscale=True)}
REFERENCE = "native (cap 640)"
KINDS = ("blur", "motion_blur", "noise", "jpeg", "downscale", "low_light")
FMR, LIMIT = 1e-2, 0.3
BOOTSTRAPPED = ("ediffiqa (student)", "embedding_norm")  # intervals for these (each draw re-evaluates every pair)
MAX_IMPOSTORS = 200_000


def dev_photos(per_identity: int, seed: int = 0) -> list[tuple[Path, str]]:
    rng = np.random.default_rng(seed)
    by_person: dict[str, list[Path]] = {}
    with open(LABELS, newline="") as handle:
        for row in csv.DictReader(handle):
            source = row["key"].split("/")[0]
            if row["split"] == "dev" and source in ("faces", "celeba_wild") and row["key"].endswith("#0"):
                by_person.setdefault(row["identity"], []).append(DATA / row["key"].split("#")[0])
    photos = []
    for person in sorted(by_person):
        paths = sorted(by_person[person])
        if len(paths) < 2:
            continue
        for i in sorted(rng.choice(len(paths), size=min(per_identity, len(paths)), replace=False)):
            photos.append((paths[i], person))
    return photos


def degrade_photo(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A seeded degraded copy of a whole photo; downscaling keeps the aspect ratio (the crop-set
    size on a 112-px crop becomes the same factor of the photo)."""
    from vidfiqa.degrade import apply, sample

    chain = sample(rng, KINDS)
    out = image
    for spec in chain:
        if spec.kind == "downscale":
            h, w = out.shape[:2]
            f = spec.get("size") / 112
            small = cv2.resize(out, (max(8, round(w * f)), max(8, round(h * f))), interpolation=cv2.INTER_AREA)
            out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        else:
            out = apply(out, spec)
    return out, "+".join(map(str, chain))


def run_front_end(detector, images: list[np.ndarray]):
    """Largest face per image -> (found mask, aligned crops (N,112,112,3), landmarks (N,5,2), detector scores)."""
    from vidfiqa.align import Aligner

    aligner = Aligner()
    found = np.zeros(len(images), bool)
    crops = np.zeros((len(images), 112, 112, 3), np.uint8)
    points = np.full((len(images), 5, 2), np.nan, np.float32)
    scores = np.zeros(len(images), np.float32)
    for i, image in enumerate(images):
        faces = detector.detect([image]).largest_per_frame()
        if len(faces) == 0:
            continue
        found[i] = True
        crops[i] = aligner(faces, {0: image}).crops[0]
        points[i] = faces.landmarks[0]
        scores[i] = faces.scores[0]
    return found, crops, points, scores


def normalised_pauc(comparison: np.ndarray, pairs, quality: np.ndarray) -> float:
    from vidfiqa.eval.edc import evaluate

    result = evaluate(comparison, pairs, {"q": quality}, fmrs=[FMR], limits=[LIMIT], permutations=1)
    return float(result["fmr"][0]["methods"]["q"]["normalised"][f"{LIMIT:g}"])


def subsample_pairs(pairs, person: np.ndarray, keep_people: np.ndarray):
    from vidfiqa.eval.verification import Pairs

    keep = np.isin(person[pairs.first], keep_people) & np.isin(person[pairs.second], keep_people)
    return Pairs(pairs.first[keep], pairs.second[keep], pairs.genuine[keep]), keep


def people_draws(ids: np.ndarray, draws: int, seed: int = 7, share: float = 0.8) -> list[np.ndarray]:
    """``draws`` seeded subsets of ``share`` of the people (without replacement)."""
    rng = np.random.default_rng(seed)
    people = np.unique(ids)
    return [np.sort(rng.choice(people, size=int(round(share * len(people))), replace=False)) for _ in range(draws)]


def bootstrap_pauc(comparison: np.ndarray, pairs, ids: np.ndarray, quality: np.ndarray, subsets: list[np.ndarray]) -> list[float]:
    """The normalised pAUC of ``quality`` on the pairs among each subset of people."""
    out = []
    for keep_people in subsets:
        sub, keep = subsample_pairs(pairs, ids, keep_people)
        out.append(normalised_pauc(comparison[keep], sub, quality))
    return out


def pauc_intervals(comparison: np.ndarray, pairs, ids: np.ndarray, quality: dict, draws: int, verbose: bool = False,
                   references: tuple[str, ...] = ()) -> dict:
    """95 % intervals of the headline figure (normalised pAUC@0.3 at FMR 1e-2) over ``draws``
    seeded draws of 80 % of the people (every pair among them), for each method and for each
    method's paired difference to the embedding norm; a lead is stated only when its interval
    excludes 0 (issue 12)."""
    subsets = people_draws(ids, draws)
    boots = {name: np.array(bootstrap_pauc(comparison, pairs, ids, q, subsets)) for name, q in quality.items()}
    out: dict = {"figure": "normalised pAUC@0.3 at FMR 1e-2", "draws": f"{draws} draws of 80 % of the people", "methods": {}}
    base = boots.get("embedding_norm")
    for name, values in boots.items():
        entry: dict = {"interval": [round(float(v), 4) for v in np.percentile(values, [2.5, 97.5])]}
        if base is not None and name != "embedding_norm":
            diff = values - base
            low, high = np.percentile(diff, [2.5, 97.5])
            entry["minus_embedding_norm"] = {"median": round(float(np.median(diff)), 4), "interval": [round(float(low), 4), round(float(high), 4)],
                                             "supported": "lower" if high < 0 else "higher" if low > 0 else "no difference shown"}
        for ref in references:  # another method each is compared with, on the same draws (a new student against the old)
            if ref in boots and name != ref:
                diff = values - boots[ref]
                low, high = np.percentile(diff, [2.5, 97.5])
                entry[f"minus {ref}"] = {"median": round(float(np.median(diff)), 4), "interval": [round(float(low), 4), round(float(high), 4)],
                                         "supported": "lower" if high < 0 else "higher" if low > 0 else "no difference shown"}
        out["methods"][name] = entry
        if verbose:
            print(name, entry, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-identity", type=int, default=8)
    parser.add_argument("--boot", type=int, default=100)
    args = parser.parse_args()
    run = Run("front_end.py", sys.argv[1:])
    os.environ.setdefault("VIDFIQA_WEIGHTS", str(MODELS))  # MobileFaceNet, the comparator (not bundled)

    from vidfiqa.backbones.dlib_model import DlibEmbedder
    from vidfiqa.detect import make_detector
    from vidfiqa.embed import make_embedder
    from vidfiqa.eval.verification import all_pairs, comparison_scores
    from vidfiqa.imageio import load_image
    from vidfiqa.quality import make_scorer

    photos = dev_photos(args.per_identity)
    images, person, kind, sizes = [], [], [], []
    rng = np.random.default_rng(1)
    for path, who in photos:
        image = load_image(path).pixels
        sizes.append(max(image.shape[:2]))
        images.append(image)
        person.append(who)
        kind.append("clean")
        for _ in range(2):
            copy, chain = degrade_photo(image, rng)
            images.append(copy)
            person.append(who)
            kind.append(chain)
    person_arr = np.array(person)
    print(f"{len(photos)} photos of {len(set(person))} people (long side {min(sizes)}-{max(sizes)} px, median {int(np.median(sizes))}), "
          f"{len(images)} images with the degraded copies", flush=True)

    student, sharpness = make_scorer("ediffiqa"), make_scorer("sharpness")
    mfn, dlib = make_embedder("mobilefacenet", backend="onnx"), DlibEmbedder()
    out: dict[str, dict] = {}
    for name, options in FRONT_ENDS.items():
        found, crops, points, det_scores = run_front_end(make_detector("retinaface", **options), images)
        out[name] = {"found": found, "crops": crops, "points": points, "detector": det_scores}
        print(f"{name}: a face in {int(found.sum())} of {len(images)}", flush=True)
    common = np.logical_and.reduce([o["found"] for o in out.values()])
    idx = np.flatnonzero(common)
    ids = np.unique(person_arr[idx], return_inverse=True)[1]
    pairs = all_pairs(ids, max_impostors=MAX_IMPOSTORS)
    print(f"evaluated: {len(idx)} images found by every front end, {int(pairs.genuine.sum())} genuine / {int((~pairs.genuine).sum())} impostor pairs",
          flush=True)

    subsets = people_draws(ids, args.boot)
    report: dict = {"photos": len(photos), "people": len(set(person)), "images": len(images), "evaluated_images": len(idx),
                    "pairs": {"genuine": int(pairs.genuine.sum()), "impostor": int((~pairs.genuine).sum())},
                    "photo_long_side_px": {"min": int(min(sizes)), "median": int(np.median(sizes)), "max": int(max(sizes))},
                    "found": {n: int(o["found"].sum()) for n, o in out.items()}, "fmr": FMR, "limit": LIMIT, "boot": args.boot, "front_ends": {}}
    figures: dict[tuple[str, str, str], list[float]] = {}
    for name, o in out.items():
        crops = o["crops"][idx]
        quality = {
            "ediffiqa (student)": student.score(crops),
            "embedding_norm": np.linalg.norm(mfn.embed(crops), axis=1),
            "sharpness": sharpness.score(crops),
            "detector_confidence": o["detector"][idx].astype(np.float64),
        }
        comparisons = {"mobilefacenet": comparison_scores(mfn.embed(crops), pairs),
                       "dlib": comparison_scores(dlib.embed(crops), pairs, metric="euclidean")}
        entry: dict = {}
        for comparator, comparison in comparisons.items():
            entry[comparator] = {}
            for method, q in quality.items():
                value = normalised_pauc(comparison, pairs, q)
                entry[comparator][method] = {"normalised_pauc": round(value, 4)}
                if method not in BOOTSTRAPPED:
                    continue
                boot = bootstrap_pauc(comparison, pairs, ids, q, subsets)
                figures[(name, comparator, method)] = boot
                entry[comparator][method]["interval"] = [round(float(v), 4) for v in np.percentile(boot, [2.5, 97.5])]
            print(name, comparator, {m: v["normalised_pauc"] for m, v in entry[comparator].items()}, flush=True)
        report["front_ends"][name] = entry
    # Paired differences against the native front end (negative: that front end is better).
    report["difference_vs_native"] = {}
    for name in FRONT_ENDS:
        if name == REFERENCE:
            continue
        report["difference_vs_native"][name] = {}
        for (n, comparator, method), boot in figures.items():
            if n != name:
                continue
            diff = np.array(boot) - np.array(figures[(REFERENCE, comparator, method)])
            base = report["front_ends"][name][comparator][method]["normalised_pauc"] - report["front_ends"][REFERENCE][comparator][method]["normalised_pauc"]
            report["difference_vs_native"][name].setdefault(comparator, {})[method] = {
                "difference": round(base, 4), "interval": [round(float(v), 4) for v in np.percentile(diff, [2.5, 97.5])]}

    # Landmark agreement on the clean photos every front end and YuNet found.
    yunet_path = next(iter(sorted(MODELS.glob("*yunet*.onnx"))), None)
    clean = np.array([k == "clean" for k in kind])
    agreement: dict = {}
    if yunet_path is not None:
        clean_images = [images[i] for i in np.flatnonzero(clean)]
        for name in ("enlarge to 640", "native (cap 640)"):
            yf, _, ypoints, _ = run_front_end(make_detector("yunet", model_path=yunet_path, **FRONT_ENDS[name]), clean_images)
            rp = out[name]["points"][clean]
            both = yf & out[name]["found"][clean]
            eye = np.linalg.norm(rp[both, 0] - rp[both, 1], axis=1)
            d = np.linalg.norm(rp[both] - ypoints[both], axis=2).mean(axis=1) / eye
            # A detector that latched onto another face of the photo is no disagreement about landmarks.
            same = d < 1.0
            agreement[name] = {"photos": int(both.sum()), "same_face": int(same.sum()), "mean": round(float(d[same].mean()), 4),
                               "median": round(float(np.median(d[same])), 4), "p90": round(float(np.percentile(d[same], 90)), 4)}
        a, b = out["enlarge to 640"], out["native (cap 640)"]
        both = a["found"][clean] & b["found"][clean]
        shift = np.linalg.norm(a["points"][clean][both] - b["points"][clean][both], axis=2)
        eye = np.linalg.norm(b["points"][clean][both, 0] - b["points"][clean][both, 1], axis=1)
        agreement["retinaface_shift_640_vs_native"] = {"px_mean": round(float(shift.mean()), 2), "px_p90": round(float(np.percentile(shift.max(1), 90)), 2),
                                                       "eye_units_mean": round(float((shift.mean(1) / eye).mean()), 4)}
        print("landmarks:", agreement, flush=True)
    report["landmark_agreement_retinaface_vs_yunet"] = agreement
    data = run.write(HERE / "results" / "front_end_vm.json", report)
    (HERE / "results" / "front_end_vm.md").write_text(markdown(data))
    print(markdown(data))


def markdown(data: dict) -> str:
    methods = list(next(iter(data["front_ends"].values()))["mobilefacenet"])
    lines = [f"EDC, normalised pAUC@{data['limit']:g} at FMR {data['fmr']:g} (lower is better), {data['evaluated_images']} images of "
             f"{data['people']} people; [2.5, 97.5] % over {data['boot']} draws of 80 % of the people.", "",
             "| front end | comparator | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for name, entry in data["front_ends"].items():
        for comparator, row in entry.items():
            lines.append(f"| {name} | {comparator} | " + " | ".join(f"{row[m]['normalised_pauc']:.3f}" + (f" [{row[m]['interval'][0]:.3f}, {row[m]['interval'][1]:.3f}]" if "interval" in row[m] else "")
                                                                 for m in methods) + " |")
    boot = [m for m in methods if m in BOOTSTRAPPED]
    lines += ["", "Difference against native (negative: better than native), with its interval:", "",
              "| front end | comparator | " + " | ".join(boot) + " |", "|---|---|" + "---|" * len(boot)]
    for name, entry in data["difference_vs_native"].items():
        for comparator, row in entry.items():
            lines.append(f"| {name} | {comparator} | " + " | ".join(f"{row[m]['difference']:+.3f} [{row[m]['interval'][0]:+.3f}, {row[m]['interval'][1]:+.3f}]"
                                                                 for m in boot) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
