"""The set of aligned face crops our quality student learns from (and is evaluated on).

Built from ../shared/data only: the four identity-labelled photo sets, the YouTube Faces frames
(their labelled boxes pick the right detection), faces detected in the shared clips, and seeded
degraded copies of all of them.  The crops themselves are third-party data and stay out of the
repository: they are cached under ``$VIDFIQA_CACHE/trainset``.  Everything in the repository
refers to a crop by its *key* - ``<source>/<relative path>#<face>`` plus ``|<degradation
chain>`` for degraded copies - which recreates it exactly (``build`` is deterministic).

Identities are split into train and dev by a stable hash of the identity name, so the EDC
development set shares no person with the training set.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import degrade
from ..align import Aligner
from ..datasets import read_identity_csv
from ..faces import Faces
from ..photos import PhotoPipeline

# Source name -> how its photos are read (aligned crops skip detection; tight crops get a border).
IDENTITY_SETS = {
    "faces": dict(aligned=False, pad=0.0),
    "celeba_wild": dict(aligned=False, pad=0.0),
    "glint24_aligned": dict(aligned=True, pad=0.0),
    "rmfd_masked": dict(aligned=False, pad=0.4),
}
DEV_PERCENT = 30  # share of identities held out for the development (EDC) set


def split_of(identity: str) -> str:
    """'train' or 'dev', stable across machines and runs (not Python's salted hash)."""
    if not identity:
        return "train"
    h = int(hashlib.sha1(identity.encode()).hexdigest()[:8], 16)
    return "dev" if h % 100 < DEV_PERCENT else "train"


@dataclass
class CropSet:
    keys: list[str] = field(default_factory=list)
    crops: list[np.ndarray] | np.ndarray = field(default_factory=list)
    identity: list[str] = field(default_factory=list)  # "" when unknown (crowd clips)
    eye_distance: list[float] = field(default_factory=list)  # frame pixels; NaN for aligned sets
    det_score: list[float] = field(default_factory=list)  # NaN for aligned sets

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: str, crop: np.ndarray, identity: str, eye_distance: float, det_score: float) -> None:
        self.keys.append(key)
        self.crops.append(crop)
        self.identity.append(identity)
        self.eye_distance.append(float(eye_distance))
        self.det_score.append(float(det_score))

    @property
    def split(self) -> np.ndarray:
        return np.array([split_of(i) for i in self.identity])

    @property
    def degradation(self) -> list[str]:
        return [k.partition("|")[2] for k in self.keys]

    @property
    def parent_key(self) -> list[str]:
        return [k.partition("|")[0] for k in self.keys]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(
            tmp,
            keys=np.array(self.keys),
            crops=np.asarray(self.crops, dtype=np.uint8),
            identity=np.array(self.identity),
            eye_distance=np.array(self.eye_distance, np.float32),
            det_score=np.array(self.det_score, np.float32),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "CropSet":
        with np.load(path) as z:
            return cls(
                keys=[str(k) for k in z["keys"]],
                crops=z["crops"],
                identity=[str(i) for i in z["identity"]],
                eye_distance=list(z["eye_distance"]),
                det_score=list(z["det_score"]),
            )


def _add_faces(out: CropSet, key: str, faces: Faces, identity: str, aligned: bool) -> None:
    face = faces[0]
    eye = float("nan") if aligned else float(face.inter_eye_distance[0])
    score = float("nan") if aligned else float(face.scores[0])
    out.add(key, face.crops[0], identity, eye, score)


def add_identity_set(out: CropSet, data_root: Path, name: str, detector, progress=None) -> None:
    how = IDENTITY_SETS[name]
    ids = read_identity_csv(data_root / name / "identities.csv")
    identity_of = {p: i for p, i in zip(ids.paths, ids.identities)}
    pipeline = PhotoPipeline(None if how["aligned"] else detector, largest_only=True, aligned_input=how["aligned"], pad=how["pad"])
    for result in pipeline.run(ids.paths):
        if progress:
            progress()
        if result.faces is None or len(result.faces) == 0:
            continue
        rel = result.path.relative_to(data_root / name).as_posix()
        _add_faces(out, f"{name}/{rel}#0", result.faces, f"{name}:{identity_of[result.path]}", how["aligned"])


_YTF_LINE = re.compile(r"^(?P<path>[^,]+),[^,]*,(?P<cx>[-\d.]+),(?P<cy>[-\d.]+),(?P<w>[-\d.]+),(?P<h>[-\d.]+)")


def add_ytf(out: CropSet, ytf_root: Path, detector, stride: int = 3, progress=None) -> None:
    """YouTube Faces frames: the detection that best overlaps the labelled box, every ``stride``-th frame."""
    from ..imageio import load_image

    aligner = Aligner()
    for label_file in sorted((ytf_root / "frame_images_DB").glob("*.labeled_faces.txt")):
        person = label_file.name.split(".")[0]
        lines = [m for m in map(_YTF_LINE.match, label_file.read_text().splitlines()) if m]
        for m in lines[::stride]:
            if progress:
                progress()
            rel = m["path"].replace("\\", "/")
            path = ytf_root / "frame_images_DB" / rel
            if not path.is_file():
                continue
            frame = load_image(path).pixels
            faces = detector.detect([frame])
            if len(faces) == 0:
                continue
            cx, cy, w, h = (float(m[k]) for k in ("cx", "cy", "w", "h"))
            box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
            best = int(np.argmax(_iou(faces.boxes, box)))
            if _iou(faces.boxes[best : best + 1], box)[0] < 0.3:
                continue
            face = aligner(faces[best], {0: frame})
            _add_faces(out, f"ytf/{rel}#0", face, f"ytf:{person}", aligned=False)


def add_clips(out: CropSet, videos_dir: Path, detector, every: int = 15, min_eye: float = 12.0, progress=None) -> None:
    """Faces detected in the shared clips; a clip that never shows two faces at once is one person."""
    import av

    aligner = Aligner()
    for video in sorted(videos_dir.glob("*")):
        if video.suffix.lower() not in (".mp4", ".avi", ".mov", ".mkv"):
            continue
        found: list[tuple[str, Faces]] = []
        most = 0
        with av.open(str(video)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i % every:
                    continue
                if progress:
                    progress()
                rgb = frame.to_ndarray(format="rgb24")
                faces = detector.detect([rgb])
                faces = faces[(faces.scores > 0.8) & (faces.inter_eye_distance >= min_eye)]
                most = max(most, len(faces))
                if len(faces):
                    faces = aligner(faces, {0: rgb})
                    for j in range(len(faces)):
                        found.append((f"clips/{video.name}@{i}#{j}", faces[j]))
        identity = f"clip:{video.stem}" if most <= 1 else ""
        for key, face in found:
            _add_faces(out, key, face, identity, aligned=False)


def add_degraded(clean: CropSet, copies: int = 1, seed: int = 0) -> CropSet:
    """Clean crops plus ``copies`` seeded degraded copies of each (same identity)."""
    rng = np.random.default_rng(seed)
    out = CropSet(list(clean.keys), list(clean.crops), list(clean.identity), list(clean.eye_distance), list(clean.det_score))
    for i in range(len(clean)):
        for _ in range(copies):
            chain = degrade.sample(rng)
            text = degrade.chain_to_text(chain)
            out.add(f"{clean.keys[i]}|{text}", degrade.apply(clean.crops[i], chain), clean.identity[i], clean.eye_distance[i], clean.det_score[i])
    return out


def _iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    x1 = np.maximum(boxes[:, 0], box[0])
    y1 = np.maximum(boxes[:, 1], box[1])
    x2 = np.minimum(boxes[:, 2], box[2])
    y2 = np.minimum(boxes[:, 3], box[3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + (box[2] - box[0]) * (box[3] - box[1]) - inter, 1e-9)


def build(shared: Path, copies: int = 1, seed: int = 0, ytf_stride: int = 3, clip_every: int = 15, log=print) -> CropSet:
    """The full crop set from ../shared (deterministic for the same data, seed and settings)."""
    from ..detect import RetinaFaceDetector

    data = shared / "data"
    detector = RetinaFaceDetector(input_size=640)
    clean = CropSet()
    for name in IDENTITY_SETS:
        add_identity_set(clean, data, name, detector)
        log(f"{name}: {len(clean)} crops so far")
    add_ytf(clean, data / "ytf_subset", RetinaFaceDetector(input_size=320), stride=ytf_stride)
    log(f"ytf: {len(clean)} crops so far")
    add_clips(clean, data / "videos", detector, every=clip_every)
    log(f"clips: {len(clean)} clean crops")
    full = add_degraded(clean, copies=copies, seed=seed)
    log(f"with {copies} degraded cop{'y' if copies == 1 else 'ies'} each: {len(full)} crops")
    return full
