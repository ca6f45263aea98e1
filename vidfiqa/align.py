"""Five-point similarity alignment onto the 112x112 ArcFace template.

Every FR backbone and FIQA model in vidfiqa expects faces warped so that the eyes, nose tip and
mouth corners land on the ArcFace template.  The least-squares similarity (rotation, uniform
scale, translation) is solved for all faces at once in closed form (Umeyama, 1991), vectorised
over the batch; only the pixel warping itself is per face (``cv2.warpAffine``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import cv2
import numpy as np

from .faces import Faces

CROP_SIZE = 112
# Right eye, left eye, nose tip, right mouth corner, left mouth corner (image order), 112x112.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def template(size: int = CROP_SIZE) -> np.ndarray:
    """The ArcFace template scaled to a ``size`` x ``size`` crop."""
    return ARCFACE_TEMPLATE * (size / CROP_SIZE)


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transforms mapping ``src`` points onto ``dst``.

    ``src``: (N, K, 2) or (K, 2); ``dst``: (K, 2) or (N, K, 2).  Returns (N, 2, 3) float64
    matrices ``M`` with ``dst ~= M[:, :2] @ src + M[:, 2]`` (the ``cv2.warpAffine`` convention).
    Reflections are excluded, as a mirrored face is not the same face.
    """
    src = np.asarray(src, dtype=np.float64)
    single = src.ndim == 2
    src = src[None] if single else src
    dst = np.broadcast_to(np.asarray(dst, dtype=np.float64), src.shape)
    k = src.shape[1]
    src_mean, dst_mean = src.mean(axis=1, keepdims=True), dst.mean(axis=1, keepdims=True)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = np.einsum("nki,nkj->nij", dst_c, src_c) / k  # (N, 2, 2)
    u, sigma, vt = np.linalg.svd(cov)
    # Flip the last singular direction where the best orthogonal map would be a reflection.
    d = np.ones((len(src), 2))
    d[:, 1] = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    d[d == 0] = 1.0
    rotation = u @ (d[:, :, None] * vt)
    src_var = (src_c**2).sum(axis=(1, 2)) / k
    scale = (sigma * d).sum(axis=1) / np.maximum(src_var, 1e-12)
    linear = scale[:, None, None] * rotation
    shift = dst_mean[:, 0, :] - np.einsum("nij,nj->ni", linear, src_mean[:, 0, :])
    return np.concatenate([linear, shift[:, :, None]], axis=2)


def invert_transforms(matrices: np.ndarray) -> np.ndarray:
    """Inverse of (N, 2, 3) affine maps: crop pixels -> frame pixels."""
    matrices = np.asarray(matrices, dtype=np.float64)
    single = matrices.ndim == 2
    m = matrices[None] if single else matrices
    inv_linear = np.linalg.inv(m[:, :, :2])
    inv_shift = -np.einsum("nij,nj->ni", inv_linear, m[:, :, 2])
    out = np.concatenate([inv_linear, inv_shift[:, :, None]], axis=2)
    return out[0] if single else out


def apply_transforms(matrices: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply (N, 2, 3) maps to (N, K, 2) points (e.g. crop landmarks back onto the frame)."""
    matrices = np.asarray(matrices, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    return np.einsum("nij,nkj->nki", matrices[:, :, :2], points) + matrices[:, None, :, 2]


def warp_crop(frame: np.ndarray, matrix: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    # Replicating the border (not black) keeps faces cut by the frame edge from gaining a
    # high-contrast edge that FR and FIQA models would read as image content.
    return cv2.warpAffine(frame, np.asarray(matrix, dtype=np.float64), (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class Aligner:
    """Stage: ``Faces`` + their frames -> ``Faces`` with ``crops`` and ``transforms``.

    ``frames`` maps ``frame_index`` to the RGB frame (a dict, or a list indexed by position).
    """

    def __init__(self, size: int = CROP_SIZE):
        self.size = size
        self._template = template(size)

    def transforms(self, faces: Faces) -> np.ndarray:
        if len(faces) == 0:
            return np.zeros((0, 2, 3), dtype=np.float32)
        return estimate_similarity(faces.landmarks, self._template).astype(np.float32)

    def __call__(self, faces: Faces, frames: Mapping[int, np.ndarray] | Sequence[np.ndarray]) -> Faces:
        matrices = self.transforms(faces)
        crops = np.empty((len(faces), self.size, self.size, 3), dtype=np.uint8)
        for i, (frame_index, matrix) in enumerate(zip(faces.frame_index, matrices)):
            crops[i] = warp_crop(frames[int(frame_index)], matrix, self.size)
        return faces.replace(crops=crops, transforms=matrices)


def jittered_crops(crops: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Aligned crops re-aligned as if the detector had put each landmark elsewhere: every
    template point moved by Gaussian noise of ``sigma`` times the template's eye distance (per
    coordinate), the similarity from the moved points to the template solved as alignment
    does, and the crop warped by it (borders mirrored).  What another detector, or the same one
    on the next frame, does to a crop; the student learns to score both alike (training)."""
    crops = np.asarray(crops, dtype=np.uint8)
    if sigma <= 0 or len(crops) == 0:
        return crops.copy()
    size = crops.shape[1]
    points = template(size)
    eye = float(np.linalg.norm(points[1] - points[0]))
    moved = points[None] + rng.normal(0.0, sigma * eye, (len(crops), *points.shape))
    matrices = estimate_similarity(moved, points)
    out = np.empty_like(crops)
    for i, (crop, matrix) in enumerate(zip(crops, matrices)):
        out[i] = cv2.warpAffine(crop, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return out


def align(frame: np.ndarray, landmarks: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Convenience: aligned crops (N, size, size, 3) of the faces with ``landmarks`` in one frame."""
    landmarks = np.asarray(landmarks, dtype=np.float64).reshape(-1, 5, 2)
    matrices = estimate_similarity(landmarks, template(size))
    return np.stack([warp_crop(frame, m, size) for m in matrices]) if len(matrices) else np.zeros((0, size, size, 3), np.uint8)
