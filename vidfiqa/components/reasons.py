"""Components in words, and the limits selection may put on them.

:func:`reasons` says why one face is poor ("turned away: yaw 64 deg", "too dark", "face 9 px
between the eyes"); the page shows it for a track with no usable frame and for rejected tracks.
The word thresholds describe a face; they select nothing.  The image statistics' thresholds are
where clean and degraded copies of the same held-apart photos separate best
(benchmarks/components.py, ``thresholds`` in its results file, rounded); pose and size use the
usual limits of face recognition practice.

:class:`ComponentLimits` is what a user may require of a pick (``max_yaw``, ``max_pitch``,
``min_inter_eye_px``: settings, presets and stream keys); all off by default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .meter import INDEX

TURNED_DEG = 45.0  # beyond it one eye is mostly hidden: matchers lose much of the face
TILTED_DEG = 30.0
SMALL_EYES_PX = 20.0  # below it the 112-px crop (35 px between the eyes) is upscaled over 1.75x
# benchmarks/results/components.md, "best threshold": blur 0.195, defocus 0.21, downscale 0.23,
# motion blur 0.25 (clean photos: 2nd percentile 0.23).
BLURRED_BELOW = 0.2  # sharpness
DARK_BELOW_EV = -1.5  # low light -1.55 (clean: 2nd percentile -1.05)
BRIGHT_ABOVE_EV = 1.5  # over-exposure 1.45 (clean: 98th percentile 1.61)
NOISY_ABOVE = 8.0  # grey levels; noise 11.1, sensor noise 11.9, any value from 4 separates (clean: 98th percentile 3.7)
BLOCKY_ABOVE = 0.2  # JPEG 0.21; H.264 0.10 (which flags 11 % of clean photos)
COVERED_ABOVE = 0.6  # synthetic occluders 0.585; masks: 0.5 flags 92 % of masked and 13 % of unmasked photos


def _value(row: np.ndarray, name: str) -> float:
    return float(row[INDEX[name]])


def reasons(row: np.ndarray) -> list[str]:
    """Why a face (one row of components) is poor, in words, worst-understood first; [] when
    nothing stands out."""
    out: list[str] = []
    yaw, pitch = _value(row, "yaw"), _value(row, "pitch")
    if abs(yaw) > TURNED_DEG:
        out.append(f"turned away: yaw {yaw:.0f}\N{DEGREE SIGN}")
    if abs(pitch) > TILTED_DEG:
        out.append(f"looking {'up' if pitch > 0 else 'down'}: pitch {pitch:.0f}\N{DEGREE SIGN}")
    eyes = _value(row, "inter_eye_px")
    if eyes < SMALL_EYES_PX:
        out.append(f"face {eyes:.0f} px between the eyes")
    checks = (
        ("occlusion", lambda v: v > COVERED_ABOVE, "face covered (mask or object)"),
        ("sharpness", lambda v: v < BLURRED_BELOW, "blurred"),
        ("exposure", lambda v: v < DARK_BELOW_EV, "too dark"),
        ("exposure", lambda v: v > BRIGHT_ABOVE_EV, "too bright"),
        ("noise", lambda v: v > NOISY_ABOVE, "noisy"),
        ("compression", lambda v: v > BLOCKY_ABOVE, "blocky compression"),
    )
    for name, bad, words in checks:
        v = _value(row, name)
        if np.isfinite(v) and bad(v):
            out.append(words)
    return out


@dataclass(frozen=True)
class ComponentLimits:
    """What a pick must satisfy; None: no limit.  A face whose component could not be measured
    (NaN) passes."""

    max_yaw: float | None = None
    max_pitch: float | None = None
    min_inter_eye_px: float | None = None

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.max_yaw, self.max_pitch, self.min_inter_eye_px))

    def passes(self, components: np.ndarray | None) -> np.ndarray | None:
        """(N,) bool for (N, K) components; None when no limit is set or nothing was measured."""
        if not self.active or components is None:
            return None
        ok = np.ones(len(components), bool)
        with np.errstate(invalid="ignore"):
            if self.max_yaw is not None:
                ok &= ~(np.abs(components[:, INDEX["yaw"]]) > self.max_yaw)
            if self.max_pitch is not None:
                ok &= ~(np.abs(components[:, INDEX["pitch"]]) > self.max_pitch)
            if self.min_inter_eye_px is not None:
                ok &= ~(components[:, INDEX["inter_eye_px"]] < self.min_inter_eye_px)
        return ok

    def failures(self, row: np.ndarray) -> list[str]:
        """The limits one face breaks, in words."""
        out = []
        yaw, pitch, eyes = _value(row, "yaw"), _value(row, "pitch"), _value(row, "inter_eye_px")
        if self.max_yaw is not None and abs(yaw) > self.max_yaw:
            out.append(f"turned away: yaw {yaw:.0f}\N{DEGREE SIGN} (max_yaw {self.max_yaw:g})")
        if self.max_pitch is not None and abs(pitch) > self.max_pitch:
            out.append(f"looking {'up' if pitch > 0 else 'down'}: pitch {pitch:.0f}\N{DEGREE SIGN} (max_pitch {self.max_pitch:g})")
        if self.min_inter_eye_px is not None and eyes < self.min_inter_eye_px:
            out.append(f"face {eyes:.0f} px between the eyes (min_inter_eye_px {self.min_inter_eye_px:g})")
        return out
