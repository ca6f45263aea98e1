"""Which embedding and which cosine threshold link tracks into persons (vidfiqa.select.persons).

    python benchmarks/person_threshold.py [--cache /tmp/person_threshold] [--ytf-frames 0]

Data (../shared/data): the photo identity sets ``faces``, ``celeba_wild`` (detected with
RetinaFace-MNet0.25 at 640 and aligned, largest face per photo, as ``vidfiqa photos`` does) and
``glint24_aligned`` (already aligned crops, taken as they are, as benchmarks/verification.py
does), and the YouTube Faces crops ``ytf_aligned_dev`` (50 people, 119 videos; each frame
re-detected and aligned the way ``vidfiqa rescore ytf`` treats a frame without a box: RetinaFace
at 640, score >= 0.5, largest face).

Tracks: a YTF video is a track; on photo sets a pseudo-track is k photos of one identity
(k = 1, 3, 5; each identity's photos shuffled with a fixed seed and cut into disjoint groups;
no k = 5 on celeba_wild, whose identities have too few photos for two groups of 5).
A track's template is :func:`vidfiqa.select.persons.link_template` of its faces' embeddings
(weighting compared below).  Scores: cosine of template vs template, genuine = same identity
(on YTF: two different videos of one person), impostor = different identities.

Embeddings compared: the eDifFIQA student's own 128-d embedding (free: the pipeline computes
it for every scored face), MobileFaceNet (foamliu, 128-d; an extra model call), and both
(each L2-normalised, concatenated: the cosine is the mean of the two cosines).

Choose on one split, report on the other: identities are split in halves (seeded, per set);
the embedding, the template weighting and the threshold are chosen on split A, and the figures
at that threshold are reported on split B.  Last, :func:`link_persons` runs end to end on YTF:
every video a track, laid out one after another in time, clustered, scored by purity, number
of persons found and pairwise precision / recall against the 50 true persons.

Embeddings are cached in ``--cache`` (default /tmp/person_threshold); results go to
benchmarks/results/person_threshold_vm.json and person_threshold_vm.png (ROC curves).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
SHARED = Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"
YTF = DATA / "ytf_aligned_dev" / "aligned_images_DB"

PHOTO_SETS = {"faces": False, "celeba_wild": False, "glint24_aligned": True}  # name -> aligned input
EMBEDDINGS = ("student", "mobilefacenet", "both")
FARS = (1e-3, 1e-2, 1e-1)


# ----------------------------------------------------------------------------- embeddings
class Models:
    def __init__(self):
        os.environ.setdefault("VIDFIQA_WEIGHTS", str(SHARED / "models"))
        from vidfiqa.detect import make_detector
        from vidfiqa.embed import make_embedder
        from vidfiqa.quality import make_scorer

        self.detector = make_detector("retinaface", input_size=640, score_threshold=0.5)
        self.student = make_scorer("ediffiqa")
        self.mfn = make_embedder("mobilefacenet", backend="onnx")

    def crops(self, paths: list[Path], aligned: bool) -> tuple[np.ndarray, np.ndarray]:
        """Aligned 112x112 crops of the largest face of each image, and which images had one."""
        from vidfiqa.photos import PhotoPipeline

        pipeline = PhotoPipeline(None if aligned else self.detector, largest_only=True, aligned_input=aligned)
        index = {Path(p): i for i, p in enumerate(paths)}
        out = np.zeros((len(paths), 112, 112, 3), np.uint8)
        found = np.zeros(len(paths), bool)
        for result in pipeline.run(paths):
            if result.faces is not None and len(result.faces):
                assert result.faces.crops is not None
                i = index[result.path]
                out[i], found[i] = result.faces.crops[0], True
        return out, found

    def embed(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        quality, student = self.student.score_and_embed(crops)  # type: ignore[attr-defined]
        return {"quality": quality, "student": student, "mobilefacenet": np.asarray(self.mfn.embed(crops), np.float32)}


def read_photo_set(name: str) -> tuple[list[Path], np.ndarray]:
    from vidfiqa.datasets import read_identity_csv

    ids = read_identity_csv(DATA / name / "identities.csv")
    return list(ids.paths), np.asarray(ids.identities).astype(str)


def read_ytf(max_frames: int) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """Frame paths, person label and video key per frame (``max_frames`` evenly per video; 0 = all)."""
    from vidfiqa.ytf.dataset import read_ytf as read

    videos, _ = read(YTF)
    paths, people, keys = [], [], []
    for video in videos:
        frames = sorted(video.frames, key=lambda fr: fr.frame_number)
        if max_frames and len(frames) > max_frames:
            frames = [frames[i] for i in sorted(set(np.linspace(0, len(frames) - 1, max_frames).round().astype(int)))]
        for frame in frames:
            paths.append(frame.path)
            people.append(video.person)
            keys.append(video.key)
    return paths, np.array(people), np.array(keys)


def cached(cache: Path, name: str, compute) -> dict[str, np.ndarray]:
    target = cache / f"{name}.npz"
    if target.is_file():
        with np.load(target, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    start = time.perf_counter()
    data = compute()
    data["seconds"] = np.array(time.perf_counter() - start)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(target, **data)
    print(f"{name}: {len(data['labels'])} images embedded in {float(data['seconds']):.0f}s", flush=True)
    return data


def load_all(cache: Path, ytf_frames: int) -> dict[str, dict[str, np.ndarray]]:
    models: list[Models] = []

    def get() -> Models:
        if not models:
            models.append(Models())
        return models[0]

    sets = {}
    for name, aligned in PHOTO_SETS.items():
        def compute(name=name, aligned=aligned):
            paths, labels = read_photo_set(name)
            crops, found = get().crops(paths, aligned)
            emb = get().embed(crops[found])
            return {"labels": labels[found], "photos": np.array(len(paths)), **emb}
        sets[name] = cached(cache, name, compute)

    def compute_ytf():
        paths, people, keys = read_ytf(ytf_frames)
        crops, found = get().crops(paths, aligned=False)
        emb = get().embed(crops[found])
        return {"labels": people[found], "videos": keys[found], "photos": np.array(len(paths)), **emb}
    sets["ytf"] = cached(cache, f"ytf_{ytf_frames or 'all'}", compute_ytf)
    return sets


# ----------------------------------------------------------------------------- tracks and scores
WEIGHTINGS: dict[str, tuple[bool, int | None]] = {"mean": (False, None), "quality": (True, None), "top5": (True, 5)}  # (use quality, top_k)
PHOTO_K = (1, 3, 5)
SPLIT_SEED = 0


def face_vectors(data: dict[str, np.ndarray], embedding: str) -> np.ndarray:
    from vidfiqa.boxes import l2_normalize

    if embedding == "both":
        return np.concatenate([l2_normalize(data["student"].astype(np.float64)),
                               l2_normalize(data["mobilefacenet"].astype(np.float64))], axis=1) / np.sqrt(2)
    return data[embedding].astype(np.float64)


def split_of(labels: np.ndarray) -> np.ndarray:
    """0 (split A, where choices are made) or 1 (split B, reported) per row: identities halved."""
    ids = np.unique(labels)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(ids))
    half = {ids[i]: int(rank >= len(ids) // 2) for rank, i in enumerate(order)}
    return np.array([half[x] for x in labels])


def track_groups(data: dict[str, np.ndarray], k: int | None) -> tuple[list[np.ndarray], np.ndarray]:
    """Face indices of each (pseudo-)track and its identity: YTF videos (k None) or k photos."""
    labels = data["labels"]
    groups: list[np.ndarray] = []
    names: list[str] = []
    if k is None:
        for key in np.unique(data["videos"]):
            rows = np.flatnonzero(data["videos"] == key)
            groups.append(rows)
            names.append(labels[rows[0]])
    else:
        rng = np.random.default_rng(k)
        for identity in np.unique(labels):
            rows = rng.permutation(np.flatnonzero(labels == identity))
            for i in range(0, len(rows) - k + 1, k):
                groups.append(rows[i:i + k])
                names.append(identity)
    return groups, np.array(names)


def templates(data, groups, embedding: str, weighting: str) -> np.ndarray:
    from vidfiqa.select.persons import link_template

    vectors = face_vectors(data, embedding)
    use_quality, top_k = WEIGHTINGS[weighting]
    return np.stack([link_template(vectors[g], data["quality"][g] if use_quality else None, top_k=top_k)
                     for g in groups])


def pair_scores(t: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(len(labels), k=1)
    return np.einsum("ij,ij->i", t[i], t[j]), labels[i] == labels[j]


def roc(scores: np.ndarray, genuine: np.ndarray) -> dict:
    from vidfiqa.eval.verification import roc_auc, tar_at_far

    out = {"genuine_pairs": int(genuine.sum()), "impostor_pairs": int((~genuine).sum()),
           "auc": round(roc_auc(scores, genuine), 4)}
    for far in FARS:
        out[f"tar@far={far:g}"] = round(tar_at_far(scores, genuine, far), 4)
    return out


def threshold_at_far(scores: np.ndarray, genuine: np.ndarray, far: float) -> float:
    impostor = np.sort(scores[~genuine])
    k = int(np.floor(far * impostor.size))
    return float(impostor[-k - 1]) if k < impostor.size else float("-inf")


def at_threshold(scores: np.ndarray, genuine: np.ndarray, threshold: float) -> dict:
    return {"tar": round(float((scores[genuine] >= threshold).mean()), 4),
            "far": round(float((scores[~genuine] >= threshold).mean()), 5)}


def link_figures(t: np.ndarray, labels: np.ndarray, threshold: float, linkage: str = "average", seed: int = 0) -> dict:
    """link_persons over these tracks laid out one after another (shuffled order, no overlaps)."""
    from vidfiqa.select.persons import TrackSpan, link_persons

    order = np.random.default_rng(seed).permutation(len(labels))
    spans = [TrackSpan(int(i), float(pos * 10), float(pos * 10 + 5), t[i]) for pos, i in enumerate(order)]
    start = time.perf_counter()
    person = link_persons(spans, threshold, linkage=linkage)
    seconds = time.perf_counter() - start
    found = np.array([person[i] for i in range(len(labels))])
    return {**clustering_scores(found, labels), "seconds": round(seconds, 4)}


def clustering_scores(found: np.ndarray, labels: np.ndarray) -> dict:
    """Purity (tracks in their cluster's majority identity), inverse purity, pairwise P/R/F1."""
    def majority(a, b):
        return sum(np.unique(b[a == c], return_counts=True)[1].max() for c in np.unique(a)) / len(a)

    i, j = np.triu_indices(len(labels), k=1)
    same_true, same_found = labels[i] == labels[j], found[i] == found[j]
    tp = int((same_true & same_found).sum())
    precision = tp / max(1, int(same_found.sum()))
    recall = tp / max(1, int(same_true.sum()))
    return {"tracks": len(labels), "true_persons": len(np.unique(labels)), "persons_found": len(np.unique(found)),
            "purity": round(float(majority(found, labels)), 4), "inverse_purity": round(float(majority(labels, found)), 4),
            "pairwise_precision": round(precision, 4), "pairwise_recall": round(recall, 4),
            "pairwise_f1": round(2 * precision * recall / max(1e-12, precision + recall), 4)}


def memory_figures(t: np.ndarray, labels: np.ndarray, threshold: float, seed: int = 0) -> dict:
    """PersonMemory fed the tracks one by one (shuffled order, one every 10 s)."""
    from vidfiqa.select.persons import PersonMemory

    memory = PersonMemory(threshold, memory_s=1e9)
    order = np.random.default_rng(seed).permutation(len(labels))
    found = np.zeros(len(labels), np.int64)
    for pos, i in enumerate(order):
        found[i] = memory.assign(t[i], float(pos * 10), float(pos * 10 + 5))
    return clustering_scores(found, labels)


SCENARIOS = [("faces", 1), ("faces", 3), ("faces", 5), ("celeba_wild", 1), ("celeba_wild", 3),
             ("glint24_aligned", 1), ("glint24_aligned", 3), ("glint24_aligned", 5), ("ytf", None)]
#: Where the threshold and linkage are chosen (by link F1 on split A): the real tracks and 3-photo pseudo-tracks.
CHOICE = [("faces", 3), ("celeba_wild", 3), ("glint24_aligned", 3), ("ytf", None)]


def scenario_name(name: str, k: int | None) -> str:
    return f"{name} videos" if k is None else f"{name} k={k}"


def report(sets: dict[str, dict[str, np.ndarray]]) -> dict:
    split = {}
    prepared = {}
    for name, k in SCENARIOS:
        groups, labels = track_groups(sets[name], k)
        prepared[(name, k)] = (groups, labels, split_of(labels))
        split[scenario_name(name, k)] = {"tracks": len(labels), "identities": len(np.unique(labels)),
                                         "split_a_tracks": int((split_of(labels) == 0).sum())}
    cache: dict = {}

    def tmpl(name, k, embedding, weighting):
        key = (name, k, embedding, weighting)
        if key not in cache:
            groups, labels, _ = prepared[(name, k)]
            cache[key] = templates(sets[name], groups, embedding, weighting)
        return cache[key]

    def scores(name, k, embedding, weighting, part):
        t = tmpl(name, k, embedding, weighting)
        _, labels, sp = prepared[(name, k)]
        return pair_scores(t[sp == part], labels[sp == part])

    # 1. ROC of every embedding x weighting on both splits.
    rocs: dict = {}
    for name, k in SCENARIOS:
        for embedding in EMBEDDINGS:
            for weighting in WEIGHTINGS:
                if k == 1 and weighting != "mean":
                    continue  # one face: nothing to weight
                for part in (0, 1):
                    s, g = scores(name, k, embedding, weighting, part)
                    rocs.setdefault(scenario_name(name, k), {}).setdefault(embedding, {}).setdefault(weighting, {})[
                        "AB"[part]] = roc(s, g)
    # 2. Weighting: mean TAR@FAR=1e-2 on split A over the multi-face scenarios, per embedding.
    multi = [(n, k) for n, k in SCENARIOS if k != 1]
    weighting_score = {e: {w: round(float(np.nanmean([rocs[scenario_name(n, k)][e][w]["A"]["tar@far=0.01"] for n, k in multi])), 4)
                           for w in WEIGHTINGS} for e in EMBEDDINGS}
    # 3. Embedding: mean TAR@FAR=1e-2 and AUC on split A over every scenario (its best weighting).
    best_weighting = {e: max(WEIGHTINGS, key=lambda w: weighting_score[e][w]) for e in EMBEDDINGS}

    def w_for(e, k):
        return "mean" if k == 1 else best_weighting[e]
    embedding_score = {e: {"tar@far=0.01": round(float(np.nanmean([rocs[scenario_name(n, k)][e][w_for(e, k)]["A"]["tar@far=0.01"]
                                                               for n, k in SCENARIOS])), 4),
                           "auc": round(float(np.nanmean([rocs[scenario_name(n, k)][e][w_for(e, k)]["A"]["auc"] for n, k in SCENARIOS])), 4)}
                       for e in EMBEDDINGS}
    # The student's embedding is free (computed for every scored face); another one has to beat
    # it clearly on split A to be worth a second model call.
    chosen = "student"
    for e in ("mobilefacenet", "both"):
        if embedding_score[e]["tar@far=0.01"] > embedding_score[chosen]["tar@far=0.01"] + 0.05:
            chosen = e
    weighting = best_weighting[chosen]
    # 4. Threshold and linkage: best mean link_persons pairwise F1 on split A over CHOICE.
    grid = np.round(np.arange(0.0, 0.951, 0.025), 3)
    sweep: dict = {}
    for linkage in ("average", "complete", "single"):
        for thr in grid:
            f1s = []
            for name, k in CHOICE:
                t = tmpl(name, k, chosen, w_for(chosen, k))
                _, labels, sp = prepared[(name, k)]
                f1s.append(link_figures(t[sp == 0], labels[sp == 0], float(thr), linkage)["pairwise_f1"])
            sweep.setdefault(linkage, []).append((float(thr), round(float(np.mean(f1s)), 4)))
    # Average linkage unless another one's peak F1 beats it by more than 0.01 (single linkage
    # chains and complete linkage splits: average is the robust default); its threshold: the
    # middle of the thresholds within 0.005 of its peak (a flat top, not one lucky grid point).
    peaks = {lk: max(f1 for _, f1 in rows) for lk, rows in sweep.items()}
    best_linkage = max(sweep, key=lambda lk: peaks[lk] - (0 if lk == "average" else 0.01))
    peak = max(f1 for _, f1 in sweep[best_linkage])
    plateau = [thr for thr, f1 in sweep[best_linkage] if f1 >= peak - 0.005]
    threshold = float(plateau[len(plateau) // 2])
    best_f1 = dict(sweep[best_linkage])[threshold]
    # 5. Figures at that threshold on split B (held out), and thresholds at fixed FARs from split A.
    held_out = {}
    far_thresholds = {}
    for name, k in SCENARIOS:
        key = scenario_name(name, k)
        w = w_for(chosen, k)
        sb, gb = scores(name, k, chosen, w, 1)
        sa, ga = scores(name, k, chosen, w, 0)
        entry = {"A": at_threshold(sa, ga, threshold), "B": at_threshold(sb, gb, threshold)}
        for far in FARS:
            thr_far = threshold_at_far(sa, ga, far)
            entry[f"far={far:g} on A"] = {"threshold": round(thr_far, 4), "B": at_threshold(sb, gb, thr_far)}
        held_out[key] = entry
        if (name, k) in CHOICE:
            far_thresholds[key] = {f"far={far:g}": round(threshold_at_far(sa, ga, far), 4) for far in FARS}
    linking = {}
    for name, k in CHOICE:
        t = tmpl(name, k, chosen, w_for(chosen, k))
        _, labels, sp = prepared[(name, k)]
        linking[scenario_name(name, k)] = {
            "split B": link_figures(t[sp == 1], labels[sp == 1], threshold, best_linkage),
            "all": link_figures(t, labels, threshold, best_linkage),
            "all, PersonMemory": memory_figures(t, labels, threshold),
        }
    for e in EMBEDDINGS:  # YTF linking with each embedding, at its own split-A-optimal threshold
        t = tmpl("ytf", None, e, w_for(e, None))
        _, labels, sp = prepared[("ytf", None)]
        f1 = [(thr, link_figures(t[sp == 0], labels[sp == 0], float(thr), best_linkage)["pairwise_f1"]) for thr in grid]
        thr_e = max(f1, key=lambda r: r[1])[0]
        linking.setdefault("ytf videos by embedding", {})[e] = {"threshold (best F1 on A)": float(thr_e),
                                                                "split B": link_figures(t[sp == 1], labels[sp == 1], float(thr_e), best_linkage)}
    timing = time_linking()
    from vidfiqa.boxes import l2_normalize

    agreement = {name: np.round(np.percentile(np.einsum("ij,ij->i", l2_normalize(d["student"]), l2_normalize(d["mobilefacenet"])),
                                              [0, 1, 50]), 4).tolist() for name, d in sets.items()}
    return {"split": split, "roc": rocs, "weighting_tar@far=0.01_on_A": weighting_score,
            "embedding_on_A": embedding_score, "chosen": {
                "embedding": chosen, "weighting": weighting, "linkage": best_linkage, "threshold": threshold,
                "split_a_mean_link_f1": best_f1,
                "link_f1_peak_by_linkage_on_A": peaks,
                "rule": "embedding: the student unless another beats its mean TAR@FAR=1e-2 on split A by > 0.05; "
                        "weighting: best mean TAR@FAR=1e-2 on split A over multi-face tracks; threshold and linkage: "
                        "best mean link_persons pairwise F1 on split A over " + ", ".join(scenario_name(n, k) for n, k in CHOICE)
                        + " (average linkage unless another peaks > 0.01 higher; threshold: middle of the thresholds within 0.005 of the peak)", "plateau": [plateau[0], plateau[-1]]},
            "link_f1_sweep_on_A": sweep, "operating_point": held_out, "thresholds_at_far_on_A": far_thresholds,
            "linking": linking, "link_persons_timing": timing,
            "student_vs_mobilefacenet_cosine_per_face_min_p1_median": agreement}


def time_linking() -> dict:
    from vidfiqa.select.persons import TrackSpan, link_persons

    rng = np.random.default_rng(0)
    out = {}
    for n in (100, 300, 1000):
        centres = rng.normal(size=(max(2, n // 10), 128))
        spans = []
        for i in range(n):
            v = centres[i % len(centres)] + rng.normal(size=128)
            start = float(rng.uniform(0, 3600))
            spans.append(TrackSpan(i, start, start + float(rng.uniform(1, 30)), v / np.linalg.norm(v)))
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            link_persons(spans, 0.3)
            best = min(best, time.perf_counter() - t0)
        out[f"{n} tracks"] = round(best * 1000, 1)
    return {"ms (best of 3)": out, "how": "random 128-d templates around n/10 centres, random overlapping spans"}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = results["chosen"]
    panels = ["faces k=1", "celeba_wild k=1", "glint24_aligned k=1", "ytf videos"]  # k=3 and k=5 saturate at TAR 1
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4), sharey=True)
    for ax, key in zip(axes, panels):
        name, k = (key.split(" k=")[0], int(key.split("k=")[1])) if "k=" in key else ("ytf", None)
        for e in EMBEDDINGS:
            w = "mean" if k == 1 else results["weighting"][e]
            far, tar = results["curves"][key][e]
            ax.plot(far, tar, label=f"{e} ({w})")
        op = results["operating_point"][key]["B"]
        ax.plot([max(op["far"], 1e-4)], [op["tar"]], "ko", label=f"cos >= {chosen['threshold']:g}")
        ax.set_xscale("log")
        ax.set_xlim(1e-4, 1)
        ax.set_title(f"{key} (split B)")
        ax.set_xlabel("FAR (template pairs)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("TAR")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curves(sets, results) -> dict:
    """(FAR, TAR) points on split B for the ROC plot."""
    out: dict = {}
    weighting = {}
    for e in EMBEDDINGS:
        scores_w = results["weighting_tar@far=0.01_on_A"][e]
        weighting[e] = max(scores_w, key=scores_w.get)
    for name, k in [("faces", 1), ("celeba_wild", 1), ("glint24_aligned", 1), ("ytf", None)]:
        groups, labels = track_groups(sets[name], k)
        sp = split_of(labels)
        for e in EMBEDDINGS:
            t = templates(sets[name], groups, e, "mean" if k == 1 else weighting[e])
            s, g = pair_scores(t[sp == 1], labels[sp == 1])
            thr = np.unique(np.concatenate([np.quantile(s[~g], np.linspace(0, 1, 400)), s[g]]))[::-1]
            far = [float((s[~g] >= x).mean()) for x in thr]
            tar = [float((s[g] >= x).mean()) for x in thr]
            out.setdefault(scenario_name(name, k), {})[e] = (far, tar)
    return {"curves": out, "weighting": weighting}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/person_threshold"))
    parser.add_argument("--ytf-frames", type=int, default=0, help="frames per YTF video, evenly spaced (0: all)")
    parser.add_argument("--embed-only", action="store_true")
    args = parser.parse_args()
    sets = load_all(args.cache, args.ytf_frames)
    if args.embed_only:
        return
    from benchinfo import Run

    run = Run("person_threshold.py", sys.argv[1:], timed=False)
    results = report(sets)
    extra = curves(sets, results)
    plot({**results, **extra}, HERE / "results" / "person_threshold_vm.png")
    data_info = {name: {"images": int(d["photos"]), "embedded": len(d["labels"]), "identities": len(np.unique(d["labels"])),
                        "embed_seconds": round(float(d["seconds"]), 1)} for name, d in sets.items()}
    run.write(HERE / "results" / "person_threshold_vm.json", {
        "data": data_info, "ytf_frames_per_video": args.ytf_frames or "all",
        "detector": "RetinaFace-MNet0.25, input 640, score >= 0.5, largest face per image (none for glint24_aligned)",
        "embeddings": {"student": "eDifFIQA student (bundled ONNX), 128-d, computed for every scored face",
                       "mobilefacenet": "foamliu MobileFaceNet (ONNX), 128-d, an extra model call",
                       "both": "student and MobileFaceNet, each L2-normalised, concatenated"},
        "splits": "identities halved per set (seed 0): choices on A, figures reported on B",
        **results, "plot": "benchmarks/results/person_threshold_vm.png"})
    print(json.dumps({"chosen": results["chosen"], "embedding_on_A": results["embedding_on_A"],
                      "weighting": results["weighting_tar@far=0.01_on_A"]}, indent=1))
    for key, entry in results["operating_point"].items():
        print(key, entry["B"])
    for key, entry in results["linking"].items():
        print(key, entry)


if __name__ == "__main__":
    main()
