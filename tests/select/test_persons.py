"""Linking tracks into persons (vidfiqa.select.persons) on real YouTube Faces videos.

A few videos of a few people from ../shared/data/ytf_aligned_dev, a handful of frames each,
detected, aligned and embedded by the bundled student as the pipeline does; each video is a track.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA, need

from vidfiqa.select.persons import DEFAULT_THRESHOLD, PersonMemory, TrackSpan, link_persons, link_template

YTF = DATA / "ytf_aligned_dev" / "aligned_images_DB"
# Two videos each of four people (frames evenly spaced over each video); the first two videos of each
# link at DEFAULT_THRESHOLD with a margin (cosine 0.71-0.76 with 16 frames each), as ~70% of YTF
# same-person video pairs do (benchmarks/results/person_threshold_vm.json).
PEOPLE = ("Alex_Sink", "Andy_Roddick", "Barbara_Brezigar", "Bashar_Assad")
VIDEOS_EACH = 2
FRAMES_EACH = 4


@pytest.fixture(scope="module")
def ytf_tracks(retinaface, student):
    """[(person, video key, embeddings (F, 128), quality (F,))] for the chosen videos."""
    from vidfiqa.photos import PhotoPipeline
    from vidfiqa.ytf.dataset import read_ytf

    tracks = []
    pipeline = PhotoPipeline(retinaface, stages=[student], largest_only=True)
    for person in PEOPLE:
        videos, _ = read_ytf(need(YTF / person))
        for video in videos[:VIDEOS_EACH]:
            frames = sorted(video.frames, key=lambda f: f.frame_number)
            picks = np.linspace(0, len(frames) - 1, FRAMES_EACH).round().astype(int)
            faces = [r.faces for r in pipeline.run([frames[i].path for i in picks]) if r.ok and r.faces is not None]
            assert faces, f"no face found in {video.key}"
            tracks.append((person, video.key, np.concatenate([f.embeddings for f in faces]),
                           np.concatenate([f.quality for f in faces])))
    return tracks


def _templates(ytf_tracks):
    return [link_template(emb, q) for _, _, emb, q in ytf_tracks]


def test_link_template_is_a_unit_vector_and_skips_unusable_faces():
    emb = np.array([[3.0, 0.0], [0.0, 1.0], [np.nan, 1.0]])
    t = link_template(emb, np.array([0.9, 0.1, 0.5]))
    assert np.isclose(np.linalg.norm(t), 1.0) and t[0] > t[1] > 0  # the better face weighs more
    assert np.allclose(link_template(emb[:2]), np.array([1, 1]) / np.sqrt(2))  # plain mean of unit rows
    assert np.allclose(link_template(emb, np.array([0.9, np.nan, 0.5])), [1.0, 0.0])
    with pytest.raises(ValueError):
        link_template(np.full((2, 2), np.nan))


def test_ytf_videos_of_one_person_link_and_different_people_stay_apart(ytf_tracks):
    templates = _templates(ytf_tracks)
    spans = [TrackSpan(i + 1, 10.0 * i, 10.0 * i + 5, t, weight=float(q.sum())) for i, (t, (_, _, _, q)) in
             enumerate(zip(templates, ytf_tracks))]
    person = link_persons(spans, DEFAULT_THRESHOLD)
    truth = [p for p, _, _, _ in ytf_tracks]
    found = [person[s.track_id] for s in spans]
    assert sorted(set(found)) == list(range(1, len(PEOPLE) + 1))
    for i in range(len(spans)):
        for j in range(i + 1, len(spans)):
            assert (found[i] == found[j]) == (truth[i] == truth[j]), (ytf_tracks[i][1], ytf_tracks[j][1])
    # Person 1 holds the track of highest weight.
    assert found[int(np.argmax([s.weight for s in spans]))] == 1


def test_overlapping_tracks_are_never_one_person(ytf_tracks):
    # Both videos of the first person, and the first one again as a third track.
    (_, _, e1, q1), (_, _, e2, q2) = ytf_tracks[0], ytf_tracks[1]
    a, b = link_template(e1, q1), link_template(e2, q2)
    apart = link_persons([TrackSpan(1, 0, 10, a), TrackSpan(2, 20, 30, b)], DEFAULT_THRESHOLD)
    assert apart[1] == apart[2]  # the same person, seen at different times
    together = link_persons([TrackSpan(1, 0, 10, a), TrackSpan(2, 10, 30, b)], DEFAULT_THRESHOLD)
    assert together[1] != together[2]  # seen at the same instant (t = 10): two people
    # Not through a third track either: 3 matches both 1 and 2, which overlap each other.
    chain = link_persons([TrackSpan(1, 0, 10, a), TrackSpan(2, 5, 15, b), TrackSpan(3, 40, 50, a)], DEFAULT_THRESHOLD)
    assert chain[1] != chain[2] and chain[3] in (chain[1], chain[2])


def test_link_persons_numbers_by_best_track_and_handles_hundreds_fast():
    import time

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, 64))
    spans = []
    for i in range(300):
        v = centres[i % 30] + 0.5 * rng.normal(size=64)
        spans.append(TrackSpan(i, float(i), float(i) + 0.5, v / np.linalg.norm(v), weight=float(i % 30 == 7) + 0.1))
    start = time.perf_counter()
    person = link_persons(spans, 0.5)
    assert time.perf_counter() - start < 2.0  # ~10 ms on an idle core
    assert {person[i] for i in range(300)} == set(range(1, 31))
    assert all(person[i] == person[i % 30] for i in range(300))  # every track with its centre
    assert person[7] == 1  # the heaviest tracks belong to centre 7
    assert link_persons([], 0.5) == {}


def test_person_memory_keeps_ids_within_memory_and_forgets_after(ytf_tracks):
    templates = _templates(ytf_tracks)
    a1, a2, b1 = templates[0], templates[1], templates[2]  # two videos of person A, one of B
    memory = PersonMemory(DEFAULT_THRESHOLD, memory_s=600.0, max_persons=10)
    first = memory.assign(a1, 0.0, 20.0)
    other = memory.assign(b1, 5.0, 30.0)  # seen together with A: another person
    assert other != first
    assert memory.assign(a2, 300.0, 320.0) == first  # A came back 280 s later
    assert memory.assign(a2, 310.0, 330.0) != first  # overlaps A's last track: not A
    gone = memory.assign(a1, 1000.0, 1010.0)  # A unseen for 680 s > memory_s: a new id
    assert gone not in (first, other) and first not in memory.person_ids


def test_person_memory_stays_bounded_and_never_reuses_ids(ytf_tracks):
    templates = _templates(ytf_tracks)
    memory = PersonMemory(DEFAULT_THRESHOLD, memory_s=1e6, max_persons=3)
    ids = []
    for i in range(0, len(templates), VIDEOS_EACH):  # one video per person: four persons
        ids.append(memory.assign(templates[i], 100.0 * i, 100.0 * i + 10))
    assert ids == [1, 2, 3, 4] and len(memory) == 3
    assert 1 not in memory.person_ids  # the least recently seen went first
    assert memory.assign(templates[0], 5000.0, 5010.0) == 5  # so it comes back as a new person
    rng = np.random.default_rng(1)
    for k in range(200):
        memory.assign(rng.normal(size=128), 6000.0 + k, 6000.5 + k)
    assert len(memory) == 3 and max(memory.person_ids) == 205
