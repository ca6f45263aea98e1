"""The set of aligned face crops our quality student learns from (and is evaluated on).

Built from ../shared/data only: the four identity-labelled photo sets, the YouTube Faces frames
(their labelled boxes pick the right detection), faces detected in the shared clips, and seeded
degraded copies of all of them.  The crops themselves are third-party data and stay out of the
repository: they are cached under ``$VIDFIQA_CACHE/trainset``.  Everything in the repository
refers to a crop by its *key* - ``<source>/<relative path>#<face>`` plus ``|<degradation
chain>`` for degraded copies - which recreates it exactly (``build`` is deterministic).

Identities are split into train and dev by a stable hash of the identity name, so the EDC
development set shares no person with the training set.

The input files are pinned: ``training/cropset_v1_inputs.sha256`` lists every file under
``<shared>/data`` that :func:`build` reads (identity CSVs and their photos, YouTube Faces label
files and the frames taken from them, the clips), with its sha256, in ``sha256sum`` format.
``build`` reads exactly those files - a video, label file or photo added to ../shared later is
ignored (and reported) - and refuses to run when a pinned file is missing or has changed, so the
same manifest always gives the same crop set.  :func:`write_inputs` writes a new manifest (a new
crop set version) from what is there now.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import degrade
from ..align import Aligner
from ..boxes import iou_matrix
from ..datasets import read_identity_csv
from ..faces import Faces
from ..photos import PhotoPipeline

# Source name -> how its photos are read (aligned crops skip detection; tight crops get a border).
IDENTITY_SETS: dict[str, dict[str, Any]] = {
    "faces": dict(aligned=False, pad=0.0),
    "celeba_wild": dict(aligned=False, pad=0.0),
    "glint24_aligned": dict(aligned=True, pad=0.0),
    "rmfd_masked": dict(aligned=False, pad=0.4),
}
DEV_PERCENT = 30  # share of identities held out for the development (EDC) set
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
# The pinned input files of crop set v1 (a repository file, next to the training scripts).
INPUTS_V1 = Path(__file__).resolve().parents[2] / "training" / "cropset_v1_inputs.sha256"


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
        if not isinstance(self.crops, list):  # a loaded set holds one array: grow it as a list
            self.crops = list(self.crops)
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
    assert face.crops is not None  # the photo pipeline aligns every face it returns
    eye = float("nan") if aligned else float(face.inter_eye_distance[0])
    score = float("nan") if aligned else float(face.scores[0])
    out.add(key, face.crops[0], identity, eye, score)


def add_identity_set(out: CropSet, data_root: Path, name: str, detector, progress=None, paths: list[Path] | None = None) -> None:
    """The photos of one identity set (``paths``: only these of its CSV's photos, in CSV order)."""
    how = IDENTITY_SETS[name]
    ids = read_identity_csv(data_root / name / "identities.csv")
    identity_of = {p: i for p, i in zip(ids.paths, ids.identities)}
    chosen = None if paths is None else set(paths)
    photos = ids.paths if chosen is None else [p for p in ids.paths if p in chosen]
    pipeline = PhotoPipeline(None if how["aligned"] else detector, largest_only=True, aligned_input=how["aligned"], pad=how["pad"])
    for result in pipeline.run(photos):
        if progress:
            progress()
        if result.faces is None or len(result.faces) == 0:
            continue
        rel = result.path.relative_to(data_root / name).as_posix()
        _add_faces(out, f"{name}/{rel}#0", result.faces, f"{name}:{identity_of[result.path]}", how["aligned"])


_YTF_LINE = re.compile(r"^(?P<path>[^,]+),[^,]*,(?P<cx>[-\d.]+),(?P<cy>[-\d.]+),(?P<w>[-\d.]+),(?P<h>[-\d.]+)")


def ytf_label_files(ytf_root: Path) -> list[Path]:
    """Every ``*.labeled_faces.txt`` of a YouTube Faces tree, sorted (what an unpinned build reads)."""
    return sorted((ytf_root / "frame_images_DB").glob("*.labeled_faces.txt"))


def ytf_frames(ytf_root: Path, label_files: list[Path], stride: int = 3):
    """(person, relative frame path, frame path, label match) of every ``stride``-th labelled frame
    that exists, in reading order."""
    for label_file in label_files:
        person = label_file.name.split(".")[0]
        lines = [m for m in map(_YTF_LINE.match, label_file.read_text().splitlines()) if m]
        for m in lines[::stride]:
            rel = m["path"].replace("\\", "/")
            path = ytf_root / "frame_images_DB" / rel
            yield person, rel, path, m


def add_ytf(out: CropSet, ytf_root: Path, detector, stride: int = 3, progress=None, label_files: list[Path] | None = None) -> None:
    """YouTube Faces frames: the detection that best overlaps the labelled box, every ``stride``-th frame
    (of ``label_files``; default: every label file of the tree)."""
    from ..imageio import load_image

    aligner = Aligner()
    for person, rel, path, m in ytf_frames(ytf_root, ytf_label_files(ytf_root) if label_files is None else label_files, stride):
        if progress:
            progress()
        if not path.is_file():
            continue
        frame = load_image(path).pixels
        faces = detector.detect([frame])
        if len(faces) == 0:
            continue
        cx, cy, w, h = (float(m[k]) for k in ("cx", "cy", "w", "h"))
        box = np.array([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]])
        overlap = iou_matrix(faces.boxes, box)[:, 0]
        best = int(np.argmax(overlap))
        if overlap[best] < 0.3:
            continue
        face = aligner(faces[best], {0: frame})
        _add_faces(out, f"ytf/{rel}#0", face, f"ytf:{person}", aligned=False)


def clip_files(videos_dir: Path) -> list[Path]:
    """The video files of a folder, sorted (what an unpinned build reads)."""
    return [v for v in sorted(videos_dir.glob("*")) if v.suffix.lower() in VIDEO_SUFFIXES]


def add_clips(out: CropSet, videos_dir: Path, detector, every: int = 15, min_eye: float = 12.0, progress=None,
              videos: list[Path] | None = None) -> None:
    """Faces detected in the shared clips (``videos``; default: every video of the folder); a clip
    that never shows two faces at once is one person."""
    import av

    aligner = Aligner()
    for video in clip_files(videos_dir) if videos is None else videos:
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


def add_degraded(clean: CropSet, copies: int = 1, seed: int = 0, kinds: tuple[str, ...] = degrade.KINDS) -> CropSet:
    """Clean crops plus ``copies`` seeded degraded copies of each (same identity), drawn from ``kinds``."""
    rng = np.random.default_rng(seed)
    out = CropSet(list(clean.keys), list(clean.crops), list(clean.identity), list(clean.eye_distance), list(clean.det_score))
    for i in range(len(clean)):
        for _ in range(copies):
            chain = degrade.sample(rng, kinds=kinds)
            text = degrade.chain_to_text(chain)
            out.add(f"{clean.keys[i]}|{text}", degrade.apply(clean.crops[i], chain), clean.identity[i], clean.eye_distance[i], clean.det_score[i])
    return out


# --------------------------------------------------------------------------- pinned inputs
class InputsChanged(ValueError):
    """A pinned input file of the crop set is missing or differs from the manifest."""


@dataclass
class Plan:
    """The files a build reads, by source, in reading order (absolute paths)."""

    data: Path
    identity_csvs: dict[str, Path]
    photos: dict[str, list[Path]]
    ytf_labels: list[Path]
    ytf_frames: list[Path]
    videos: list[Path]

    def files(self) -> list[str]:
        """Every file, relative to ``data`` (posix), in reading order, each once."""
        paths = []
        for name in IDENTITY_SETS:
            paths += [self.identity_csvs[name], *self.photos[name]]
        paths += self.ytf_labels + self.ytf_frames + self.videos
        return list(dict.fromkeys(p.relative_to(self.data).as_posix() for p in paths))


def plan(shared: Path, ytf_stride: int = 3, ytf_labels: list[Path] | None = None, videos: list[Path] | None = None) -> Plan:
    """What :func:`build` reads from ``<shared>/data``: the given label files and videos, or (None)
    whatever the folders hold now.  Needs only the CSVs and label files, not the images."""
    data = Path(shared) / "data"
    csvs = {name: data / name / "identities.csv" for name in IDENTITY_SETS}
    photos = {name: read_identity_csv(csvs[name]).paths for name in IDENTITY_SETS}
    ytf_root = data / "ytf_subset"
    labels = ytf_label_files(ytf_root) if ytf_labels is None else list(ytf_labels)
    frames = [path for _, _, path, _ in ytf_frames(ytf_root, labels, ytf_stride) if path.is_file()]
    return Plan(data, csvs, photos, labels, frames, clip_files(data / "videos") if videos is None else list(videos))


def read_inputs(path: Path = INPUTS_V1) -> tuple[dict[str, str], dict[str, str]]:
    """(settings, {relative path: sha256}) of a manifest: ``# key: value`` header lines, then
    ``sha256sum`` lines (``<hex>  <path relative to <shared>/data>``)."""
    path = Path(path)
    if not path.is_file():
        raise InputsChanged(f"crop set manifest {path} not found (pass inputs=None to build from whatever ../shared holds, unpinned)")
    settings, files = {}, {}
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep:
                settings[key.strip()] = value.strip()
        elif line.strip():
            digest, _, rel = line.partition("  ")
            files[rel] = digest
    return settings, files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_inputs(shared: Path, path: Path = INPUTS_V1, ytf_stride: int = 3, clip_every: int = 15) -> list[str]:
    """Pin what ``shared`` holds now: write the manifest of every file an unpinned build would read."""
    p = plan(shared, ytf_stride)
    files = p.files()
    lines = ["# vidfiqa crop set inputs: every file training/build_cropset.py reads, relative to <shared>/data",
             "# check by hand: cd ../shared/data && grep -v '^#' PATH_TO_THIS_FILE | sha256sum -c --quiet",
             f"# ytf_stride: {ytf_stride}", f"# clip_every: {clip_every}", f"# files: {len(files)}"]
    lines += [f"{_sha256(p.data / rel)}  {rel}" for rel in files]
    Path(path).write_text("\n".join(lines) + "\n")
    return files


@dataclass
class InputCheck:
    """How ``<shared>/data`` compares with a manifest."""

    pinned: list[str]  # the manifest's files, in its order
    planned: list[str]  # what build reads given the manifest's label files and videos
    missing: list[str]  # pinned but absent
    changed: list[str]  # pinned, present, other sha256
    unplanned: list[str]  # build would read these but they are not pinned (a CSV resolving differently)
    ignored: list[str]  # files an unpinned build would read now but the manifest does not list
    settings: dict[str, str]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.changed or self.unplanned)

    def problems(self, limit: int = 5) -> str:
        parts = []
        for what, items in (("missing", self.missing), ("changed", self.changed), ("not pinned but read", self.unplanned)):
            if items:
                parts.append(f"{len(items)} {what} (" + ", ".join(items[:limit]) + (", ..." if len(items) > limit else "") + ")")
        return "; ".join(parts)


def _pinned_labels_and_videos(data: Path, pinned) -> tuple[list[Path], list[Path]]:
    """The YouTube Faces label files and the clips a manifest lists (in its order)."""
    labels = [data / rel for rel in pinned if rel.startswith("ytf_subset/") and rel.endswith(".labeled_faces.txt")]
    return labels, [data / rel for rel in pinned if rel.startswith("videos/")]


def check_inputs(shared: Path, inputs: Path = INPUTS_V1, hashes: bool = True) -> InputCheck:
    """Compare ``<shared>/data`` with the manifest ``inputs`` (``hashes=False``: paths only)."""
    settings, pinned = read_inputs(inputs)
    data = Path(shared) / "data"
    stride = int(settings.get("ytf_stride", 3))
    labels, videos = _pinned_labels_and_videos(data, pinned)
    missing = [rel for rel in pinned if not (data / rel).is_file()]
    if any(rel.endswith("/identities.csv") for rel in missing):
        planned, ignored = [], []  # without its CSV a set cannot be planned; "missing" says why
    else:
        planned = plan(shared, stride, [p for p in labels if p.is_file()], [v for v in videos if v.is_file()]).files()
        ignored = [rel for rel in plan(shared, stride).files() if rel not in pinned]
    absent = set(missing)
    changed = [rel for rel in pinned if hashes and rel not in absent and _sha256(data / rel) != pinned[rel]]
    unplanned = [rel for rel in planned if rel not in pinned]
    return InputCheck(list(pinned), planned, missing, changed, unplanned, ignored, settings)


def build(shared: Path, copies: int = 1, seed: int = 0, ytf_stride: int = 3, clip_every: int = 15, log=print,
          inputs: Path | None = INPUTS_V1, camera_copies: int = 0) -> CropSet:
    """The full crop set from ../shared (deterministic for the same inputs, seed and settings).

    ``camera_copies``: that many more degraded copies of each clean crop, drawn from what cameras
    add (``degrade.CAMERA_KINDS``: H.264 blocking, sensor noise, defocus, over-exposure) with a
    generator of their own, so the crops of ``camera_copies = 0`` (crop set v1) are all still there.

    ``inputs``: the manifest of pinned input files (default: crop set v1's); ``build`` reads only
    those, and raises :class:`InputsChanged` before loading any model when one is missing or
    differs, or when ``ytf_stride`` / ``clip_every`` differ from the manifest's.  ``None`` reads
    whatever the folders hold now (unpinned).
    """
    from ..detect import RetinaFaceDetector

    shared = Path(shared)
    data = shared / "data"
    if inputs is not None:
        check = check_inputs(shared, inputs)
        for key, value in (("ytf_stride", ytf_stride), ("clip_every", clip_every)):
            if key in check.settings and int(check.settings[key]) != value:
                raise InputsChanged(f"{inputs}: pinned with {key} = {check.settings[key]}, build asked for {value}")
        if not check.ok:
            raise InputsChanged(f"{data} no longer holds the pinned inputs of {Path(inputs).name}: {check.problems()}. "
                                "A deliberate change is a new crop set: write a new manifest (training/build_cropset.py --write-inputs)")
        if check.ignored:
            log(f"ignoring {len(check.ignored)} files not pinned in {Path(inputs).name} (e.g. {', '.join(check.ignored[:3])})")
        log(f"inputs: all {len(check.pinned)} pinned files present and unchanged")
        p = plan(shared, ytf_stride, *_pinned_labels_and_videos(data, check.pinned))
        if set(p.files()) != set(check.pinned):  # check_inputs planned the same way; cannot differ
            raise InputsChanged(f"{data}: the files to read differ from {Path(inputs).name}")
    else:
        p = plan(shared, ytf_stride)
        log(f"inputs: unpinned, {len(p.files())} files as the folders hold them now")
    # Crop set v1 was built when the detector enlarged every photo to input_size: kept, so that
    # the pinned inputs still give the same crops (the product's front end no longer enlarges).
    detector = RetinaFaceDetector(input_size=640, upscale=True)
    clean = CropSet()
    for name in IDENTITY_SETS:
        add_identity_set(clean, data, name, detector, paths=p.photos[name])
        log(f"{name}: {len(clean)} crops so far")
    add_ytf(clean, data / "ytf_subset", RetinaFaceDetector(input_size=320, upscale=True), stride=ytf_stride, label_files=p.ytf_labels)
    log(f"ytf: {len(clean)} crops so far")
    add_clips(clean, data / "videos", detector, every=clip_every, videos=p.videos)
    log(f"clips: {len(clean)} clean crops")
    full = add_degraded(clean, copies=copies, seed=seed)
    log(f"with {copies} degraded cop{'y' if copies == 1 else 'ies'} each: {len(full)} crops")
    if camera_copies:
        camera = add_degraded(clean, copies=camera_copies, seed=seed + 1_000_003, kinds=degrade.CAMERA_KINDS)
        for i in range(len(clean), len(camera)):
            full.add(camera.keys[i], camera.crops[i], camera.identity[i], camera.eye_distance[i], camera.det_score[i])
        log(f"with {camera_copies} camera-degraded cop{'y' if camera_copies == 1 else 'ies'} each: {len(full)} crops")
    return full
