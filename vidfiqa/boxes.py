"""Box geometry every stage shares: IoU, non-maximum suppression, square regions around boxes,
cutting regions out of a frame and mapping what a detector found in them back to the frame,
and L2 normalisation of embedding rows.

Boxes are float ``x1, y1, x2, y2`` in pixels (the :class:`~vidfiqa.faces.Faces` convention).
A *region* is a square ``(x, y, side)`` in frame pixels that may extend past the frame; cutting
it out pads with the border colour, so a face at the edge keeps its place in the patch.
This module imports nothing of vidfiqa but :mod:`vidfiqa.faces`.
"""

from __future__ import annotations

import math

import cv2
import numba
import numpy as np

from .faces import Faces


# --------------------------------------------------------------------------- overlap
@numba.njit(cache=True)
def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros((a.shape[0], b.shape[0]))
    for i in range(a.shape[0]):
        area_a = max(a[i, 2] - a[i, 0], 0.0) * max(a[i, 3] - a[i, 1], 0.0)
        for j in range(b.shape[0]):
            iw = min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0])
            ih = min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1])
            if iw <= 0.0 or ih <= 0.0:
                continue
            inter = iw * ih
            area_b = max(b[j, 2] - b[j, 0], 0.0) * max(b[j, 3] - b[j, 1], 0.0)
            out[i, j] = inter / max(area_a + area_b - inter, 1e-9)
    return out


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (A, 4) with every box in ``b`` (B, 4): float64 (A, B).

    Compiled with numba because the tracker calls it on every frame; inputs are cast to one dtype
    and layout so that a single compiled version serves all callers.
    """
    a = np.ascontiguousarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.ascontiguousarray(b, dtype=np.float64).reshape(-1, 4)
    return _iou_matrix(a, b)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, limit: int | None = None) -> np.ndarray:
    """Greedy non-maximum suppression; returns the kept indices, most confident first.

    A box is suppressed when its IoU with a kept, more confident box exceeds ``iou_threshold``.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    limit = len(order) if limit is None else int(limit)
    keep: list[int] = []
    while order.size and len(keep) < limit:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        order = rest[iou_matrix(boxes[i : i + 1], boxes[rest])[0] <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


# --------------------------------------------------------------------------- regions
def square_regions(boxes: np.ndarray, scale: float, min_side: float = 16.0) -> np.ndarray:
    """Square regions ``(x, y, side)`` centred on the boxes, ``scale`` times their longer side
    (at least ``min_side``); they may extend past the frame."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    side = np.maximum(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * scale, min_side)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return np.stack([cx - side / 2, cy - side / 2, side], axis=1)


def cut_regions(frame: np.ndarray, regions: np.ndarray, size: int) -> list[np.ndarray]:
    """Each region of ``frame`` as a ``size`` x ``size`` patch; outside the frame repeats the
    border.  One affine warp crops, pads and resizes in a single pass."""
    patches = []
    for x, y, side in np.asarray(regions, np.float64).reshape(-1, 3):
        k = size / side
        matrix = np.array([[k, 0, -x * k], [0, k, -y * k]])
        patches.append(cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    return patches


def regions_to_frame(found: Faces, regions: np.ndarray, size: int, frame_shape: tuple[int, ...]) -> Faces:
    """Faces a detector found in the patches of :func:`cut_regions`, in frame pixels.

    ``found.frame_index`` must number the patches (0..R-1, as a detector numbers the images of one
    call); the result keeps that numbering, so callers still know each face's region.  Boxes are
    clipped to the frame; landmarks are not (a landmark may lie just outside it).
    """
    if len(found) == 0:
        return found
    regions = np.asarray(regions, np.float64).reshape(-1, 3)
    region = found.frame_index
    k = (regions[region, 2] / size).astype(np.float32)
    offset = regions[region, :2].astype(np.float32)
    boxes = found.boxes * k[:, None] + np.tile(offset, 2)
    h, w = frame_shape[:2]
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    return found.replace(boxes=boxes, landmarks=found.landmarks * k[:, None, None] + offset[:, None, :])


def context_view(frame: np.ndarray, box: np.ndarray, scale: float, max_size: int) -> np.ndarray:
    """A square view ``scale`` times the box's longer side around the face, at most ``max_size``
    pixels (never enlarged); outside the frame is black."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1, 1.0) * scale
    out = int(min(max_size, math.ceil(side)))
    k = out / side
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    matrix = np.array([[k, 0, out / 2 - cx * k], [0, k, out / 2 - cy * k]])
    return cv2.warpAffine(frame, matrix, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def window_to_frame(found: Faces, left: float, top: float) -> Faces:
    """Faces found in an unscaled crop ``frame[top:, left:]``, in frame pixels."""
    offset = np.array([left, top], np.float32)
    return found.replace(boxes=found.boxes + np.tile(offset, 2), landmarks=found.landmarks + offset)


# --------------------------------------------------------------------------- embeddings
def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows (last axis) of ``x`` scaled to unit L2 norm; zero rows stay zero.  float64 input
    stays float64, anything else becomes float32."""
    x = np.asarray(x)
    x = x.astype(np.float32, copy=False) if x.dtype != np.float64 else x
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)
