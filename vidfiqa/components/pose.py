"""Head pose (yaw, pitch, roll in degrees) from the detector's five landmarks.

A closed-form estimate, vectorised over faces, at a few microseconds a face: no model, nothing
fitted to anyone's pose labels.  The five points are explained by a generic adult face seen under
weak perspective:

* its frontal 2-D layout is the ArcFace alignment template (the mean of many frontal faces),
  scaled to an inter-eye distance of 64 mm;
* its depth: the nose tip stands about 30 mm in front of the eye centres and about 22 mm in front
  of the mouth corners (approximate anthropometric averages; not tuned on any evaluation set).

Roll is the angle of the eye line.  With roll undone, turning the head by ``yaw`` moves the nose
tip sideways from the face's midline (half-way between the eyes' and the mouth's midpoints) by
``D sin(yaw)`` while the eyes' distance shrinks to ``E cos(yaw)``, so
``offset / eye_distance = (D / E) tan(yaw)``, D the nose's depth in front of the midline (26 mm),
E = 64 mm.  Pitch comes from where the nose tip sits between the eye line and the mouth line,
solved the same way for a rotation about the ear-to-ear axis.

Conventions (the frame as the camera sees it, y down):

* ``yaw`` > 0: the face turns towards the image's right (the subject's left); 0 = frontal;
  beyond about +-60 deg the far eye is hidden and the landmarks, hence the estimate, saturate.
* ``pitch`` > 0: the face tilts up (chin raised); < 0 looks down.
* ``roll`` > 0: the head leans clockwise in the image (the image-right eye lower).

Validated against the YouTube Faces authors' own head pose (benchmarks/components.py).
"""

from __future__ import annotations

import numpy as np

from ..align import ARCFACE_TEMPLATE

EYE_DISTANCE_MM = 64.0
NOSE_IN_FRONT_OF_EYES_MM = 30.0
NOSE_IN_FRONT_OF_MOUTH_MM = 22.0

# Where RetinaFace puts the nose tip of a frontal face between the eye line (0) and the mouth line
# (1): the median over 977 photos of the crop set's *training* people (faces/, celeba_wild/) whose
# yaw is within 10 deg (portraits, taken at eye level).  The ArcFace template says 0.496: its
# landmarks were marked by another detector, whose "nose tip" sits higher.  This fixes pitch 0
# for our detector's landmarks; nothing was fitted to a pose reference.
FRONTAL_NOSE_T = 0.594

# The generic face's 2-D layout in millimetres, nose tip at the origin (y down): the template's
# eye-to-mouth distance, the nose at FRONTAL_NOSE_T of it.
_MM = (ARCFACE_TEMPLATE - ARCFACE_TEMPLATE[2]) * (EYE_DISTANCE_MM / float(np.linalg.norm(ARCFACE_TEMPLATE[1] - ARCFACE_TEMPLATE[0])))
_EYE_TO_MOUTH = float((_MM[3, 1] + _MM[4, 1]) / 2 - (_MM[0, 1] + _MM[1, 1]) / 2)
_EYE_Y = -FRONTAL_NOSE_T * _EYE_TO_MOUTH  # < 0: above the nose
_MOUTH_Y = (1 - FRONTAL_NOSE_T) * _EYE_TO_MOUTH  # > 0: below it
_EYE_Z, _MOUTH_Z = -NOSE_IN_FRONT_OF_EYES_MM, -NOSE_IN_FRONT_OF_MOUTH_MM  # z towards the camera
# Yaw: the nose's depth in front of the face midline over the eye distance.
_YAW_K = (NOSE_IN_FRONT_OF_EYES_MM + NOSE_IN_FRONT_OF_MOUTH_MM) / 2 / EYE_DISTANCE_MM


def head_pose(landmarks: np.ndarray) -> np.ndarray:
    """(N, 3) float32 yaw, pitch, roll in degrees for (N, 5, 2) landmarks in the ArcFace order
    (right eye, left eye, nose tip, right and left mouth corner; image coordinates).  Degenerate
    landmarks (coincident eyes) give NaN."""
    pts = np.asarray(landmarks, dtype=np.float64).reshape(-1, 5, 2)
    eye_vec = pts[:, 1] - pts[:, 0]
    roll = np.arctan2(eye_vec[:, 1], eye_vec[:, 0])
    # Undo roll about the eyes' midpoint, so "sideways" is along the eye line.
    cos, sin = np.cos(-roll)[:, None], np.sin(-roll)[:, None]
    centred = pts - ((pts[:, 0] + pts[:, 1]) / 2)[:, None, :]
    x = centred[..., 0] * cos - centred[..., 1] * sin
    y = centred[..., 0] * sin + centred[..., 1] * cos
    with np.errstate(divide="ignore", invalid="ignore"):
        eye_distance = np.where(x[:, 1] - x[:, 0] > 1e-6, x[:, 1] - x[:, 0], np.nan)
        mouth_x, mouth_y = (x[:, 3] + x[:, 4]) / 2, (y[:, 3] + y[:, 4]) / 2
        midline_x = mouth_x / 2  # the eyes' midpoint is the origin
        yaw = np.arctan((x[:, 2] - midline_x) / eye_distance / _YAW_K)
        # Pitch: t = where the nose sits from the eye line (0) to the mouth line (1); the generic
        # face under pitch p gives t(p) = (-ey c + ez s) / ((my - ey) c - (mz - ez) s) with
        # c = cos p, s = sin p (looking up moves the nose, nearest the camera, up the image).
        t = y[:, 2] / np.where(np.abs(mouth_y) > 1e-6, mouth_y, np.nan)
        ey, my, ez, mz = _EYE_Y, _MOUTH_Y, _EYE_Z, _MOUTH_Z
        pitch = np.arctan2(-ey - t * (my - ey), -ez - t * (mz - ez))
    out = np.degrees(np.stack([yaw, pitch, roll], axis=1))
    return out.astype(np.float32)
