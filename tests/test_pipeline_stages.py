"""The pipeline's small stages on their own: smoothing, selection, the candidate pool, the
scoring queue, scene cuts, settings."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import REPO
from vidfiqa.errors import ConfigError
from vidfiqa.faces import Faces
from vidfiqa.pipeline.scenecut import SceneCutDetector
from vidfiqa.pipeline.scoring import ScoringQueue
from vidfiqa.pipeline.selection import select_diverse
from vidfiqa.pipeline.settings import make_settings, presets
from vidfiqa.pipeline.smoothing import smooth_quality
from vidfiqa.pipeline.tracks import Candidate, TrackRecord


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
    greedy = select_diverse(merit, times, emb, top_k=2, diversity=0.0, min_gap_s=0.0)
    assert greedy == [0, 1]
    diverse = select_diverse(merit, times, emb, top_k=2, diversity=0.3, min_gap_s=0.0)
    assert diverse == [0, 3]
    # min_gap_s alone forbids frames 1 and 2 next to frame 0
    gapped = select_diverse(merit, times, emb, top_k=3, diversity=0.0, min_gap_s=0.5)
    assert gapped == [0, 3, 4]
    assert select_diverse(merit, times, emb, top_k=5, diversity=0.0, min_gap_s=0.0, eligible=merit > 0.75) == [0, 1, 2]


def test_selection_respects_eligibility_and_empty_input():
    merit = np.array([0.9, 0.5, np.nan, 0.4])
    times = np.arange(4.0)
    emb = np.eye(4)
    assert select_diverse(merit, times, emb, top_k=5, eligible=np.array([False, True, True, True])) == [1, 3]
    assert select_diverse(np.zeros(0), np.zeros(0), np.zeros((0, 4))) == []


def _candidate(t, q):
    return Candidate(int(t * 25), t, t, np.zeros(4), np.zeros((5, 2)), 0.9, q, np.ones(4), np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2, 3), np.uint8))


def test_candidate_pool_is_bounded_and_keeps_the_best_spread_over_time():
    rng = np.random.default_rng(0)
    record = TrackRecord(1, capacity=8, bucket_s=0.1)
    times = np.arange(0, 600, 0.04)  # ten minutes at 25 fps
    qualities = rng.uniform(0, 0.5, len(times))
    qualities[9000] = 0.99
    for t, q in zip(times, qualities):
        record.offer(_candidate(t, q))
        assert len(record.pool) <= 8
    kept = record.candidates()
    assert max(c.quality for c in kept) == 0.99
    span = [c.time_s for c in kept]
    assert span[0] < 120 and span[-1] > 480, "candidates cover the whole track, not one stretch"


def test_scoring_queue_flushes_on_size_and_on_age():
    class Scorer:
        calls = []

        def score_and_embed(self, crops):
            self.calls.append(len(crops))
            return crops.mean(axis=(1, 2, 3)), np.ones((len(crops), 4))

    now = [0.0]
    queue = ScoringQueue(Scorer(), batch_size=4, max_wait_s=0.5, clock=lambda: now[0])

    def faces(n, value):
        crops = np.full((n, 112, 112, 3), value, np.uint8)
        return Faces.create(np.zeros((n, 4)), np.zeros((n, 5, 2)), np.ones(n), crops=crops)

    queue.put(faces(3, 10))
    assert not queue.due()
    now[0] = 0.6
    assert queue.due(), "the oldest crop has waited max_wait_s"
    queue.put(faces(2, 20))
    out = queue.flush()
    assert Scorer.calls == [5] and len(queue) == 0
    np.testing.assert_allclose(out.quality, [10, 10, 10, 20, 20])
    queue.put(faces(4, 1))
    assert queue.due(), "a full batch is due at once"


def test_scene_cut_fires_on_cuts_not_on_fades(astronaut):
    detector = SceneCutDetector(0.55)
    assert not detector(astronaut)
    for gain in np.linspace(1.0, 0.3, 15):  # the lights go down gradually
        assert not detector((astronaut * gain).astype(np.uint8))
    other = np.ascontiguousarray(astronaut[::-1, ::-1, ::-1])  # a different shot (colours swapped)
    assert detector(other)


def test_presets_and_overrides():
    assert {"default", "fast", "accurate"} <= set(presets())
    default = make_settings("default")
    assert default == make_settings(), "configs/default.toml lists the built-in defaults"
    fast = make_settings("fast", detect_every=2)
    assert fast.input_size == 480 and fast.stride == 2 and fast.detect_every == 2
    assert make_settings(REPO / "configs" / "accurate.toml").top_k == 5
    with pytest.raises(ConfigError, match="unknown setting"):
        make_settings(topk=3)
    with pytest.raises(ConfigError, match="smooth_window"):
        make_settings(smooth_window=4)
    with pytest.raises(ConfigError, match="needs a int value"):
        make_settings(top_k="three")
