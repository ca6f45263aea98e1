"""Checks of every quality component (vidfiqa/components/), their cost, and detector variability.

    python benchmarks/components.py [--sections pose degradations occlusion cost] [--allow-load]
        -> benchmarks/results/components.json and components.md (README's table comes from it)

``pose``: yaw, pitch, roll from RetinaFace's landmarks on the 3,318 frames of
ytf_aligned_dev/headpose.csv, against the YouTube Faces authors' own estimate (another system's,
not ground truth; nothing here was fitted to it): Pearson and mean absolute error, raw and against
the reference's own 5-frame running median (its per-frame values jump: see the report).

``degradations``: held-apart people (the development split of the crop set: no person the student
or the occlusion head was trained on) of faces/ and celeba_wild/.  Each photo becomes a "frame":
the face and its surroundings scaled so that the eyes are 40 px apart (a face in a video frame,
the scale ``vidfiqa.degrade``'s levels are made for), then one degraded copy per kind at a seeded
level in 0.35..0.9 of degrade's severity, the whole frame degraded (JPEG and H.264 blocks on its
own grid).  Both copies are measured with the clean copy's landmarks.  AUC: a degraded copy's
component against every clean copy's (pooled over photos, so differences between people count);
"paired": the share of photos whose degraded copy is worse than its own clean one.

``occlusion``: the head's probability on the development people of rmfd_masked (real masks
against the same people's unmasked photos) and on synthetic occluders of the other sets.

``cost``: milliseconds per face of the component stage (the pipeline's own calls) on this CPU,
on the crowd clip's faces; timed sections refuse to start on a busy machine.

Detector variability has its own script (benchmarks/detector_variability.py); its results file is
summarised in the report.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
SHARED = Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared"))
CACHE = Path(os.environ.get("VIDFIQA_CACHE", Path.home() / ".cache" / "vidfiqa")) / "components"
RESULTS = REPO / "benchmarks" / "results"

PHOTO_SETS = ("faces", "celeba_wild")
FRAME_EYE_PX = 40.0
FRAME_SIZE = 192
LEVELS = (0.35, 0.9)
# kind -> (component, +1 when the kind raises it / -1 when it lowers it)
EXPECTED = {
    "blur": ("sharpness", -1), "motion_blur": ("sharpness", -1), "defocus": ("sharpness", -1), "downscale": ("sharpness", -1),
    "low_light": ("exposure", -1), "overexposure": ("exposure", +1),
    "noise": ("noise", +1), "sensor_noise": ("noise", +1),
    "jpeg": ("compression", +1), "h264": ("compression", +1),
    "occlusion": ("occlusion", +1),
}


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(positive > negative) + P(tie) / 2 (Mann-Whitney), NaNs dropped."""
    from scipy.stats import rankdata

    positive, negative = positive[np.isfinite(positive)], negative[np.isfinite(negative)]
    if len(positive) == 0 or len(negative) == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([positive, negative]))
    return float((ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2) / (len(positive) * len(negative)))


def best_threshold(degraded: np.ndarray, clean: np.ndarray, sign: int) -> dict:
    """The threshold that best separates degraded from clean copies (Youden's J: true-positive
    rate minus false-positive rate), with both rates."""
    d, c = degraded[np.isfinite(degraded)] * sign, clean[np.isfinite(clean)] * sign
    if len(d) == 0 or len(c) == 0:
        return {}
    candidates = np.unique(np.concatenate([d, c]))
    tpr = np.array([(d >= t).mean() for t in candidates])
    fpr = np.array([(c >= t).mean() for t in candidates])
    best = int(np.argmax(tpr - fpr))
    return {"value": round(float(candidates[best] * sign), 3), "degraded_flagged": round(float(tpr[best]), 3), "clean_flagged": round(float(fpr[best]), 3)}


# --------------------------------------------------------------------------- pose
def running_median(values: np.ndarray, groups: np.ndarray, half: int = 2) -> np.ndarray:
    out = np.full_like(values, np.nan)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        x = values[rows]
        for j, row in enumerate(rows):
            window = x[max(0, j - half): j + half + 1]
            if np.isfinite(window).any():
                out[row] = np.nanmedian(window)
    return out


def ytf_landmarks() -> dict:
    """RetinaFace's landmarks on the headpose frames (cached)."""
    path = CACHE / "ytf_headpose_landmarks.npz"
    root = SHARED / "data" / "ytf_aligned_dev"
    rows = list(csv.DictReader(open(root / "headpose.csv", newline="")))
    if not path.is_file():
        from vidfiqa.detect import make_detector
        from vidfiqa.photos import PhotoPipeline

        pipe = PhotoPipeline(make_detector("retinaface"), largest_only=True, pad=0.3)
        landmarks = np.full((len(rows), 5, 2), np.nan, np.float32)
        for i, result in enumerate(pipe.run([root / r["path"] for r in rows])):
            if result.ok and result.faces is not None and len(result.faces):
                landmarks[i] = result.faces.landmarks[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, landmarks=landmarks)
    landmarks = np.load(path)["landmarks"]

    def column(name: str) -> np.ndarray:
        return np.array([float(r[name]) if r[name] else np.nan for r in rows])

    return {"landmarks": landmarks, "video": np.array([r["video"] for r in rows]), "yaw": column("yaw"), "pitch": column("pitch"),
            "roll": column("roll"), "slack": column("frame_offset_slack")}


def agreement(estimate: np.ndarray, reference: np.ndarray) -> dict:
    m = np.isfinite(estimate) & np.isfinite(reference)
    e, r = estimate[m], reference[m]
    return {"frames": int(m.sum()), "pearson": round(float(np.corrcoef(e, r)[0, 1]), 3), "mae_deg": round(float(np.abs(e - r).mean()), 1),
            "bias_deg": round(float((e - r).mean()), 1)}


def check_pose() -> dict:
    from vidfiqa.components.pose import head_pose

    data = ytf_landmarks()
    pose = head_pose(data["landmarks"])
    video = data["video"]
    out: dict = {"reference": "YouTube Faces headpose_DB (the dataset authors' per-frame estimate), 55 videos of ytf_aligned_dev"}
    for i, name in enumerate(("yaw", "pitch")):
        ref = data[name]
        smooth = running_median(ref, video)
        jumps = np.concatenate([np.abs(np.diff(ref[video == v])) for v in np.unique(video)])
        ours = np.concatenate([np.abs(np.diff(pose[video == v, i])) for v in np.unique(video)])
        out[name] = {
            "raw": agreement(pose[:, i], ref),
            "reference_median5": agreement(pose[:, i], smooth),
            "reference_jumps_over_20deg": round(float(np.nanmean(jumps > 20)), 3),
            "estimate_jumps_over_20deg": round(float(np.nanmean(ours > 20)), 3),
        }
    # Roll: these crops were aligned by the dataset (roll mostly undone in the pixels), so only
    # its spread is reported.
    out["roll"] = {"median_abs_deg": round(float(np.nanmedian(np.abs(pose[:, 2]))), 1)}
    # Known-pose frames for the tests: strongly turned either way according to the smoothed reference.
    smooth_yaw = running_median(data["yaw"], video)
    out["frames_found"] = int(np.isfinite(pose[:, 0]).sum())
    out["turned_right_frames"] = int((smooth_yaw > 35).sum())
    out["turned_left_frames"] = int((smooth_yaw < -35).sum())
    return out


# --------------------------------------------------------------------------- photos -> frames
def photo_frames() -> dict:
    """The held-apart people's photos as 192 x 192 frames with the eyes 40 px apart (cached)."""
    path = CACHE / "photo_frames.npz"
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    import cv2

    from vidfiqa.datasets import read_identity_csv
    from vidfiqa.detect import make_detector
    from vidfiqa.photos import PhotoPipeline
    from vidfiqa.train.cropset import split_of

    pipe = PhotoPipeline(make_detector("retinaface"), largest_only=True)
    frames, landmarks, boxes, names, people = [], [], [], [], []
    for source in PHOTO_SETS:
        ids = read_identity_csv(SHARED / "data" / source / "identities.csv")
        keep = [i for i, who in enumerate(ids.identities) if split_of(f"{source}:{who}") == "dev"]
        ids = ids.subset(keep)
        from vidfiqa.imageio import load_image

        for path_i, result in zip(ids.paths, pipe.run(ids.paths)):
            if not result.ok or result.faces is None or len(result.faces) == 0:
                continue
            face = result.faces[0]
            eye = float(face.inter_eye_distance[0])
            if eye < 20:  # too small to be shown at 40 px without inventing detail
                continue
            image = load_image(path_i, max_side=1 << 16).pixels  # original pixels: the coordinates are in them
            k = FRAME_EYE_PX / eye
            centre = face.landmarks[0].mean(axis=0)
            matrix = np.array([[k, 0, FRAME_SIZE / 2 - k * centre[0]], [0, k, FRAME_SIZE / 2 - k * centre[1]]])
            frames.append(cv2.warpAffine(image, matrix, (FRAME_SIZE, FRAME_SIZE), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT))
            landmarks.append(face.landmarks[0] * k + matrix[:, 2])
            boxes.append((face.boxes[0].reshape(2, 2) * k + matrix[:, 2]).ravel())
            names.append(f"{source}/{Path(path_i).relative_to(SHARED / 'data' / source)}")
            people.append(f"{source}:{ids.identities[ids.paths.index(path_i)]}")
    out = {"frames": np.array(frames, np.uint8), "landmarks": np.array(landmarks, np.float32), "boxes": np.array(boxes, np.float32),
           "names": np.array(names), "people": np.array(people)}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path.with_suffix(".tmp.npz"), **out)
    path.with_suffix(".tmp.npz").replace(path)
    return out


def measure_frames(frames: np.ndarray, landmarks: np.ndarray, boxes: np.ndarray, meter, student) -> np.ndarray:
    """Components of one face per frame, found at the given landmarks."""
    from vidfiqa.align import Aligner
    from vidfiqa.faces import Faces

    rows = []
    aligner = Aligner()
    for frame, lm, box in zip(frames, landmarks, boxes):
        faces = aligner(Faces.create(box[None], lm[None], [1.0]), [frame])
        _, embedding = student.score_and_embed(faces.crops)
        rows.append(meter(faces.replace(embeddings=embedding), frame)[0].components[0])
    return np.array(rows, np.float32)


def check_degradations() -> dict:
    from vidfiqa import degrade
    from vidfiqa.components import NAMES, ComponentMeter
    from vidfiqa.quality.ediffiqa import EDifFIQA

    data = photo_frames()
    meter, student = ComponentMeter(), EDifFIQA(threads=1)
    clean = measure_frames(data["frames"], data["landmarks"], data["boxes"], meter, student)
    out: dict = {"photos": int(len(clean)), "people": int(len(np.unique(data["people"]))), "clean_percentiles": {}, "kinds": {}}
    for j, name in enumerate(NAMES):
        v = clean[:, j][np.isfinite(clean[:, j])]
        if len(v):
            out["clean_percentiles"][name] = {p: round(float(np.percentile(v, p)), 3) for p in (2, 10, 50, 90, 98)}
    for kind, (component, sign) in EXPECTED.items():
        rng = np.random.default_rng(zlib.crc32(kind.encode()))
        degraded_frames = []
        for frame in data["frames"]:
            spec = degrade._sample_one(kind, rng, float(rng.uniform(*LEVELS)))
            degraded_frames.append(degrade.apply(frame, spec))
        degraded = measure_frames(np.array(degraded_frames), data["landmarks"], data["boxes"], meter, student)
        per_component = {}
        for j, name in enumerate(NAMES):
            if name in ("yaw", "pitch", "roll", "inter_eye_px"):
                continue  # the same landmarks: unchanged by construction
            s = 1 if name != component else sign
            d, c = degraded[:, j] * s, clean[:, j] * s
            paired = np.isfinite(d) & np.isfinite(c)
            per_component[name] = {"auc": round(auc(d, c), 3), "paired": round(float(np.mean(d[paired] > c[paired])), 3) if paired.any() else None}
        j = NAMES.index(component)
        out["kinds"][kind] = {"component": component, "direction": "higher" if sign > 0 else "lower", **per_component[component],
                              "clean_median": round(float(np.nanmedian(clean[:, j])), 3), "degraded_median": round(float(np.nanmedian(degraded[:, j])), 3),
                              "best_threshold": best_threshold(degraded[:, j], clean[:, j], sign),
                              "all_components_auc": {k: v["auc"] for k, v in per_component.items()}}
        print(f"{kind:14s} {component:12s} AUC {per_component[component]['auc']:.3f} paired {per_component[component]['paired']}", flush=True)
    return out


def check_occlusion() -> dict:
    """The occlusion head on the development people of the crop set (the same examples
    training/train_occlusion_head.py builds; it trained on the others)."""
    sys.path.insert(0, str(REPO / "training"))
    from train_occlusion_head import embeddings, examples

    from vidfiqa.components.occlusion import OcclusionHead

    crops, labels, dev, kinds, _ = examples()
    p = OcclusionHead.load()(embeddings(crops))
    kinds_arr = np.array(kinds)
    masks, unmasked = dev & (kinds_arr == "mask"), dev & (kinds_arr == "unmasked")
    occluded, clear = dev & (kinds_arr == "occlusion"), dev & np.isin(kinds_arr, ["clean", "degraded"])
    degraded = dev & (kinds_arr == "degraded")
    return {
        "people": "development split of the crop set (no person the head or the student was trained on)",
        "rmfd_mask_vs_unmasked_auc": round(auc(p[masks], p[unmasked]), 3), "masks": int(masks.sum()), "unmasked": int(unmasked.sum()),
        "synthetic_occluder_vs_not_auc": round(auc(p[occluded], p[clear]), 3), "occluded": int(occluded.sum()), "not_occluded": int(clear.sum()),
        "mask_median": round(float(np.median(p[masks])), 3), "unmasked_median": round(float(np.median(p[unmasked])), 3),
        "degraded_not_occluded_median": round(float(np.median(p[degraded])), 3),
        "share_over_0.5": {"masks": round(float((p[masks] > 0.5).mean()), 3), "unmasked": round(float((p[unmasked] > 0.5).mean()), 3),
                           "occluded": round(float((p[occluded] > 0.5).mean()), 3), "not_occluded": round(float((p[clear] > 0.5).mean()), 3)},
    }


COST_CLIPS = ("facenetpytorch_street_crowd.mp4", "liveportrait_d6.mp4", "ytf_Aaron_Guiel_5.avi")


def check_cost() -> dict:
    """Milliseconds per face of the component stage as the pipeline calls it (measure at
    alignment, occlusion after scoring), beside the student's own cost, on the faces of the
    shared clips' frames (one thread, as each pipeline stage gets on a busy box)."""
    import cv2

    from benchinfo import Run  # noqa: F401  (the load guard is checked by main)
    from vidfiqa.align import Aligner
    from vidfiqa.components import ComponentMeter
    from vidfiqa.detect import make_detector
    from vidfiqa.quality.ediffiqa import EDifFIQA
    from vidfiqa.video import open_source

    cv2.setNumThreads(1)
    detector, aligner = make_detector("retinaface", threads=1), Aligner()
    samples = []  # (frame, aligned faces)
    for clip in (SHARED / "data" / "videos" / name for name in COST_CLIPS):
        with open_source(str(clip)) as source:
            for k, frame in enumerate(source):
                if k % 15:
                    continue
                faces = detector.detect([frame.image])
                if len(faces):
                    samples.append((frame.image, aligner(faces, [frame.image])))
                if k >= 150:
                    break
    meter, student = ComponentMeter(), EDifFIQA(int8=True, threads=1)
    total_faces = sum(len(f) for _, f in samples)
    embedded = [f.replace(embeddings=student.score_and_embed(f.crops)[1]) for _, f in samples]
    timings: dict[str, list[float]] = {"measure": [], "occlusion": [], "student_int8": []}
    for _ in range(3):
        t0 = time.perf_counter()
        measured = [f.replace(components=meter.measure(f, image)) for (image, f) in samples]
        t1 = time.perf_counter()
        for f, e in zip(measured, embedded):
            meter.add_occlusion(f.replace(embeddings=e.embeddings))
        t2 = time.perf_counter()
        for _, f in samples:
            student.score_and_embed(f.crops)
        t3 = time.perf_counter()
        timings["measure"].append((t1 - t0) / total_faces * 1e3)
        timings["occlusion"].append((t2 - t1) / total_faces * 1e3)
        timings["student_int8"].append((t3 - t2) / total_faces * 1e3)
    sizes = np.concatenate([f.inter_eye_distance for _, f in samples])
    return {"faces": int(total_faces), "frames": len(samples), "inter_eye_px_median": round(float(np.median(sizes)), 1),
            "ms_per_face": {k: round(float(np.median(v)), 3) for k, v in timings.items()},
            "components_ms_per_face": round(float(np.median(timings["measure"]) + np.median(timings["occlusion"])), 3),
            "threads": 1}


VARIABILITY_FILES = {"shipped student": "detector_variability.json", "trained on jittered alignments (not shipped)": "detector_variability_student_jitter08.json"}


def detector_variability_summary() -> dict:
    """RetinaFace-vs-YuNet Spearman per set from benchmarks/detector_variability.py's results
    (that script measures it; this report carries the figures beside the components')."""
    out: dict = {}
    for label, name in VARIABILITY_FILES.items():
        path = RESULTS / name
        if not path.is_file():
            continue
        agreement = json.loads(path.read_text())["agreement"]
        out[label] = {"from": f"benchmarks/results/{name}",
                      "spearman_retinaface_vs_yunet": {group: entry["fp32"]["retinaface_vs_yunet"]["spearman"] for group, entry in agreement.items()},
                      "jitter_2pct_spearman": {group: entry["fp32"]["jitter_spearman_with_unjittered"]["0.02"]
                                               for group, entry in agreement.items()}}
    return out


def report(data: dict) -> str:
    """components.md: every component with its check (README's table is copied from it)."""
    lines = ["# Quality components: checks, cost, detector variability", "",
             f"Last run: `{data['command']}` ({data['started_utc']}; {data['machine'].get('cpu_model', '')}, {data['machine'].get('cpu_count')} cores); "
             "sections not rerun keep their figures, and each records when it ran (`run` in components.json). Method and data: the script's docstring.", ""]
    pose = data.get("pose")
    if pose:
        y, p = pose["yaw"], pose["pitch"]
        lines += ["## Head pose against the YouTube Faces authors' estimate (55 videos, 3,318 frames)", "",
                  "| | Pearson | MAE | bias | reference | Pearson | MAE |", "|---|---|---|---|---|---|---|",
                  f"| yaw | {y['raw']['pearson']} | {y['raw']['mae_deg']} deg | {y['raw']['bias_deg']} | its 5-frame median | {y['reference_median5']['pearson']} | {y['reference_median5']['mae_deg']} deg |",
                  f"| pitch | {p['raw']['pearson']} | {p['raw']['mae_deg']} deg | {p['raw']['bias_deg']} | its 5-frame median | {p['reference_median5']['pearson']} | {p['reference_median5']['mae_deg']} deg |",
                  "", f"Consecutive frames whose yaw jumps more than 20 deg: reference {y['reference_jumps_over_20deg']:.1%}, "
                  f"ours {y['estimate_jumps_over_20deg']:.1%} (pitch: {p['reference_jumps_over_20deg']:.1%} / {p['estimate_jumps_over_20deg']:.1%}).", ""]
    deg = data.get("degradations")
    if deg:
        lines += [f"## Degradations: clean vs degraded copies of the same photo ({deg['photos']} photos, {deg['people']} held-apart people)", "",
                  "| kind | component | AUC | paired | clean median | degraded median | best threshold (degraded / clean flagged) |",
                  "|---|---|---|---|---|---|---|"]
        for kind, k in deg["kinds"].items():
            t = k.get("best_threshold") or {}
            thr = f"{t['value']} ({t['degraded_flagged']:.0%} / {t['clean_flagged']:.0%})" if t else ""
            lines.append(f"| {kind} | {k['component']} ({k['direction']}) | {k['auc']} | {k['paired']} | {k.get('clean_median', '')} | "
                         f"{k.get('degraded_median', '')} | {thr} |")
        lines += ["", "AUC of every component per kind, degraded above clean (0.5: the kind leaves it alone; near 0: it lowers it):", "",
                  "| kind | " + " | ".join(next(iter(deg["kinds"].values()))["all_components_auc"]) + " |",
                  "|---|" + "---|" * len(next(iter(deg["kinds"].values()))["all_components_auc"])]
        for kind, k in deg["kinds"].items():
            lines.append(f"| {kind} | " + " | ".join(f"{v}" for v in k["all_components_auc"].values()) + " |")
        lines.append("")
    occ = data.get("occlusion")
    if occ:
        lines += ["## Occlusion (held-apart people of the crop set)", "",
                  f"- rmfd_masked, masked vs unmasked photos of the same people: AUC **{occ['rmfd_mask_vs_unmasked_auc']}** "
                  f"({occ['masks']} / {occ['unmasked']} photos; medians {occ['mask_median']} / {occ['unmasked_median']})",
                  f"- synthetic occluders vs clean and otherwise degraded crops: AUC {occ['synthetic_occluder_vs_not_auc']} "
                  f"({occ['occluded']} / {occ['not_occluded']})", f"- share above 0.5: {occ['share_over_0.5']}", ""]
    cost = data.get("cost")
    if cost:
        ms = cost["ms_per_face"]
        lines += ["## Cost per face (one thread)", "",
                  f"{cost['faces']} faces of {cost['frames']} frames of the shared clips (median {cost['inter_eye_px_median']} px between the eyes): "
                  f"components **{cost['components_ms_per_face']} ms** a face (measure {ms['measure']}, occlusion {ms['occlusion']}), "
                  f"beside the int8 student's {ms['student_int8']} ms. Load average at start: {cost['run']['load_average_start']}.", ""]
    variability = data.get("detector_variability")
    if variability:
        groups = list(next(iter(variability.values()))["spearman_retinaface_vs_yunet"])
        lines += ["## Detector variability: Spearman of the student's score, RetinaFace vs YuNet alignment", "",
                  "| student | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
        for label, v in variability.items():
            lines.append(f"| {label} | " + " | ".join(str(v["spearman_retinaface_vs_yunet"].get(g, "")) for g in groups) + " |")
        lines += ["", "Method, intervals, jitter, EDC and cost: " + ", ".join(f"`{v['from']}`" for v in variability.values()) + ".", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=["pose", "degradations", "occlusion", "cost"])
    parser.add_argument("--allow-load", action="store_true")
    args = parser.parse_args()
    from benchinfo import Run

    path = RESULTS / "components.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    run = Run("components.py", sys.argv[1:], timed="cost" in args.sections)
    checks = {"pose": check_pose, "degradations": check_degradations, "occlusion": check_occlusion, "cost": check_cost}
    results = {k: previous[k] for k in checks if k in previous}
    for section in args.sections:
        t0 = time.perf_counter()
        results[section] = checks[section]()
        results[section]["wall_s"] = round(time.perf_counter() - t0, 1)
        results[section]["run"] = {"started_utc": run.started.isoformat(timespec="seconds"), "load_average_start": run.load_start}
        print(f"{section}: {time.perf_counter() - t0:.0f} s", flush=True)
    results["detector_variability"] = detector_variability_summary()
    data = run.write(path, results)
    (RESULTS / "components.md").write_text(report(data))
    print(f"-> {RESULTS / 'components.md'}")


if __name__ == "__main__":
    main()
