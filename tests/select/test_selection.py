"""Selection on its own: smoothing, diverse choice, the candidate pool, finishing a track."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from vidfiqa.faces import Faces
from vidfiqa.select import SelectionRule, TrackHistory, finish_track, select_diverse, smooth_quality


def rule(**changes) -> SelectionRule:
    """The default selection rule with some settings changed."""
    return replace(SelectionRule.default(), **changes)


def test_smoothing_removes_one_frame_flicker_and_keeps_steps():
    q = np.r_[np.full(20, 0.3), np.full(20, 0.7)]
    spiky = q.copy()
    spiky[5], spiky[30] = 0.95, 0.0  # a one-frame spike and a one-frame dropout
    smoothed = smooth_quality(spiky, window=5, sigma=1.0)
    assert abs(smoothed[5] - 0.3) < 0.02 and abs(smoothed[30] - 0.7) < 0.02
    assert smoothed[:15].max() < 0.35 and smoothed[25:].min() > 0.65  # the real step survives
    with_gap = spiky.copy()
    with_gap[10] = np.nan
    out = smooth_quality(with_gap)
    assert np.isnan(out[10]) and np.isfinite(np.delete(out, 10)).all()


def _unit(angle_deg):
    a = np.deg2rad(angle_deg)
    return np.array([np.cos(a), np.sin(a)])


def test_selection_trades_quality_for_difference():
    # Three near-identical top frames (same pose, same second) and a slightly worse, different one.
    merit = np.array([0.80, 0.79, 0.78, 0.70, 0.20])
    times = np.array([1.0, 1.05, 1.1, 6.0, 9.0])
    emb = np.stack([_unit(0), _unit(1), _unit(2), _unit(60), _unit(90)])
    greedy = select_diverse(merit, times, emb, rule(top_k=2, diversity=0.0, min_gap_s=0.0))
    assert greedy == [0, 1]
    diverse = select_diverse(merit, times, emb, rule(top_k=2, diversity=0.3, min_gap_s=0.0))
    assert diverse == [0, 3]
    # min_gap_s alone forbids frames 1 and 2 next to frame 0
    gapped = select_diverse(merit, times, emb, rule(top_k=3, diversity=0.0, min_gap_s=0.5))
    assert gapped == [0, 3, 4]
    assert select_diverse(merit, times, emb, rule(top_k=5, diversity=0.0, min_gap_s=0.0), eligible=merit > 0.75) == [0, 1, 2]


def test_selection_respects_eligibility_and_empty_input():
    merit = np.array([0.9, 0.5, np.nan, 0.4])
    times = np.arange(4.0)
    emb = np.eye(4)
    assert select_diverse(merit, times, emb, rule(top_k=5), eligible=np.array([False, True, True, True])) == [1, 3]
    assert select_diverse(np.zeros(0), np.zeros(0), np.zeros((0, 4)), rule()) == []


def _row(t, q):
    """One scored face at time t (no timestamps: its time comes from the frame number)."""
    return Faces.create(np.zeros((1, 4)), np.zeros((1, 5, 2)), [0.9], frame_index=int(round(t * 25)), quality=[q],
                        embeddings=np.ones((1, 4)), crops=np.zeros((1, 2, 2, 3), np.uint8))


def test_candidate_pool_is_bounded_and_keeps_the_best_spread_over_time():
    rng = np.random.default_rng(0)
    history = TrackHistory(1, fps=25.0, capacity=8, bucket_s=0.1)
    times = np.arange(0, 600, 0.04)  # ten minutes at 25 fps
    qualities = rng.uniform(0, 0.5, len(times))
    qualities[9000] = 0.99
    for t, q in zip(times, qualities):
        history.offer(_row(t, q))
        assert len(history.pool) <= 8
    kept = history.candidates()
    assert np.isclose(kept.quality.max(), 0.99)
    span = kept.frame_index / 25.0
    assert span[0] < 120 and span[-1] > 480, "candidates cover the whole track, not one stretch"


def test_finished_track_picks_rows_of_its_own_pool_with_their_images():
    history = TrackHistory(4, fps=25.0)
    rows = [_row(t, q) for t, q in zip(np.arange(0, 4, 0.04), np.linspace(0.2, 0.8, 100))]
    for row in rows:
        history.observe(row)
        history.offer(row)
    result = finish_track(history, "lost", rule(top_k=3))
    assert result is not None and result.track_id == 4 and result.ended == "lost"
    assert result.num_detections == 100 and result.num_scored == 100
    assert len(result.chosen) == 3 and result.chosen.crops is not None
    assert result.chosen.quality[0] == result.chosen.quality.max(), "the best frame comes first"
    np.testing.assert_allclose(result.chosen_smoothed, result.series.smoothed_at(result.chosen.frame_index))
    assert finish_track(TrackHistory(5, fps=25.0), "lost", rule()) is None, "an empty track is dropped"


def test_with_a_yaw_limit_the_pool_keeps_frontal_faces_and_turned_ones_are_never_picked():
    """A long track of turned, well-scored faces and a few frontal, poorer ones: the pool (bounded,
    so buckets merge) keeps the frontal faces, and the picks are within max_yaw; without the
    limit the turned ones win."""
    from vidfiqa.components import NAMES, ComponentLimits
    from vidfiqa.components.meter import INDEX

    def row(t, q, yaw):
        components = np.full((1, len(NAMES)), np.nan, np.float32)
        components[0, INDEX["yaw"]] = yaw
        return _row(t, q).replace(components=components)

    limits = ComponentLimits(max_yaw=30)
    limited, free = TrackHistory(7, fps=25.0, capacity=4, limits=limits), TrackHistory(8, fps=25.0, capacity=4)
    for i, t in enumerate(np.arange(0, 60, 0.2)):
        frontal = i % 50 == 0
        face = row(t, 0.2 if frontal else 0.6, 5.0 if frontal else 60.0)
        for history in (limited, free):
            history.observe(face)
            history.offer(face)
    kept_yaw = limited.candidates().components[:, INDEX["yaw"]]
    # Buckets merged to 25.6 s: the two that saw a frontal face kept it, the last one (51-60 s) has none.
    assert len(kept_yaw) == 3 and (kept_yaw == 5.0).sum() == 2, kept_yaw
    assert np.all(free.candidates().components[:, INDEX["yaw"]] == 60.0)
    picked = finish_track(limited, "lost", replace(rule(top_k=3), limits=limits))
    assert picked is not None and len(picked.chosen) and np.all(np.abs(picked.chosen.components[:, INDEX["yaw"]]) <= 30)
    unlimited = finish_track(free, "lost", rule(top_k=3))
    assert unlimited is not None and np.all(unlimited.chosen.components[:, INDEX["yaw"]] == 60.0)
