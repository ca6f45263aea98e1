"""ByteTracker: identities through crossings and gaps, low-score handling, resets, id bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

from vidfiqa.boxes import iou_matrix
from vidfiqa.faces import Faces
from vidfiqa.track import ByteTracker, TrackerSettings


def frame(boxes, scores, i=0) -> Faces:
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    return Faces.create(boxes, np.zeros((len(boxes), 5, 2)), np.asarray(scores, dtype=np.float32), frame_index=i)


def box(x, y, size=40.0):
    return [x, y, x + size, y + size]


def ids_of(tracked: Faces) -> list[int]:
    return tracked.track_id.tolist()


def test_crossing_faces_keep_their_ids():
    tracker = ByteTracker()
    seen = {"left": set(), "right": set()}
    for i in range(50):
        # The two faces move towards each other at 8 px per frame, overlap for several frames
        # (never exactly) and part again; the input order flips every frame.
        left, right = box(8.0 * i, 100.0), box(404.0 - 8.0 * i, 106.0)
        order = ["left", "right"] if i % 2 == 0 else ["right", "left"]
        faces = frame([left if n == "left" else right for n in order], [0.9, 0.9], i)
        tracked, ended = tracker.update(faces)
        assert ended == []
        assert len(tracked) == 2
        np.testing.assert_array_equal(tracked.boxes, faces.boxes)  # the detections themselves
        np.testing.assert_array_equal(tracked.frame_index, faces.frame_index)
        for name, track_id in zip(order, ids_of(tracked)):
            seen[name].add(track_id)
    assert seen == {"left": {1}, "right": {2}}
    assert tracker.active_ids == [1, 2]


def walk(tracker, start, stop, speed=5.0, score=0.9):
    """Frames start..stop-1 of one face walking right; returns the ids returned and ended."""
    returned, ended = [], []
    for i in range(start, stop):
        tracked, gone = tracker.update(frame([box(100 + speed * i, 50)], [score], i))
        returned += ids_of(tracked)
        ended += gone
    return returned, ended


def test_short_gap_keeps_id_long_gap_ends_it():
    tracker = ByteTracker(TrackerSettings(lost_after_s=0.2), step_s=1 / 30)
    assert tracker.buffer == 6
    assert walk(tracker, 0, 10) == ([1] * 10, [])
    for _ in range(3):  # missed by the detector for 3 updates while walking on
        tracked, ended = tracker.update(Faces.empty())
        assert len(tracked) == 0 and ended == []
    assert tracker.active_ids == [1]
    assert walk(tracker, 13, 20) == ([1] * 7, [])

    endings = [tracker.update(Faces.empty())[1] for _ in range(7)]
    assert endings == [[]] * 6 + [[1]]  # kept while missed for <= 6 updates
    assert tracker.active_ids == []
    assert walk(tracker, 27, 30) == ([2] * 3, [])


def test_a_face_that_stops_while_hidden_is_recovered_where_it_was_last_seen():
    """Walking at 6 px per update, then hidden for 10 updates, then back where it vanished: the
    Kalman prediction has drifted 60 px on (no overlap with a 40 px box), but the last observed
    box matches, so the id is kept (observation-centric recovery).  A face that appears far
    from every lost track's last box still starts a new track."""
    tracker = ByteTracker(TrackerSettings(lost_after_s=1.0), step_s=1 / 25)
    assert walk(tracker, 0, 20, speed=6.0) == ([1] * 20, [])
    for _ in range(10):
        assert tracker.update(Faces.empty())[1] == []
    last = box(100 + 6.0 * 19, 50)
    _, predicted = tracker.predicted_boxes()
    assert iou_matrix(np.array([last]), predicted)[0, 0] == 0.0, "the test needs a drifted prediction"
    tracked, ended = tracker.update(frame([[last[0] - 3, last[1] + 2, last[2] - 3, last[3] + 2], box(600, 300)], [0.9, 0.9], 30))
    assert ids_of(tracked) == [1, 2] and ended == []
    # The recovered track restarts its filter there: it follows the face standing still.
    for i in range(31, 36):
        assert ids_of(tracker.update(frame([[last[0] - 3, last[1] + 2, last[2] - 3, last[3] + 2], box(600, 300)], [0.9, 0.9], i))[0]) == [1, 2]


def test_gap_frames_return_nothing_and_input_is_not_modified():
    tracker = ByteTracker()
    faces = frame([box(0, 0)], [0.9])
    tracker.update(faces)
    tracked, ended = tracker.update(Faces.empty())
    assert len(tracked) == 0 and ended == [1]  # seen once and not again: removed at once
    assert faces.track_id.tolist() == [-1]


def test_empty_frames_on_a_fresh_tracker():
    tracker = ByteTracker()
    for _ in range(3):
        tracked, ended = tracker.update(Faces.empty())
        assert len(tracked) == 0 and ended == []
    assert tracker.active_ids == [] and tracker.finish() == []


def test_low_score_continues_a_track_but_starts_none():
    tracker = ByteTracker()
    walk(tracker, 0, 5)
    # A low-score detection of the tracked face continues it; one elsewhere is dropped.
    tracked, _ = tracker.update(frame([box(400, 300), box(125, 50)], [0.4, 0.4], 5))
    assert ids_of(tracked) == [1]
    np.testing.assert_array_equal(tracked.boxes, [box(125, 50)])
    np.testing.assert_allclose(tracked.scores, [0.4])
    # High but below new_track_score starts nothing either; below low_score continues nothing.
    tracked, _ = tracker.update(frame([box(400, 300), box(130, 50)], [0.65, 0.2], 6))
    assert len(tracked) == 0
    assert tracker.active_ids == [1]
    # The next new face gets id 2: the dropped detections consumed no id.
    tracked, _ = tracker.update(frame([box(135, 50), box(400, 300)], [0.9, 0.9], 7))
    assert ids_of(tracked) == [1, 2]


def test_low_score_does_not_revive_a_lost_track():
    tracker = ByteTracker()
    walk(tracker, 0, 5)
    tracker.update(Faces.empty())
    tracked, _ = tracker.update(frame([box(135, 50)], [0.5], 7))
    assert len(tracked) == 0
    assert ids_of(tracker.update(frame([box(140, 50)], [0.9], 8))[0]) == [1]


def test_reset_ends_everything_and_ids_keep_counting():
    tracker = ByteTracker()
    for i in range(3):
        tracker.update(frame([box(0, 0), box(200, 0)], [0.9, 0.9], i))
    assert tracker.active_ids == [1, 2]
    assert tracker.reset() == [1, 2]
    assert tracker.active_ids == []
    tracked, ended = tracker.update(frame([box(0, 0)], [0.9], 3))
    assert ids_of(tracked) == [3] and ended == []
    assert tracker.finish() == [3]


def test_ids_are_never_reused():
    rng = np.random.default_rng(0)
    tracker = ByteTracker(TrackerSettings(lost_after_s=0.1), step_s=1 / 30)
    ended_ids: list[int] = []
    returned: set[int] = set()
    for i in range(120):
        # Faces on a grid pop in and out at random, so tracks start, get lost, return and end.
        cells = np.flatnonzero(rng.random(6) < 0.6)
        boxes = [box(100.0 * c, 50.0) for c in cells]
        tracked, ended = tracker.update(frame(boxes, rng.uniform(0.3, 1.0, len(boxes)), i))
        assert not set(ids_of(tracked)) & set(ended_ids), "an ended id came back"
        assert len(set(ids_of(tracked))) == len(tracked), "one id twice in a frame"
        assert ended == sorted(ended)
        returned |= set(ids_of(tracked))
        ended_ids += ended
    ended_ids += tracker.finish()
    assert len(ended_ids) == len(set(ended_ids))
    assert sorted(ended_ids) == sorted(returned)  # every id seen is ended exactly once


def numpy_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


@pytest.mark.parametrize("n_a, n_b", [(7, 11), (1, 1), (0, 5), (4, 0), (0, 0)])
def test_numba_iou_matches_numpy(n_a, n_b):
    rng = np.random.default_rng(n_a * 100 + n_b)

    def random_boxes(n):
        xy = rng.uniform(0, 100, (n, 2))
        return np.hstack([xy, xy + rng.uniform(1, 60, (n, 2))]).astype(np.float32)

    a, b = random_boxes(n_a), random_boxes(n_b)
    got = iou_matrix(a, b)
    assert got.shape == (n_a, n_b)
    np.testing.assert_allclose(got, numpy_iou(a.astype(np.float64), b.astype(np.float64)), atol=1e-12)
    if n_a * n_b > 50:
        assert (got > 0).any() and (got == 0).any()  # the random boxes exercise both cases
