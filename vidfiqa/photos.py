"""Still photos through the face stages: load -> detect -> align (-> embed, -> score).

The loop is deliberately short: each stage is a plain object that takes and returns
:class:`~vidfiqa.faces.Faces`.  Photos are processed in chunks so memory stays bounded on
folders of any size, and a photo that cannot be read becomes a :class:`PhotoResult` with an
``error`` instead of stopping the batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from .align import CROP_SIZE, Aligner
from .detect import FaceDetector
from .errors import InputError
from .faces import Faces
from .imageio import DEFAULT_MAX_SIDE, LoadedImage, iter_image_paths, load_image

Stage = Callable[[Faces, dict], Faces]


@dataclass
class PhotoResult:
    """What happened to one input: its faces (coordinates in original-file pixels) or an error."""

    path: Path
    faces: Faces | None = None
    error: str | None = None
    size: tuple[int, int] | None = None  # (width, height) of the file

    @property
    def ok(self) -> bool:
        return self.error is None


class PhotoPipeline:
    """Compose detector, aligner and any further stages over image files.

    ``stages`` run after alignment, each called as ``stage(faces, frames)``; an embedder or a
    quality model fits there.  ``largest_only`` keeps one face per photo (identity datasets).
    ``aligned_input`` skips detection: every image is taken as an already aligned crop.
    ``pad`` adds a border of that fraction of the image size before detection, for tight face
    crops (a detector needs some context around a face); results are in unpadded coordinates.
    """

    def __init__(
        self,
        detector: FaceDetector | None,
        stages: Iterable[Stage] = (),
        largest_only: bool = False,
        aligned_input: bool = False,
        max_side: int = DEFAULT_MAX_SIDE,
        chunk_size: int = 32,
        pad: float = 0.0,
    ):
        if detector is None and not aligned_input:
            raise ValueError("a detector is needed unless inputs are aligned crops")
        self.detector = detector
        self.aligner = Aligner()
        self.stages = list(stages)
        self.largest_only = largest_only
        self.aligned_input = aligned_input
        self.max_side = max_side
        self.chunk_size = chunk_size
        self.pad = pad

    def run(self, inputs: Iterable[str | os.PathLike]) -> Iterator[PhotoResult]:
        """One result per input image, in input order (failures included, in their place)."""
        pending: list[LoadedImage | PhotoResult] = []  # a chunk, failures kept in their place
        loaded = 0
        for item in iter_image_paths(inputs):
            if isinstance(item, InputError):
                pending.append(PhotoResult(path=Path(item.path), error=str(item)))
            else:
                try:
                    pending.append(load_image(item, self.max_side))
                    loaded += 1
                except InputError as err:
                    pending.append(PhotoResult(path=item, error=str(err)))
            if loaded >= self.chunk_size:
                yield from self._flush(pending)
                pending, loaded = [], 0
        if pending:
            yield from self._flush(pending)

    def _flush(self, pending: list) -> Iterator[PhotoResult]:
        images = [p for p in pending if isinstance(p, LoadedImage)]
        done = iter(self._process(images)) if images else iter(())
        for item in pending:
            yield next(done) if isinstance(item, LoadedImage) else item

    def _process(self, images: list[LoadedImage]) -> Iterator[PhotoResult]:
        frames = {i: img.pixels for i, img in enumerate(images)}
        offsets = {i: (0, 0) for i in frames}
        if self.pad > 0 and not self.aligned_input:
            for i, px in frames.items():
                dy, dx = (int(round(self.pad * n)) for n in px.shape[:2])
                frames[i] = cv2.copyMakeBorder(px, dy, dy, dx, dx, cv2.BORDER_REPLICATE)
                offsets[i] = (dx, dy)
        if self.aligned_input:
            faces = self._aligned_faces(images)
            frames = {i: f.crops[0] for i, f in enumerate(faces)}
        else:
            assert self.detector is not None  # __init__ requires one unless aligned_input
            faces = self.detector.detect([frames[i] for i in range(len(images))])
            if self.largest_only:
                faces = faces.largest_per_frame()
            faces = self.aligner(faces, frames)
        for stage in self.stages:
            faces = stage(faces, frames)
        for i, img in enumerate(images):
            mine = faces.in_frame(i)
            if offsets[i] != (0, 0):
                mine = _shift(mine, np.asarray(offsets[i], np.float32))
            if not self.aligned_input and img.scale != 1.0:
                mine = _rescale(mine, img.scale)
            error = None if len(mine) else f"{img.path}: no face found"
            yield PhotoResult(path=img.path, faces=mine, error=error, size=img.original_size)

    def _aligned_faces(self, images: list[LoadedImage]) -> Faces:
        """Treat each image as a crop already on the ArcFace template (resized to 112 if needed)."""
        from .align import template

        parts = []
        for i, img in enumerate(images):
            crop = img.pixels
            if crop.shape[:2] != (CROP_SIZE, CROP_SIZE):
                crop = cv2.resize(crop, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_AREA)
            h, w = img.pixels.shape[:2]
            sx, sy = w / CROP_SIZE, h / CROP_SIZE
            landmarks = template() * [sx, sy]
            transform = np.array([[1 / sx, 0, 0], [0, 1 / sy, 0]], dtype=np.float32)
            parts.append(
                Faces.create(np.array([[0, 0, w, h]], np.float32), landmarks, np.ones(1, np.float32), frame_index=i, crops=crop[None], transforms=transform[None])
            )
        return Faces.concat(parts)


def _shift(faces: Faces, offset: np.ndarray) -> Faces:
    """Coordinates in a padded frame -> coordinates in the frame before padding."""
    transforms = None
    if faces.transforms is not None:
        transforms = faces.transforms.copy()
        transforms[:, :, 2] += transforms[:, :, :2] @ offset  # crop = M (p + offset)
    return faces.replace(boxes=faces.boxes - np.tile(offset, 2), landmarks=faces.landmarks - offset, transforms=transforms)


def embed_photos(paths, embedder, detector: FaceDetector | None, aligned_input: bool = False, pad: float = 0.0, batch: int = 64):
    """Embedding of the largest face of each photo; rows of photos without a face are NaN.

    Returns ``(embeddings (N, D) float32, found (N,) bool)`` in the order of ``paths``.
    """
    pipeline = PhotoPipeline(detector, stages=[embedder], largest_only=True, aligned_input=aligned_input, pad=pad, chunk_size=batch)
    index = {Path(p): i for i, p in enumerate(paths)}
    vectors: dict[int, np.ndarray] = {}
    for result in pipeline.run(paths):
        if result.faces is not None and len(result.faces):
            assert result.faces.embeddings is not None  # set by the embedder stage
            vectors[index[result.path]] = result.faces.embeddings[0]
    dim = len(next(iter(vectors.values()))) if vectors else 0
    out = np.full((len(paths), dim), np.nan, dtype=np.float32)
    for i, v in vectors.items():
        out[i] = v
    return out, np.isin(np.arange(len(paths)), list(vectors))


def _rescale(faces: Faces, scale: float) -> Faces:
    """Map coordinates of a downscaled working copy back to original-file pixels."""
    transforms = None
    if faces.transforms is not None:
        transforms = faces.transforms.copy()
        transforms[:, :, :2] /= scale  # frame->crop map now takes original-file pixels
    components = None
    if faces.components is not None:
        from .components.meter import INDEX

        components = faces.components.copy()
        components[:, INDEX["inter_eye_px"]] *= scale
        # Noise and blocking were measured on the shrunk copy, not on the file's own pixels.
        components[:, [INDEX["noise"], INDEX["compression"]]] = np.nan
    return faces.replace(boxes=faces.boxes * scale, landmarks=faces.landmarks * scale, transforms=transforms, components=components)
