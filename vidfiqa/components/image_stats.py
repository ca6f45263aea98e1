"""Cheap image statistics of a face: sharpness, exposure, noise and compression.

Each is a plain measurement with a unit, not a learned score, computed on the part of the face
that carries identity (eyes to chin, cheek to cheek), so background and hair do not count:

* ``sharpness`` and ``exposure`` on the aligned crop (what the quality model and the matcher
  see: a face enlarged from a few pixels is blurry there, whatever its source);
* ``noise`` and ``compression`` on the face's own pixels in the decoded frame, before any
  resampling: resampling averages noise away and moves block edges off the codec's 8-pixel grid.

Definitions (``g``: grey levels 0-255 of the face region):

``sharpness``  fine detail over all detail: std(g - G1(g)) / std(g - G4(g)), Gs a Gaussian blur
               of sigma s pixels; 0..1, no unit.  A sharp face has about 0.3-0.5; blur and
               upscaling push it towards 0.  It does not depend on brightness or contrast.
``exposure``   log2 of the face region's mean linear light over a mid-grey face (18 % grey,
               grey level 118): stops (EV); clean photos of faces are at -1 .. +1.6 (median
               +0.7: skin is lighter than 18 % grey); below -1.5 too dark, above +1.5 too
               bright (components/reasons.py).
``noise``      robust estimate of the standard deviation of pixel noise, in grey levels: the
               median absolute response to Immerkaer's noise mask (a Laplacian difference that
               cancels smooth shading and straight edges), scaled to a Gaussian's sigma.
``compression`` blocking on the codec grid: mean pixel step across the 8-pixel block boundaries of
               the frame over the mean step inside the blocks, minus 1; 0 = no blocking, 0.5 =
               steps at block edges half again as large as elsewhere (JPEG, MPEG-2, H.264 at a low
               bitrate); clean photos -0.16 .. +0.2.  NaN when the face is too small to hold two
               blocks.
"""

from __future__ import annotations

import cv2
import numpy as np

# The aligned crop's inner face: rows from the eyebrows to below the mouth, columns cheek to
# cheek (ArcFace template: eyes at y 51.5, mouth corners at y 92, x 38-74).
INNER_ROWS = slice(36, 104)
INNER_COLS = slice(24, 88)
# The face's own pixels in the frame: the box's central part, at most this many pixels square.
NATIVE_FRACTION = 0.6
NATIVE_MAX = 96
BLOCK = 8

_MID_GREY_LINEAR = 0.18
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
# For Gaussian noise of sigma s the mask's response has sigma s * ||mask||_2 = 6 s, and the
# median of |N(0, 6 s)| is 0.6745 * 6 s.
_NOISE_SCALE = 1.0 / (0.6745 * 6.0)
_SRGB_TO_LINEAR = ((np.arange(256) / 255.0) ** 2.2).astype(np.float32)


def grey(image: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> float32 luma (H, W), 0..255 (BT.601 weights)."""
    if image.ndim == 2:
        return image.astype(np.float32)
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)


def sharpness(g: np.ndarray) -> float:
    fine = g - cv2.GaussianBlur(g, (0, 0), 1.0)
    coarse = g - cv2.GaussianBlur(g, (0, 0), 4.0)
    total = float(coarse.std())
    return float(fine.std()) / total if total > 1e-3 else 0.0


def exposure(g_uint8: np.ndarray) -> float:
    linear = float(_SRGB_TO_LINEAR[g_uint8].mean())
    return float(np.log2(max(linear, 1e-4) / _MID_GREY_LINEAR))


def noise(g: np.ndarray) -> float:
    if min(g.shape) < 3:
        return float("nan")
    response = cv2.filter2D(g, cv2.CV_32F, _IMMERKAER)[1:-1, 1:-1]
    return float(np.median(np.abs(response))) * _NOISE_SCALE


def compression(g: np.ndarray, x0: int, y0: int) -> float:
    """Blocking of ``g``, a region whose top-left pixel is frame pixel (x0, y0)."""
    h, w = g.shape
    if min(h, w) < 2 * BLOCK:
        return float("nan")
    dx = np.abs(np.diff(g, axis=1))  # step between columns j and j+1 (frame x0 + j | x0 + j + 1)
    dy = np.abs(np.diff(g, axis=0))
    on_x = (x0 + np.arange(w - 1) + 1) % BLOCK == 0
    on_y = (y0 + np.arange(h - 1) + 1) % BLOCK == 0
    across = np.concatenate([dx[:, on_x].ravel(), dy[on_y].ravel()])
    inside = np.concatenate([dx[:, ~on_x].ravel(), dy[~on_y].ravel()])
    base = float(inside.mean())
    # A flat region (a face crushed into single-colour blocks) has no steps inside the blocks.
    return float(across.mean()) / max(base, 0.25) - 1.0


def native_region(frame: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The central part of a face box, in frame pixels (no resampling), starting on the block
    grid, at most ``NATIVE_MAX`` square; with its top-left frame coordinates."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = min(min(x2 - x1, y2 - y1) * NATIVE_FRACTION, NATIVE_MAX)
    h, w = frame.shape[:2]
    left = max(0, int(round(cx - side / 2)))
    top = max(0, int(round(cy - side / 2)))
    right = min(w, int(round(cx + side / 2)))
    bottom = min(h, int(round(cy + side / 2)))
    return frame[top:bottom, left:right], left, top


def crop_statistics(crops: np.ndarray) -> np.ndarray:
    """(N, 2) sharpness, exposure of aligned uint8 RGB crops (N, 112, 112, 3)."""
    out = np.full((len(crops), 2), np.nan, np.float32)
    for i, crop in enumerate(crops):
        inner = np.ascontiguousarray(crop[INNER_ROWS, INNER_COLS])
        g8 = cv2.cvtColor(inner, cv2.COLOR_RGB2GRAY)
        out[i] = sharpness(g8.astype(np.float32)), exposure(g8)
    return out


def frame_statistics(frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, 2) noise, compression of each box's own pixels in a uint8 RGB frame."""
    out = np.full((len(boxes), 2), np.nan, np.float32)
    for i, box in enumerate(boxes):
        region, left, top = native_region(frame, box)
        if region.size == 0:
            continue
        g = grey(region)
        out[i] = noise(g), compression(g, left, top)
    return out
