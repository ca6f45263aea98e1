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
        out["kinds"][kind] = {"component": component, "direction": "higher" if sign > 0 else "lower", **per_component[component],
                              "all_components_auc": {k: v["auc"] for k, v in per_component.items()}}
        print(f"{kind:14s} {component:12s} AUC {per_component[component]['auc']:.3f} paired {per_component[component]['paired']}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=["pose", "degradations", "occlusion", "cost"])
    parser.add_argument("--allow-load", action="store_true")
    args = parser.parse_args()
    path = RESULTS / "components.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    for section in args.sections:
        t0 = time.perf_counter()
        results[section] = {"check_pose": check_pose, "check_degradations": check_degradations}[f"check_{section}"]()
        print(f"{section}: {time.perf_counter() - t0:.0f} s", flush=True)
        print(json.dumps(results[section], indent=1)[:3000])


if __name__ == "__main__":
    main()
