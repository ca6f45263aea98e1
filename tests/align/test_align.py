"""Alignment: similarity transforms, the ArcFace template, crops that map back onto the frame."""

from __future__ import annotations

import numpy as np

from conftest import DATA, need
from vidfiqa.align import ARCFACE_TEMPLATE, Aligner, apply_transforms, estimate_similarity, invert_transforms
from vidfiqa.detect import RetinaFaceDetector


def test_similarity_recovers_known_transform():
    rng = np.random.default_rng(0)
    angle, scale, shift = 0.3, 2.5, np.array([40.0, -12.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = rng.uniform(0, 100, (3, 5, 2))
    dst = src @ rot.T + shift
    m = estimate_similarity(src, dst)
    assert m.shape == (3, 2, 3)
    assert np.allclose(m[:, :, :2], rot, atol=1e-9) and np.allclose(m[:, :, 2], shift, atol=1e-9)
    back = apply_transforms(invert_transforms(m), dst)
    assert np.allclose(back, src, atol=1e-9)


def test_mirrored_points_give_no_reflection():
    mirrored = ARCFACE_TEMPLATE * [-1, 1] + [112, 0]
    m = estimate_similarity(mirrored, ARCFACE_TEMPLATE)[0]
    assert np.linalg.det(m[:, :2]) > 0


def test_aligned_astronaut_lands_on_template(retinaface, astronaut):
    faces = retinaface.detect([astronaut])
    aligned = Aligner()(faces, {0: astronaut})
    assert aligned.crops.shape == (1, 112, 112, 3) and aligned.crops.dtype == np.uint8
    # Detected landmarks mapped into the crop lie near the template ...
    in_crop = apply_transforms(aligned.transforms, aligned.landmarks)[0]
    assert np.abs(in_crop - ARCFACE_TEMPLATE).max() < 8  # fit residual: this smile is wider than the template
    # ... and the inverse puts the crop back where it came from: warped back onto the frame,
    # the crop reproduces the frame's pixels around the face.
    import cv2

    inverse = invert_transforms(aligned.transforms)[0]
    back = cv2.warpAffine(aligned.crops[0], inverse, (512, 512), flags=cv2.INTER_LINEAR)
    region = (slice(95, 145), slice(200, 250))  # eyes to mouth, inside the crop
    diff = np.abs(back[region].astype(float) - astronaut[region].astype(float)).mean()
    assert diff < 8, f"mean abs pixel difference {diff:.1f}"
    # The crop is a face: skin-coloured centre, brighter than the dark hair band at the top.
    crop = aligned.crops[0].astype(float)
    assert crop[50:90, 40:72].mean() > crop[:12].mean()


def test_glint_aligned_crops_are_fixed_points():
    """Already-aligned Glint crops, re-detected and re-aligned, come back nearly unchanged."""
    root = need(DATA / "glint24_aligned")
    from vidfiqa.imageio import load_image

    det = RetinaFaceDetector(input_size=224)
    paths = sorted(root.glob("*/*.png"))[::60][:12]
    diffs = []
    for p in paths:
        img = load_image(p).pixels
        faces = det.detect([img]).largest_per_frame()
        if len(faces) == 0:
            continue
        m = Aligner().transforms(faces)[0]
        diffs.append(np.abs(m - np.array([[1, 0, 0], [0, 1, 0]])).max(axis=None))
    assert len(diffs) >= 0.8 * len(paths)
    # Rotation/scale near identity and shift within a few pixels for most crops.
    assert np.median(diffs) < 4.0


def test_jittered_crops_are_the_alignment_of_moved_landmarks(retinaface, astronaut):
    """A jittered crop equals aligning the frame with the landmarks moved by the same noise (in
    the crop's own frame), is reproducible for a seed, and sigma 0 changes nothing."""
    from vidfiqa.align import jittered_crops, template

    faces = Aligner()(retinaface.detect([astronaut]), [astronaut])
    crops = faces.crops
    assert np.array_equal(jittered_crops(crops, 0.0, np.random.default_rng(1)), crops)
    a = jittered_crops(crops, 0.05, np.random.default_rng(1))
    b = jittered_crops(crops, 0.05, np.random.default_rng(1))
    assert np.array_equal(a, b) and not np.array_equal(a, crops)
    # The same noise, applied to the frame's landmarks through the crop's transform, re-aligned.
    rng = np.random.default_rng(1)
    points = template()
    moved = points[None] + rng.normal(0.0, 0.05 * np.linalg.norm(points[1] - points[0]), (len(crops), *points.shape))
    frame_points = apply_transforms(invert_transforms(faces.transforms), moved)
    realigned = Aligner()(faces.replace(landmarks=frame_points.astype(np.float32)), [astronaut]).crops
    inner = (slice(20, 92), slice(20, 92))  # away from the borders, which jittered_crops mirrors
    diff = np.abs(realigned[:, inner[0], inner[1]].astype(int) - a[:, inner[0], inner[1]].astype(int))
    assert np.median(diff) <= 2, np.median(diff)
