"""Detector variability: how far the student's quality moves when another detector finds and
aligns the same face, or when the landmarks are a little off (issue 26, part 4).

    python benchmarks/detector_variability.py [--per-identity 10] [--boot 100] [--sets ...]
    # -> benchmarks/results/detector_variability.json and .md

Photos: the shared identity sets faces/, celeba_wild/, rmfd_masked/ and glint24_aligned/, at most
``--per-identity`` photos per person (seeded).  Each photo goes through `vidfiqa.photos.PhotoPipeline`
(largest face) twice: with RetinaFace (the shipped detector) and with YuNet (OpenCV model zoo,
../shared/models), both at the default settings (input 640, never enlarged).  Padding as the crop
set and benchmarks/verification.py read these sets (`vidfiqa.train.cropset.IDENTITY_SETS`): none
for faces/ and celeba_wild/, 40 % replicated border for the tight 160-px crops of rmfd_masked/.
glint24_aligned/ is already aligned (the crop set never detects on it); its 112-px crops get the same
40 % border as rmfd_masked/ (what edc_devset.py's detector confidence gives a crop), both detectors
find their faces there, and re-aligning them shows the variability at the smallest face size (eye
distance ~35 px).  A photo counts when both detectors found a face and the two boxes overlap (IoU >
0.5); each face is then aligned with its own detector's 5 landmarks onto the ArcFace template.

Scores: the bundled student (fp32 ONNX) and its int8 version (`EDifFIQA(int8=True)`, the video
pipeline's default), one onnxruntime thread.

1. RetinaFace vs YuNet: Spearman's rank correlation of the two scores per set and pooled (95 %
   interval over photo resamples), the mean score difference in units of the score's spread, how
   many of RetinaFace's lowest 20 % are also YuNet's lowest 20 %, and the landmark disagreement
   behind it: YuNet's landmarks in RetinaFace's aligned crop, split into the mean offset per point
   (systematic: the two detectors place the points differently) and the scatter around it.
2. EDC on the development identities (never seen in training, `vidfiqa.train.cropset.split_of`),
   pooled over the sets: the definition of edc_devset.py (`vidfiqa.eval.edc.evaluate`: threshold at
   0 % discard, pair quality min, normalised pAUC; headline pAUC@0.3 at FMR 1e-2) with MobileFaceNet
   embeddings as comparator, and its intervals (`front_end.pauc_intervals`, the function
   edc_devset.py's ``--boot`` uses: ``--boot`` draws of 80 % of the people, paired difference to
   RetinaFace's score).  Two comparators: the RetinaFace crops' embeddings for every score (only the
   quality ranking differs), and each detector's own crops (the whole front end swapped).
3. Landmark jitter: RetinaFace's 5 landmarks plus i.i.d. Gaussian noise of sigma 1, 2, 3 % of its
   eye distance (seeded per photo), re-aligned and scored; Spearman with the unjittered score.  Also
   5 and 10 %, for scale: YuNet's landmarks lie much further from RetinaFace's than 3 %.
4. Mitigation: the mean score over the original alignment and 2 or 4 alignments jittered at 2 %
   (each detector its own), the RetinaFace-YuNet Spearman and EDC of those means, and the cost: ms
   per face to align and score 1, 3 and 5 crops, best of 5 interleaved passes over ``--cost-faces``
   faces, one thread (a timed benchmark: benchinfo's load guard applies, ``--allow-load`` overrides it).

Detections and scores are cached under $VIDFIQA_CACHE/detector_variability/ (default
~/.cache/vidfiqa), so a rerun only computes what is new: the first run scores ~3,300 faces x 14
alignments x 2 models (~15 min on the shared 2-core machine), a rerun takes ~4 min (mostly the EDC
intervals).
"""

from __future__ import annotations

import os

# One thread for every library that has a pool (the development machine has 2 cores, shared).
for _var in ("VIDFIQA_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchinfo import Run  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
from edc_devset import CACHE, EYE_DISTANCE_IN_CROP, SHARED  # noqa: E402
from front_end import bootstrap_pauc, pauc_intervals, people_draws  # noqa: E402

cv2.setNumThreads(1)
OUT = HERE / "results" / "detector_variability.json"
CACHE_DIR = CACHE / "detector_variability"
YUNET = SHARED / "models" / "face_detection_yunet_2026may.onnx"
SETS = ("faces", "celeba_wild", "rmfd_masked", "glint24_aligned")
ALIGNED_SET_PAD = 0.4  # glint24_aligned: the border rmfd_masked's tight crops get
DETECTORS = ("retinaface", "yunet")
MODELS = {"fp32": {}, "int8": {"int8": True}}
SIGMAS = (0.01, 0.02, 0.03, 0.05, 0.1)  # landmark jitter, fraction of the eye distance (5 and 10 %: for scale)
AVERAGE_SIGMA = 0.02
AVERAGE_EXTRA = (2, 4)  # jittered alignments averaged with the original one
MIN_IOU = 0.5
LOW_SHARE = 0.2  # "lowest 20 %" overlap
FMR, LIMIT = 1e-2, 0.3  # the headline EDC figure (edc_devset.py, front_end.py)
CHUNK = 32


def jitter_name(detector: str, sigma: float, rep: int) -> str:
    return f"{detector}~{sigma:g}#{rep}"


def variants() -> list[str]:
    """Every alignment scored per photo: each detector's own, RetinaFace jittered at each sigma
    (repetition 0), and the extra jittered alignments the averages need."""
    out = list(DETECTORS)
    out += [jitter_name("retinaface", s, 0) for s in SIGMAS]
    for det in DETECTORS:
        out += [jitter_name(det, AVERAGE_SIGMA, r) for r in range(max(AVERAGE_EXTRA))]
    return list(dict.fromkeys(out))


def averaged_members(detector: str, extra: int) -> list[str]:
    return [detector] + [jitter_name(detector, AVERAGE_SIGMA, r) for r in range(extra)]


def jittered(landmarks: np.ndarray, key: str, detector: str, sigma: float, rep: int, seed: int) -> np.ndarray:
    """``landmarks`` (5, 2) plus i.i.d. Gaussian noise of ``sigma`` x the eye distance, seeded by
    the photo, detector, sigma and repetition (so it does not depend on which photos run)."""
    eye = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    rng = np.random.default_rng([seed, zlib.crc32(key.encode()), DETECTORS.index(detector), int(round(sigma * 1e4)), rep])
    return landmarks + rng.normal(0.0, sigma * eye, size=(5, 2))


def landmarks_of(variant: str, key: str, base: dict[str, np.ndarray], seed: int) -> np.ndarray:
    if "~" not in variant:
        return base[variant]
    det, rest = variant.split("~")
    sigma, rep = rest.split("#")
    return jittered(base[det], key, det, float(sigma), int(rep), seed)


# ----------------------------------------------------------------------------- photos, detections
def pad_of(name: str) -> float:
    from vidfiqa.train.cropset import IDENTITY_SETS

    how = IDENTITY_SETS[name]
    return ALIGNED_SET_PAD if how["aligned"] else float(how["pad"])


def choose_photos(name: str, per_identity: int, seed: int = 0) -> tuple[list[Path], list[str]]:
    """At most ``per_identity`` photos per person of one set (seeded), in CSV order."""
    from vidfiqa.datasets import read_identity_csv

    ids = read_identity_csv(SHARED / "data" / name / "identities.csv")
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    identity = np.array(ids.identities)
    keep = []
    for person in sorted(set(ids.identities)):
        members = np.flatnonzero(identity == person)
        keep += list(rng.choice(members, size=min(per_identity, len(members)), replace=False))
    keep = sorted(keep)
    return [ids.paths[i] for i in keep], [ids.identities[i] for i in keep]


def detections(name: str, detector_name: str, paths: list[Path]) -> dict[str, np.ndarray]:
    """Largest face of each photo by one detector: found, box, landmarks, score (file pixels),
    cached per set, detector and settings; only photos not yet in the cache are detected."""
    from vidfiqa.backbones.registry import sha256_file
    from vidfiqa.detect import make_detector
    from vidfiqa.photos import PhotoPipeline

    pad = pad_of(name)
    tag = f"{name}_{detector_name}_pad{pad:g}" + (f"_{sha256_file(YUNET)[:12]}" if detector_name == "yunet" else "")
    path = CACHE_DIR / f"detect_{tag}.npz"
    known: dict[str, tuple] = {}
    if path.is_file():
        with np.load(path) as z:
            known = {k: (bool(f), b, lm, float(s)) for k, f, b, lm, s in zip(z["keys"].tolist(), z["found"], z["boxes"], z["landmarks"], z["scores"])}
    root = SHARED / "data" / name
    keys = [p.relative_to(root).as_posix() for p in paths]
    todo = [p for p, k in zip(paths, keys) if k not in known]
    if todo:
        detector = make_detector(detector_name, model_path=YUNET if detector_name == "yunet" else None)
        pipeline = PhotoPipeline(detector, largest_only=True, pad=pad, chunk_size=CHUNK)
        start = time.perf_counter()
        for result in pipeline.run(todo):
            k = result.path.relative_to(root).as_posix()
            if result.faces is not None and len(result.faces):
                f = result.faces
                known[k] = (True, f.boxes[0].astype(np.float32), f.landmarks[0].astype(np.float32), float(f.scores[0]))
            else:
                known[k] = (False, np.full(4, np.nan, np.float32), np.full((5, 2), np.nan, np.float32), 0.0)
        print(f"  {name}: {detector_name} on {len(todo)} photos in {time.perf_counter() - start:.0f}s", flush=True)
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part.npz")
        items = list(known.items())
        np.savez(tmp, keys=np.array([k for k, _ in items]), found=np.array([v[0] for _, v in items]), boxes=np.stack([v[1] for _, v in items]),
                 landmarks=np.stack([v[2] for _, v in items]), scores=np.array([v[3] for _, v in items], np.float32))
        tmp.replace(path)
    rows = [known[k] for k in keys]
    return {"found": np.array([r[0] for r in rows]), "boxes": np.stack([r[1] for r in rows]), "landmarks": np.stack([r[2] for r in rows]).astype(np.float64),
            "scores": np.array([r[3] for r in rows], np.float32)}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of row i of ``a`` with row i of ``b`` (NaN rows: 0)."""
    from vidfiqa.boxes import iou_matrix

    out = np.zeros(len(a))
    for i in range(len(a)):
        if np.isfinite(a[i]).all() and np.isfinite(b[i]).all():
            out[i] = iou_matrix(a[i : i + 1], b[i : i + 1])[0, 0]
    return out


# ----------------------------------------------------------------------------- scores
class ScoreCache:
    """Per model file: score of each ``<set>/<photo>|<variant>|s<seed>`` key, saved as it grows."""

    def __init__(self, model: str, options: dict):
        from vidfiqa.backbones.registry import sha256_file
        from vidfiqa.quality.ediffiqa import BUNDLED_INT8, BUNDLED_ONNX, EDifFIQA

        self.scorer = EDifFIQA(threads=1, **options)
        onnx = Path(options["onnx"]) if options.get("onnx") else BUNDLED_INT8 if options.get("int8") else BUNDLED_ONNX
        self.path = CACHE_DIR / f"scores_{model}_{sha256_file(onnx)[:12]}.npz"
        self.known: dict[str, float] = {}
        if self.path.is_file():
            with np.load(self.path) as z:
                self.known = dict(zip(z["keys"].tolist(), z["scores"].tolist()))
        self.dirty = 0
        self.seconds = 0.0
        self.crops = 0

    def add(self, keys: list[str], crops: np.ndarray) -> None:
        start = time.perf_counter()
        q, _ = self.scorer.score_and_embed(crops)
        self.seconds += time.perf_counter() - start
        self.crops += len(crops)
        self.known.update(zip(keys, q.astype(float).tolist()))
        self.dirty += len(keys)
        if self.dirty >= 2000:
            self.save()

    def save(self) -> None:
        if not self.dirty:
            return
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".part.npz")
        np.savez(tmp, keys=np.array(list(self.known)), scores=np.array(list(self.known.values()), np.float64))
        tmp.replace(self.path)
        self.dirty = 0


def score_key(name: str, photo: str, variant: str, seed: int) -> str:
    return f"{name}/{photo}|{variant}|s{seed}"


def load_pixels(path: Path) -> tuple[np.ndarray, float]:
    from vidfiqa.imageio import load_image

    img = load_image(path)
    return img.pixels, img.scale


# ----------------------------------------------------------------------------- figures
def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def resamples(n: int, draws: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(draws, n))


def spearman_interval(a: np.ndarray, b: np.ndarray, draws: np.ndarray) -> list[float]:
    values = [spearman(a[d], b[d]) for d in draws]
    return [round(float(v), 4) for v in np.percentile(values, [2.5, 97.5])]


def spearman_difference(pair_1: tuple, pair_0: tuple, draws: np.ndarray) -> dict:
    """rho(pair_1) - rho(pair_0) on the same photos, with its interval over the same resamples."""
    diff = [spearman(pair_1[0][d], pair_1[1][d]) - spearman(pair_0[0][d], pair_0[1][d]) for d in draws]
    low, high = np.percentile(diff, [2.5, 97.5])
    return {"difference": round(spearman(*pair_1) - spearman(*pair_0), 4), "interval": [round(float(low), 4), round(float(high), 4)],
            "supported": "higher" if low > 0 else "lower" if high < 0 else "no difference shown"}


def low_overlap(a: np.ndarray, b: np.ndarray, share: float = LOW_SHARE) -> float:
    """Share of ``a``'s lowest ``share`` that is also among ``b``'s lowest ``share``."""
    k = max(1, int(round(share * len(a))))
    return round(len(set(np.argsort(a)[:k]) & set(np.argsort(b)[:k])) / k, 4)


def landmark_disagreement(r_points: np.ndarray, y_points: np.ndarray) -> dict:
    """YuNet's landmarks in RetinaFace's aligned crop, in % of the template's eye distance: mean
    distance per point, the systematic offset (mean over photos, per point) and the scatter around it."""
    from vidfiqa.align import apply_transforms, estimate_similarity, template

    m = estimate_similarity(r_points, template())
    d = (apply_transforms(m, y_points) - apply_transforms(m, r_points)) / EYE_DISTANCE_IN_CROP * 100  # (N, 5, 2), % eye distance
    offset = d.mean(axis=0)
    scatter = np.sqrt(((d - offset) ** 2).sum(axis=2).mean(axis=0))  # per point, RMS distance around the offset
    names = ("right_eye", "left_eye", "nose", "right_mouth", "left_mouth")
    distance = np.linalg.norm(d, axis=2)
    return {"mean_distance_pct": round(float(distance.mean()), 2), "median_distance_pct": round(float(np.median(distance)), 2),
            "mean_distance_per_point_pct": {n: round(float(v), 2) for n, v in zip(names, distance.mean(axis=0))},
            "scatter_rms_per_point_pct": {n: round(float(v), 2) for n, v in zip(names, scatter)},
            "systematic_offset_pct": {n: [round(float(v), 2) for v in o] for n, o in zip(names, offset)},
            "systematic_offset_mean_length_pct": round(float(np.linalg.norm(offset, axis=1).mean()), 2),
            "scatter_rms_pct": round(float(scatter.mean()), 2)}


def edc_figures(comparison: np.ndarray, pairs, quality: dict) -> dict:
    """Normalised pAUC at 0.2 / 0.3 for FMR 1e-3 / 1e-2 (edc_devset.py's table) and the floor."""
    from vidfiqa.eval.edc import evaluate

    def r4(v):  # None where undefined (no failing genuine pair)
        return None if v is None else round(float(v), 4)

    result = evaluate(comparison, pairs, quality)
    out: dict = {}
    for e in result["fmr"]:
        tag = f"fmr {e['fmr']:g}"
        out[tag] = {"fnmr0": r4(e["fnmr0"]), "floor": {k: r4(v["normalised"]) for k, v in e["floor"].items()},
                    "normalised_pauc": {name: {k: r4(v) for k, v in m["normalised"].items()} for name, m in e["methods"].items()}}
    return out


def edc_for_model(scores: dict, dev_ix: np.ndarray, comparison: dict, pairs, ids: np.ndarray, embeddings: dict, subsets: list, boot: int) -> dict:
    """EDC of one model's scores (plain and averaged) on the development photos: comparator the
    RetinaFace crops' embeddings for every score, and each detector's own crops."""
    quality = {k: v[dev_ix] for k, v in scores.items() if "~" not in k}
    fixed = {**quality, "embedding_norm": np.linalg.norm(embeddings["retinaface"], axis=1)}
    entry = {"comparator_retinaface_crops": {"figures": edc_figures(comparison["retinaface"], pairs, fixed)}, "comparator_own_crops": {}}
    if boot:
        entry["comparator_retinaface_crops"]["intervals"] = pauc_intervals(comparison["retinaface"], pairs, ids, fixed, boot,
                                                                           references=("retinaface",))
    own_boot = {}
    for d in DETECTORS:
        mine = {k: v for k, v in quality.items() if k.split(",")[0] == d}
        entry["comparator_own_crops"][d] = {"figures": edc_figures(comparison[d], pairs, mine)}
        if boot:
            for k, q in mine.items():
                own_boot[k] = np.array(bootstrap_pauc(comparison[d], pairs, ids, q, subsets))
    if boot:
        diffs = {}
        for label in ["", *(f", mean of {e + 1}" for e in AVERAGE_EXTRA)]:
            for a, b in ((f"yunet{label}", f"retinaface{label}"), (f"retinaface{label}", "retinaface"), (f"yunet{label}", "yunet")):
                if a == b:
                    continue
                diff = own_boot[a] - own_boot[b]
                low, high = np.percentile(diff, [2.5, 97.5])
                diffs[f"{a} minus {b}"] = {"median": round(float(np.median(diff)), 4), "interval": [round(float(low), 4), round(float(high), 4)],
                                           "supported": "lower" if high < 0 else "higher" if low > 0 else "no difference shown"}
        entry["comparator_own_crops"]["intervals"] = {k: [round(float(v), 4) for v in np.percentile(b, [2.5, 97.5])] for k, b in own_boot.items()}
        entry["comparator_own_crops"]["differences"] = diffs
    return entry


def cost(images: list[np.ndarray], points: np.ndarray, keys: list[str], seed: int, repeats: int = 5) -> dict:
    """ms per face to align (with the jitter drawn) and score 1 + k crops: the best of ``repeats``
    rounds, each round timing every model and k in turn (a burst of load on the shared machine
    then hits one round of all of them, not all rounds of one)."""
    from vidfiqa.align import align
    from vidfiqa.quality.ediffiqa import EDifFIQA

    scorers = {model: EDifFIQA(threads=1, **options) for model, options in MODELS.items()}
    for scorer in scorers.values():
        scorer.score_and_embed(np.zeros((8, 112, 112, 3), np.uint8))
    best = {(model, extra): float("inf") for model in MODELS for extra in (0, *AVERAGE_EXTRA)}
    for _ in range(repeats):
        for model, extra in best:
            start = time.perf_counter()
            crops = []
            for image, lm, key in zip(images, points, keys):
                sets = [lm] + [jittered(lm, key, "retinaface", AVERAGE_SIGMA, r, seed) for r in range(extra)]
                crops.append(align(image, np.stack(sets)))
            q, _ = scorers[model].score_and_embed(np.concatenate(crops))
            q.reshape(len(images), extra + 1).mean(axis=1)
            best[(model, extra)] = min(best[(model, extra)], (time.perf_counter() - start) / len(images) * 1e3)
    out: dict = {}
    for model in MODELS:
        row = {f"mean of {extra + 1}": round(best[(model, extra)], 2) for extra in (0, *AVERAGE_EXTRA)}
        row["extra_over_single"] = {k: round(v - row["mean of 1"], 2) for k, v in row.items() if k != "mean of 1"}
        out[model] = row
    return out


# ----------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--per-identity", type=int, default=10, help="at most this many photos per person (seeded)")
    parser.add_argument("--boot", type=int, default=100, help="draws of 80 %% of the people for the EDC intervals (0: none)")
    parser.add_argument("--rho-draws", type=int, default=500, help="photo resamples for the Spearman intervals")
    parser.add_argument("--cost-faces", type=int, default=100, help="faces timed for the mitigation's cost (0: no timing)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the landmark jitter")
    parser.add_argument("--json", type=Path, default=OUT)
    parser.add_argument("--student", type=Path, default=None,
                        help="a candidate student ONNX scored as 'fp32' instead of the bundled one (int8 left out); write to another --json")
    args = parser.parse_args()
    if args.student is not None:
        MODELS.clear()
        MODELS["fp32"] = {"onnx": str(args.student)}
    run = Run("detector_variability.py", sys.argv[1:], timed=args.cost_faces > 0)
    os.environ.setdefault("VIDFIQA_WEIGHTS", str(SHARED / "models"))  # MobileFaceNet, the comparator (not bundled)
    if not YUNET.is_file():
        raise SystemExit(f"detector_variability.py: needs the YuNet model {YUNET}")

    from vidfiqa.align import align
    from vidfiqa.embed import make_embedder
    from vidfiqa.eval.verification import all_pairs, comparison_scores
    from vidfiqa.train.cropset import split_of

    caches = {m: ScoreCache(m, o) for m, o in MODELS.items()}
    mfn = make_embedder("mobilefacenet", backend="onnx")
    names = variants()
    rows: list[dict] = []  # one per matched photo
    counts: dict = {}
    for name in args.sets:
        paths, identities = choose_photos(name, args.per_identity)
        root = SHARED / "data" / name
        found = {d: detections(name, d, paths) for d in DETECTORS}
        both = found["retinaface"]["found"] & found["yunet"]["found"]
        iou = box_iou(found["retinaface"]["boxes"], found["yunet"]["boxes"])
        matched = both & (iou > MIN_IOU)
        counts[name] = {"photos": len(paths), "people": len(set(identities)), "pad": pad_of(name),
                        **{f"found_{d}": int(found[d]["found"].sum()) for d in DETECTORS}, "found_both": int(both.sum()),
                        "matched_iou_gt_0.5": int(matched.sum()), "median_iou": round(float(np.median(iou[matched])), 3),
                        "median_eye_distance_px": round(float(np.median(np.linalg.norm(np.diff(found["retinaface"]["landmarks"][matched][:, :2], axis=1)[:, 0], axis=1))), 1)}
        print(f"{name}: {counts[name]}", flush=True)
        idx = np.flatnonzero(matched)
        start = time.perf_counter()
        for first in range(0, len(idx), CHUNK):
            part = idx[first : first + CHUNK]
            crops_todo: dict[str, tuple[list, list]] = {m: ([], []) for m in MODELS}
            for i in part:
                photo = paths[i].relative_to(root).as_posix()
                person = f"{name}:{identities[i]}"
                row = {"set": name, "photo": photo, "person": person, "dev": split_of(person) == "dev",
                       "landmarks": {d: found[d]["landmarks"][i] for d in DETECTORS}}
                need = [v for v in names if any(score_key(name, photo, v, args.seed) not in c.known for c in caches.values())]
                if need or row["dev"]:
                    pixels, scale = load_pixels(paths[i])
                    base = {d: row["landmarks"][d] / scale for d in DETECTORS}  # file pixels -> loaded pixels
                    todo = list(dict.fromkeys(need + (list(DETECTORS) if row["dev"] else [])))
                    crops = align(pixels, np.stack([landmarks_of(v, f"{name}/{photo}", base, args.seed) for v in todo]))
                    by_variant = dict(zip(todo, crops))
                    if row["dev"]:
                        row["embedding"] = {d: by_variant[d] for d in DETECTORS}  # crops now, embeddings below
                    for m, c in caches.items():
                        for v in need:
                            key = score_key(name, photo, v, args.seed)
                            if key not in c.known:
                                crops_todo[m][0].append(key)
                                crops_todo[m][1].append(by_variant[v])
                rows.append(row)
            for m, (keys, crops) in crops_todo.items():
                if keys:
                    caches[m].add(keys, np.stack(crops))
            dev_rows = [r for r in rows[-len(part):] if r["dev"]]
            if dev_rows:
                for d in DETECTORS:
                    emb = mfn.embed(np.stack([r["embedding"][d] for r in dev_rows]))
                    for r, e in zip(dev_rows, emb):
                        r["embedding"][d] = e
        for c in caches.values():
            c.save()
        print(f"  {name}: {len(idx)} faces aligned and scored in {time.perf_counter() - start:.0f}s", flush=True)

    # Score table: model -> variant -> (N,) over the matched photos, in row order.
    scores = {m: {v: np.array([c.known[score_key(r["set"], r["photo"], v, args.seed)] for r in rows]) for v in names} for m, c in caches.items()}
    for m in MODELS:
        for d in DETECTORS:
            for extra in AVERAGE_EXTRA:
                scores[m][f"{d}, mean of {extra + 1}"] = np.mean([scores[m][v] for v in averaged_members(d, extra)], axis=0)
    set_of = np.array([r["set"] for r in rows])
    groups = {name: np.flatnonzero(set_of == name) for name in args.sets}
    groups["pooled"] = np.arange(len(rows))
    dev = np.array([r["dev"] for r in rows])
    groups["pooled, development people"] = np.flatnonzero(dev)

    # 1. RetinaFace vs YuNet, landmark disagreement, 3. jitter, 4. mitigation (Spearman)
    agreement: dict = {}
    for group, ix in groups.items():
        draws = resamples(len(ix), args.rho_draws, seed=1)
        entry: dict = {"faces": int(len(ix))}
        if group in args.sets:
            entry["landmarks_yunet_vs_retinaface"] = landmark_disagreement(np.stack([rows[i]["landmarks"]["retinaface"] for i in ix]),
                                                                           np.stack([rows[i]["landmarks"]["yunet"] for i in ix]))
        for m in MODELS:
            s = {k: v[ix] for k, v in scores[m].items()}
            r, y = s["retinaface"], s["yunet"]
            spread = float(np.std(r))
            e: dict = {
                "retinaface_vs_yunet": {"spearman": round(spearman(r, y), 4), "interval": spearman_interval(r, y, draws),
                                        "mean_yunet_minus_retinaface_in_sd": round(float(np.mean(y - r)) / spread, 3),
                                        "sd_of_difference_in_sd": round(float(np.std(y - r)) / spread, 3),
                                        "lowest_20pct_overlap": low_overlap(r, y)},
                "jitter_spearman_with_unjittered": {f"{sig:g}": round(spearman(r, s[jitter_name("retinaface", sig, 0)]), 4) for sig in SIGMAS},
                "jitter_lowest_20pct_overlap": {f"{sig:g}": low_overlap(r, s[jitter_name("retinaface", sig, 0)]) for sig in SIGMAS},
                "mitigation": {},
            }
            for extra in AVERAGE_EXTRA:
                label = f"mean of {extra + 1}"
                ra, ya = s[f"retinaface, {label}"], s[f"yunet, {label}"]
                e["mitigation"][label] = {"retinaface_vs_yunet_spearman": round(spearman(ra, ya), 4), "interval": spearman_interval(ra, ya, draws),
                                          "minus_single_alignment": spearman_difference((ra, ya), (r, y), draws),
                                          "lowest_20pct_overlap": low_overlap(ra, ya),
                                          "spearman_with_retinaface_single": round(spearman(ra, r), 4)}
            entry[m] = e
        if len(ix) and "int8" in scores:
            entry["fp32_vs_int8_spearman_retinaface"] = round(spearman(scores["fp32"]["retinaface"][ix], scores["int8"]["retinaface"][ix]), 4)
        agreement[group] = entry
        print(group, {m: (entry[m]["retinaface_vs_yunet"]["spearman"], entry[m]["jitter_spearman_with_unjittered"]) for m in MODELS}, flush=True)

    # 2. EDC on the development people, pooled over the sets
    dev_ix = np.flatnonzero(dev)
    person = np.array([rows[i]["person"] for i in dev_ix])
    ids = np.unique(person, return_inverse=True)[1]
    pairs = all_pairs(ids, max_impostors=None)
    embeddings = {d: np.stack([rows[i]["embedding"][d] for i in dev_ix]) for d in DETECTORS}
    comparison = {d: comparison_scores(embeddings[d], pairs) for d in DETECTORS}
    print(f"EDC: {len(dev_ix)} development photos of {len(np.unique(person))} people, "
          f"{int(pairs.genuine.sum())} genuine / {int((~pairs.genuine).sum())} impostor pairs", flush=True)
    edc: dict = {"photos": int(len(dev_ix)), "people": int(len(np.unique(person))),
                 "pairs": {"genuine": int(pairs.genuine.sum()), "impostor": int((~pairs.genuine).sum())},
                 "sets": {name: int((set_of[dev_ix] == name).sum()) for name in args.sets},
                 "headline": f"normalised pAUC@{LIMIT:g} at FMR {FMR:g} (lower is better)", "boot": args.boot, "models": {}}
    subsets = people_draws(ids, args.boot) if args.boot else []
    for m in MODELS:
        try:
            edc["models"][m] = edc_for_model(scores[m], dev_ix, comparison, pairs, ids, embeddings, subsets, args.boot)
        except TypeError:  # a draw with no failing genuine pair: normalised pAUC undefined (tiny runs only)
            edc["models"][m] = edc_for_model(scores[m], dev_ix, comparison, pairs, ids, embeddings, [], 0)
            edc["note"] = "intervals left out: some draw of the people had no failing genuine pair (too few photos)"
        entry = edc["models"][m]
        head = f"fmr {FMR:g}"
        print(m, "EDC", {k: v[f"{LIMIT:g}"] for k, v in entry["comparator_retinaface_crops"]["figures"][head]["normalised_pauc"].items()}, flush=True)

    # 4. The mitigation's cost
    timing: dict = {}
    if args.cost_faces:
        pick = np.linspace(0, len(rows) - 1, min(args.cost_faces, len(rows))).astype(int)
        images, points, keys = [], [], []
        for i in pick:
            r = rows[i]
            pixels, scale = load_pixels(SHARED / "data" / r["set"] / r["photo"])
            images.append(pixels)
            points.append(r["landmarks"]["retinaface"] / scale)
            keys.append(f"{r['set']}/{r['photo']}")
        timing = {"faces": len(images), "threads": 1, "what": "ms per face: draw the jitter, align 1 + k crops, score them (micro-batches of 8), average; best of 5 interleaved rounds",
                  "ms_per_face": cost(images, np.stack(points), keys, args.seed)}
        print("cost", timing["ms_per_face"], flush=True)

    report = {
        "sets": counts,
        "settings": {"detectors": "RetinaFace (bundled) and YuNet " + YUNET.name + ", input 640, never enlarged, largest face",
                     "match": f"both found a face, box IoU > {MIN_IOU}", "per_identity": args.per_identity, "jitter_sigmas_of_eye_distance": list(SIGMAS),
                     "average_sigma": AVERAGE_SIGMA, "average_extra_alignments": list(AVERAGE_EXTRA), "seed": args.seed,
                     "spearman_interval": f"2.5-97.5 % over {args.rho_draws} resamples of the photos"},
        "agreement": agreement,
        "edc_development_people": edc,
        "cost": timing,
        "scoring_seconds_this_run": {m: {"crops": c.crops, "seconds": round(c.seconds, 1)} for m, c in caches.items()},
    }
    data = run.write(args.json, report)
    from vidfiqa.atomic import atomic_write_text

    atomic_write_text(args.json.with_suffix(".md"), markdown(data))
    print(markdown(data))


def num(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def markdown(data: dict) -> str:
    from benchinfo import load_note

    agree, edc, models = data["agreement"], data["edc_development_people"], list(MODELS)
    sets = [g for g in agree if g in data["sets"]]
    lines = [f"# Detector variability: RetinaFace vs YuNet, landmark jitter ({load_note(data)}, `{data['command']}`)", "",
             "## Photos", "", "| set | photos | people | pad | RetinaFace found | YuNet found | both, IoU > 0.5 | median IoU | median eye distance px |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, c in data["sets"].items():
        lines.append(f"| {name} | {c['photos']} | {c['people']} | {c['pad']:g} | {c['found_retinaface']} | {c['found_yunet']} | {c['matched_iou_gt_0.5']} | "
                     f"{c['median_iou']} | {c['median_eye_distance_px']} |")
    lines += ["", "## Landmarks: YuNet's in RetinaFace's aligned crop (% of the eye distance)", "",
              "| set | mean distance | median distance | systematic offset (mean length over the 5 points) | scatter around it (RMS) |", "|---|---|---|---|---|",
              ]
    for name in sets:
        lm = agree[name]["landmarks_yunet_vs_retinaface"]
        lines.append(f"| {name} | {lm['mean_distance_pct']} | {lm['median_distance_pct']} | {lm['systematic_offset_mean_length_pct']} | {lm['scatter_rms_pct']} |")
    lines += ["", "(Jitter of sigma s per coordinate moves a point by s x 1.41 RMS: 1.4-4.2 % for sigma 1-3 %.)"]
    lines += ["", "## Student's score: RetinaFace vs YuNet alignment (Spearman, 95 % interval over photo resamples)", "",
              "| group | faces | " + " | ".join(f"{m} Spearman | {m} lowest-20 % overlap | {m} mean Y-R (sd)" for m in models) + " | fp32 vs int8 (same crops) |",
              "|---|---|" + "---|---|---|" * len(models) + "---|"]
    for group, e in agree.items():
        cells = []
        for m in models:
            a = e[m]["retinaface_vs_yunet"]
            cells += [f"{a['spearman']:.3f} [{a['interval'][0]:.3f}, {a['interval'][1]:.3f}]", f"{a['lowest_20pct_overlap']:.2f}",
                      f"{a['mean_yunet_minus_retinaface_in_sd']:+.2f}"]
        lines.append(f"| {group} | {e['faces']} | " + " | ".join(cells) + f" | {e.get('fp32_vs_int8_spearman_retinaface', float('nan')):.3f} |")
    lines += ["", "Pooled ranks mix sets whose score levels differ (between-set spread raises the correlation): the per-set rows are the stricter figures."]
    sig = [f"{s:g}" for s in SIGMAS]
    lines += ["", "## Landmark jitter: Spearman with the unjittered RetinaFace score", "",
              "| group | " + " | ".join(f"{m} sigma {float(s) * 100:g} %" for m in models for s in sig) + " |", "|---|" + "---|" * (len(models) * len(sig))]
    for group, e in agree.items():
        lines.append(f"| {group} | " + " | ".join(f"{e[m]['jitter_spearman_with_unjittered'][s]:.3f}" for m in models for s in sig) + " |")
    labels = [f"mean of {x + 1}" for x in AVERAGE_EXTRA]
    lines += ["", f"## Mitigation: mean over the original + jittered alignments (sigma {AVERAGE_SIGMA * 100:g} %), RetinaFace vs YuNet Spearman", "",
              "| group | " + " | ".join(f"{m} single | " + " | ".join(f"{m} {lab} (minus single)" for lab in labels) for m in models) + " |",
              "|---|" + "---|" * (len(models) * (1 + len(labels)))]
    for group, e in agree.items():
        cells = []
        for m in models:
            cells.append(f"{e[m]['retinaface_vs_yunet']['spearman']:.3f}")
            for lab in labels:
                x = e[m]["mitigation"][lab]
                d = x["minus_single_alignment"]
                cells.append(f"{x['retinaface_vs_yunet_spearman']:.3f} ({d['difference']:+.3f} [{d['interval'][0]:+.3f}, {d['interval'][1]:+.3f}])")
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    head = f"fmr {FMR:g}"
    lines += ["", f"## EDC on the development people ({edc['photos']} photos of {edc['people']} people, {edc['pairs']['genuine']} genuine / "
              f"{edc['pairs']['impostor']} impostor pairs; MobileFaceNet comparator), {edc['headline']}", "",
              f"Intervals: 2.5-97.5 % over {edc['boot']} draws of 80 % of the people; differences paired on the same draws.", "",
              "| model | score | comparator: RetinaFace crops | minus RetinaFace's score | comparator: own crops |", "|---|---|---|---|---|"]
    for m, entry in edc["models"].items():
        fixed = entry["comparator_retinaface_crops"]
        iv = fixed.get("intervals", {}).get("methods", {})
        for name, value in fixed["figures"][head]["normalised_pauc"].items():
            det = name.split(",")[0]
            own = entry["comparator_own_crops"].get(det, {}).get("figures", {}).get(head, {}).get("normalised_pauc", {}).get(name)
            own_iv = entry["comparator_own_crops"].get("intervals", {}).get(name)
            cell = num(value[f"{LIMIT:g}"]) + (f" [{iv[name]['interval'][0]:.3f}, {iv[name]['interval'][1]:.3f}]" if name in iv else "")
            diff = iv.get(name, {}).get("minus retinaface")
            dcell = f"{diff['median']:+.3f} [{diff['interval'][0]:+.3f}, {diff['interval'][1]:+.3f}]" if diff else ""
            ocell = (num(own[f"{LIMIT:g}"]) + (f" [{own_iv[0]:.3f}, {own_iv[1]:.3f}]" if own_iv else "")) if own else ""
            lines.append(f"| {m} | {name} | {cell} | {dcell} | {ocell} |")
        floor = fixed["figures"][head]["floor"][f"{LIMIT:g}"]
        lines.append(f"| {m} | *floor (perfect order), FNMR0 {num(fixed['figures'][head]['fnmr0'])}* | {num(floor)} | | |")
    diffs = {m: e["comparator_own_crops"].get("differences", {}) for m, e in edc["models"].items()}
    if any(diffs.values()):
        lines += ["", "Own crops, paired differences (median [interval]):", "", "| model | difference | median [interval] |", "|---|---|---|"]
        for m, rows in diffs.items():
            for name, d in rows.items():
                lines.append(f"| {m} | {name} | {d['median']:+.3f} [{d['interval'][0]:+.3f}, {d['interval'][1]:+.3f}] |")
    if data.get("cost"):
        c = data["cost"]
        labels_all = [k for k in next(iter(c["ms_per_face"].values())) if k != "extra_over_single"]
        lines += ["", f"## Cost: {c['what']}, {c['faces']} faces, {c['threads']} thread ({data['load_average']['check']})", "",
                  "| model | " + " | ".join(labels_all) + " |", "|---|" + "---|" * len(labels_all)]
        for m, row in c["ms_per_face"].items():
            lines.append(f"| {m} | " + " | ".join(f"{row[k]:.2f}" + (f" (+{row['extra_over_single'][k]:.2f})" if k in row["extra_over_single"] else "")
                                                  for k in labels_all) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
