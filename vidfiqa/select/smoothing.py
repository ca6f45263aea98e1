"""Temporal smoothing of a track's per-detection quality."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d, median_filter


def smooth_quality(quality: np.ndarray, window: int = 5, sigma: float = 1.0) -> np.ndarray:
    """A running median (removes one- and two-frame flicker: a spike or a dropout of up to
    ``window // 2`` detections), then a small Gaussian (evens out detector-jitter noise).

    Works along detections, not seconds: a track's detections are close to evenly spaced, and a
    miss of a few frames is not worth a time-aware filter.  NaN (unscored) entries are filled
    from their neighbours first and come back as NaN.  Edges use ``nearest`` padding so the first
    and last frames are not pulled towards zero.
    """
    q = np.asarray(quality, dtype=np.float64)
    out = np.full(q.shape, np.nan)
    valid = np.isfinite(q)
    if not valid.any():
        return out.astype(np.float32)
    positions = np.arange(len(q))
    filled = np.interp(positions, positions[valid], q[valid])
    if window > 1 and len(filled) > 1:
        filled = median_filter(filled, size=min(window, len(filled) | 1), mode="nearest")
    if sigma > 0 and len(filled) > 1:
        filled = gaussian_filter1d(filled, sigma, mode="nearest")
    out[valid] = filled[valid]
    return out.astype(np.float32)
