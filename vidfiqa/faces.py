"""The one face record every stage takes and returns.

:class:`Faces` holds *N* faces - from one image or from many frames of a video - as parallel
numpy arrays, in the spirit of ``supervision.Detections``: a detector creates it, alignment adds
crops, an embedder adds embeddings, a quality model adds quality, a tracker adds track ids.  A
stage never mutates its input; it returns a new ``Faces`` (``faces.replace(...)``) that shares
the untouched arrays.

Fields (row ``i`` of every array describes face ``i``):

==================  =======================  ==============================================
field               dtype, shape             meaning
==================  =======================  ==============================================
``boxes``           float32 (N, 4)           x1, y1, x2, y2 in source-frame pixels, sub-pixel
``landmarks``       float32 (N, 5, 2)        x, y of right eye, left eye, nose tip, right
                                             and left mouth corner, in image order (the
                                             subject's right eye is on the image's left),
                                             the order of the ArcFace template
``scores``          float32 (N,)             detector confidence in [0, 1]
``frame_index``     int64 (N,)               frame number in the video, or the position of
                                             the image in the batch it was detected in
``timestamp``       float64 (N,)             presentation time in seconds; NaN if unknown
``track_id``        int64 (N,)               tracker identity; -1 until a tracker sets it
``crops``           uint8 (N, 112, 112, 3)   aligned RGB crops, or None before alignment
``transforms``      float32 (N, 2, 3)        the similarity that maps frame pixels to crop
                                             pixels (``cv2.warpAffine`` convention); its
                                             inverse maps crop pixels back to the frame
``embeddings``      float32 (N, D)           face recognition embedding, or None
``quality``         float32 (N,)             face image quality (higher is better), or None
``face_quality``    float32 (N,)             the bundled student's quality when another
                                             method sets ``quality``: the scale that the
                                             absolute floors (``min_quality``, the face
                                             gate, identity votes) were calibrated on; None
                                             when ``quality`` is the student's
``components``      float32 (N, K)           quality components (``vidfiqa.components.NAMES``:
                                             pose, face size, sharpness, exposure, noise,
                                             compression, occlusion; NaN where unmeasured),
                                             or None
``context``         object (N,)              a wider RGB view (uint8 H x W x 3, sizes may
                                             differ) around each face, or its JPEG bytes
                                             (candidate pools keep it compressed), for
                                             galleries and events; or None
==================  =======================  ==============================================

Optional fields stay ``None`` until a stage fills them; later stages only add fields, so code
written against this record keeps working.  Coordinates always refer to the frame as decoded (not
to a resized detector input).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Iterable, Sequence

import numpy as np

# Field name -> (dtype, trailing shape). Used to validate, build empties and concatenate.
_REQUIRED = {
    "boxes": (np.float32, (4,)),
    "landmarks": (np.float32, (5, 2)),
    "scores": (np.float32, ()),
    "frame_index": (np.int64, ()),
    "timestamp": (np.float64, ()),
    "track_id": (np.int64, ()),
}
_OPTIONAL = {
    "crops": (np.uint8, None),  # (112, 112, 3) normally; crop size is the aligner's choice
    "transforms": (np.float32, (2, 3)),
    "embeddings": (np.float32, None),
    "quality": (np.float32, ()),
    "face_quality": (np.float32, ()),
    "components": (np.float32, None),  # (K,) with K = len(vidfiqa.components.NAMES)
    "context": (object, ()),  # one image per row; an object column because their sizes differ
}

IndexLike = int | slice | Sequence[int] | np.ndarray


def object_column(items: Sequence[object] | np.ndarray) -> np.ndarray:
    """A 1-D object array holding ``items`` as they are (``np.asarray`` would stack a list of
    equally shaped images into one 4-D array instead)."""
    if isinstance(items, np.ndarray) and items.dtype == object and items.ndim == 1:
        return items
    column = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        column[i] = item
    return column


@dataclass(frozen=True, eq=False)
class Faces:
    """N faces as parallel arrays; see the module docstring for the fields."""

    boxes: np.ndarray
    landmarks: np.ndarray
    scores: np.ndarray
    frame_index: np.ndarray
    timestamp: np.ndarray
    track_id: np.ndarray
    crops: np.ndarray | None = None
    transforms: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    quality: np.ndarray | None = None
    face_quality: np.ndarray | None = None
    components: np.ndarray | None = None
    context: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = None
        for name, (dtype, tail) in {**_REQUIRED, **_OPTIONAL}.items():
            value = getattr(self, name)
            if value is None:
                if name in _REQUIRED:
                    raise ValueError(f"Faces.{name} is required")
                continue
            arr = object_column(value) if dtype is object else np.ascontiguousarray(value, dtype=dtype)
            if tail is not None and arr.shape[1:] != tail:
                raise ValueError(f"Faces.{name} must have shape (N, {', '.join(map(str, tail))}); got {arr.shape}")
            if n is None:
                n = len(arr)
            elif len(arr) != n:
                raise ValueError(f"Faces.{name} has {len(arr)} rows, expected {n}")
            object.__setattr__(self, name, arr)

    # ----------------------------------------------------------------- construction
    @classmethod
    def create(
        cls,
        boxes: np.ndarray,
        landmarks: np.ndarray,
        scores: np.ndarray,
        frame_index: int | np.ndarray = 0,
        timestamp: float | np.ndarray = np.nan,
        track_id: int | np.ndarray = -1,
        **optional: np.ndarray | None,
    ) -> "Faces":
        """Build a record, broadcasting scalar frame index / timestamp / track id to all rows."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        n = len(boxes)
        return cls(
            boxes=boxes,
            landmarks=np.asarray(landmarks, dtype=np.float32).reshape(n, 5, 2),
            scores=np.asarray(scores, dtype=np.float32).reshape(n),
            frame_index=np.broadcast_to(np.asarray(frame_index, dtype=np.int64), (n,)),
            timestamp=np.broadcast_to(np.asarray(timestamp, dtype=np.float64), (n,)),
            track_id=np.broadcast_to(np.asarray(track_id, dtype=np.int64), (n,)),
            **optional,
        )

    @classmethod
    def empty(cls) -> "Faces":
        return cls.create(np.zeros((0, 4)), np.zeros((0, 5, 2)), np.zeros(0))

    @classmethod
    def concat(cls, parts: Iterable["Faces"]) -> "Faces":
        """Stack several records; an optional field survives only if every part has it."""
        parts = [p for p in parts if p is not None]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        non_empty = [p for p in parts if len(p)]
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in _REQUIRED:
                kwargs[f.name] = np.concatenate([getattr(p, f.name) for p in parts])
                continue
            # Empty parts carry no rows, so they must not veto an optional field.
            values = [getattr(p, f.name) for p in non_empty]
            ok = values and all(v is not None for v in values)
            kwargs[f.name] = np.concatenate(values) if ok else None
        return cls(**kwargs)

    # ----------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: IndexLike) -> "Faces":
        """Select rows (int, slice, index array or boolean mask); always returns ``Faces``."""
        rows = [int(index)] if isinstance(index, (int, np.integer)) else index
        kwargs: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            kwargs[f.name] = None if value is None else value[rows]
        return Faces(**kwargs)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    @property
    def floor_quality(self) -> np.ndarray | None:
        """The quality that absolute floors compare: ``face_quality`` when another method set
        ``quality``, else ``quality``."""
        return self.face_quality if self.face_quality is not None else self.quality

    def replace(self, **changes: Any) -> "Faces":
        """A new record with some fields replaced or added (the others are shared, not copied)."""
        return replace(self, **changes)

    def __repr__(self) -> str:
        present = [f.name for f in fields(self) if f.name in _OPTIONAL and getattr(self, f.name) is not None]
        return f"Faces(n={len(self)}, frames={np.unique(self.frame_index).size}, with={present})"

    # ----------------------------------------------------------------- derived quantities
    @property
    def widths(self) -> np.ndarray:
        return self.boxes[:, 2] - self.boxes[:, 0]

    @property
    def heights(self) -> np.ndarray:
        return self.boxes[:, 3] - self.boxes[:, 1]

    @property
    def areas(self) -> np.ndarray:
        return np.clip(self.widths, 0, None) * np.clip(self.heights, 0, None)

    @property
    def inter_eye_distance(self) -> np.ndarray:
        """Distance between the eye landmarks in frame pixels: the usual face-size measure."""
        return np.linalg.norm(self.landmarks[:, 1] - self.landmarks[:, 0], axis=1)

    def in_frame(self, frame_index: int) -> "Faces":
        return self[self.frame_index == frame_index]

    def largest_per_frame(self) -> "Faces":
        """Keep the face with the largest box in each frame (for one-face-per-photo datasets)."""
        if len(self) == 0:
            return self
        order = np.lexsort((-self.areas, self.frame_index))
        keep = order[np.r_[True, np.diff(self.frame_index[order]) != 0]]
        return self[np.sort(keep)]
