"""Scoring one video item: find the face in each frame, align it, rate it, embed it.

The worker holds the models (detector, quality method, FR model) and is built once per process
or per Ray actor; :meth:`RescoreWorker.process` turns one item into a table of per-frame rows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..align import Aligner
from ..boxes import window_to_frame
from ..errors import InputError
from ..faces import Faces
from .items import VideoItem

if TYPE_CHECKING:
    from ..quality.ediffiqa import EDifFIQA

DEVICE_METHODS = ("ediffiqa", "faceqan", "froq", "diffiqa")  # the methods that run a network
COLUMNS = ("video", "frame_index", "frame", "path", "pts", "detected", "x1", "y1", "x2", "y2", "detector_score", "quality", "embedding")


@dataclass(frozen=True)
class RescoreSettings:
    method: str = "ediffiqa"
    method_options: dict = field(default_factory=dict)
    embed: str = "student"  # "student" (the bundled eDifFIQA's own embedding), "none", or an FR model name
    weights: str | None = None  # FR model weights (see `vidfiqa models`)
    max_frames: int | None = None  # per video, evenly spaced (None: every frame)
    box_scale: float = 2.0  # YTF: the detector searches the labelled box scaled by this
    input_size: int = 640  # detector input for whole frames
    device: str = "cpu"
    batch_size: int = 32

    def to_dict(self) -> dict:
        return asdict(self)


class RescoreWorker:
    def __init__(self, settings: RescoreSettings):
        from ..detect import make_detector
        from ..quality import make_scorer

        self.s = settings
        self.detector = make_detector("retinaface", device=settings.device, input_size=settings.input_size, score_threshold=0.5, small_faces=True)
        self.box_detector = make_detector("retinaface", device=settings.device, input_size=320, score_threshold=0.3)
        self.aligner = Aligner()
        options = dict(settings.method_options)
        if settings.method in DEVICE_METHODS:
            options.setdefault("device", settings.device)
        self.scorer = make_scorer(settings.method, **options)
        self.student: EDifFIQA | None = None
        self.embedder = None
        if settings.embed == "student":
            from ..quality.ediffiqa import EDifFIQA

            if settings.method == "ediffiqa" and not settings.method_options and isinstance(self.scorer, EDifFIQA):
                self.student = self.scorer  # the scorer already is the student: no second copy
            else:
                self.student = EDifFIQA(device=settings.device)
        elif settings.embed != "none":
            from ..embed import make_embedder

            self.embedder = make_embedder(settings.embed, weights=settings.weights, backend="onnx" if settings.device == "cpu" else "torch")

    # ------------------------------------------------------------------ one item
    def process(self, item: VideoItem) -> dict[str, list]:
        """Per-frame rows (column -> list) for the chosen frames of ``item``."""
        frames = self._frames(item)
        rows: dict[str, list] = {c: [] for c in COLUMNS}
        found: list[Faces] = []
        images: dict[int, np.ndarray] = {}
        for position, (frame_number, path, pts, image, box) in enumerate(frames):
            face = self._face(image, box) if image is not None else Faces.empty()
            face = face.replace(frame_index=np.full(len(face), position))
            if len(face):
                found.append(face)
                images[position] = image
            rows["video"].append(item.key)
            rows["frame_index"].append(position)
            rows["frame"].append(int(frame_number))
            rows["path"].append(path)
            rows["pts"].append(float(pts))
            rows["detected"].append(bool(len(face)))
            for k, name in enumerate(("x1", "y1", "x2", "y2")):
                rows[name].append(float(face.boxes[0, k]) if len(face) else math.nan)
            rows["detector_score"].append(float(face.scores[0]) if len(face) else math.nan)
            rows["quality"].append(math.nan)
            rows["embedding"].append(None)
            if len(images) >= self.s.batch_size:
                self._score(Faces.concat(found), images, rows)
                found, images = [], {}
        if found:
            self._score(Faces.concat(found), images, rows)
        return rows

    def _score(self, faces: Faces, images: dict[int, np.ndarray], rows: dict[str, list]) -> None:
        faces = self.aligner(faces, images)
        assert faces.crops is not None  # the aligner sets them
        quality = np.asarray(self.scorer.score(faces.crops, faces), np.float64)
        embeddings: np.ndarray | None
        if self.student is not None:
            embeddings = self.student.score_and_embed(faces.crops)[1]
        elif self.embedder is not None:
            embeddings = self.embedder(faces).embeddings
        else:
            embeddings = None
        for i, position in enumerate(faces.frame_index):
            rows["quality"][position] = float(quality[i])
            if embeddings is not None:
                rows["embedding"][position] = np.asarray(embeddings[i], np.float32).tolist()

    def _face(self, image: np.ndarray, box) -> Faces:
        """The one face of a frame: inside the labelled box (YTF) or the largest one."""
        if box is None:
            return self.detector.detect([image]).largest_per_frame()
        x1, y1, x2, y2 = box
        cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * self.s.box_scale / 2
        h, w = image.shape[:2]
        left, top = int(max(0, cx - half)), int(max(0, cy - half))
        right, bottom = int(min(w, cx + half)), int(min(h, cy + half))
        if right - left < 8 or bottom - top < 8:
            return Faces.empty()
        found = self.box_detector.detect([np.ascontiguousarray(image[top:bottom, left:right])])
        if len(found) == 0:
            return found
        found = window_to_frame(found, left, top)
        # The labelled face, not a neighbour in the same window: the detection closest to its centre.
        centres = (found.boxes[:, :2] + found.boxes[:, 2:]) / 2
        return found[int(np.argmin(np.linalg.norm(centres - np.array([cx, cy]), axis=1)))]

    def _frames(self, item: VideoItem):
        """(frame number, path, pts, RGB image or None, labelled box) for the frames to score."""
        from ..imageio import load_image

        if item.kind in ("ytf", "frames"):
            chosen = _evenly(len(item.frames), self.s.max_frames)
            for i in chosen:
                try:
                    image = load_image(item.frames[i]).pixels  # YTF frames are small: never downscaled
                except InputError:
                    image = None  # an unreadable frame is a row without a face, not a failed video
                yield item.frame_numbers[i], item.frames[i], math.nan, image, item.boxes[i] if item.boxes else None
            return
        from ..video import open_source

        with open_source(item.path, decoder="pyav") as probe:
            count = probe.info.frame_count
        stride = max(1, math.ceil(count / self.s.max_frames)) if (self.s.max_frames and count) else 1
        taken = 0
        with open_source(item.path, decoder="pyav", stride=stride) as source:
            for frame in source:
                if self.s.max_frames and taken >= self.s.max_frames:
                    break
                taken += 1
                yield frame.index, item.path, frame.pts, frame.image, None


def _evenly(n: int, limit: int | None) -> list[int]:
    if not limit or n <= limit:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, limit).round().astype(int).tolist()))
