"""Identity-pure tracks: when another person takes the place of the tracked one without a
detected cut, the track is split where the face embedding changes, and no track's picks show two
people."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import DATA, need
from vidfiqa.pipeline import make_settings
from vidfiqa.pipeline.run import VideoPipeline
from vidfiqa.track import ByteTracker

from .test_run import read_frames, write_clip

FRAMES_PER_PERSON = 40


@pytest.fixture(scope="module")
def swapped_clip(tmp_path_factory):
    """Two different people at the same place, one after the other, joined by a hard cut: the
    liveportrait d6 and d9 clips, both 480x480, faces centred."""
    first = read_frames(need(DATA / "videos" / "liveportrait_d6.mp4"), FRAMES_PER_PERSON)
    second = [cv2.resize(f, (480, 480)) for f in read_frames(need(DATA / "videos" / "liveportrait_d9.mp4"), FRAMES_PER_PERSON)]
    return write_clip(tmp_path_factory.mktemp("identity") / "swap.mp4", first + second)


def test_a_missed_cut_does_not_let_a_track_change_person(swapped_clip, tmp_path):
    # scene_cut = 0 plays a cut the shot detector missed: only the identity watch can notice.
    manifest = VideoPipeline(make_settings(scene_cut=0.0)).run(swapped_clip, tmp_path / "g")
    tracks = manifest["tracks"]
    assert any(t["ended"] == "identity_change" for t in tracks), [(t["track_id"], t["ended"]) for t in tracks]
    # Picks are scored faces: they must all be one person's.  A track's ends may be off by the
    # unscored detections around the change (every score_every-th analysed frame is scored).
    gap = manifest["stats"]["stride"] * manifest["settings"]["score_every"]
    for t in tracks:
        picks = [item["frame_index"] for item in t["selected"]]
        assert len({f >= FRAMES_PER_PERSON for f in picks}) <= 1, f"track {t['track_id']} picks both people: {picks}"
        ends = [t["first_frame"] + gap, t["last_frame"] - gap]
        assert len({f >= FRAMES_PER_PERSON for f in ends}) <= 1 or t["last_frame"] - t["first_frame"] <= 2 * gap, \
            f"track {t['track_id']} spans both people: frames {t['first_frame']}-{t['last_frame']}"
    people = {t["first_frame"] >= FRAMES_PER_PERSON for t in tracks if t["selected"]}
    assert people == {False, True}, "both people keep their own track with picks"


def test_a_split_found_while_the_last_faces_are_scored_ends_both_parts(swapped_clip, tmp_path):
    """Every face waits in the scoring queue until the input ends (huge batch and wait), so the
    change of person is only seen while the end of input scores the queue: the first part ends
    as identity_change, the second (under its new id) as end_of_input.  This used to stop the
    run with a KeyError (the split had already ended the id being ended)."""
    settings = make_settings(scene_cut=0.0, batch_size=10_000, max_wait_s=1e6)
    manifest = VideoPipeline(settings).run(swapped_clip, tmp_path / "g")
    assert manifest["status"] == "complete"
    gap = manifest["stats"]["stride"] * manifest["settings"]["score_every"]  # unscored detections around the change
    ended = sorted((t["first_frame"] >= FRAMES_PER_PERSON - gap, t["ended"]) for t in manifest["tracks"] if t["selected"])
    assert ended == [(False, "identity_change"), (True, "end_of_input")], ended


def test_identity_split_off_keeps_one_track_across_the_missed_cut(swapped_clip, tmp_path):
    manifest = VideoPipeline(make_settings(scene_cut=0.0, identity_split=0.0)).run(swapped_clip, tmp_path / "g")
    assert any(t["first_frame"] < FRAMES_PER_PERSON <= t["last_frame"] for t in manifest["tracks"]), \
        "without the identity watch the tracker carries one id across (what the watch exists to fix)"


def test_relabel_gives_the_live_track_a_new_id():
    from vidfiqa.faces import Faces

    tracker = ByteTracker(step_s=1 / 25)
    face = Faces.create([[10, 10, 60, 60]], np.zeros((1, 5, 2)), [0.95])
    for _ in range(3):
        tracked, _ = tracker.update(face)
    old = int(tracked.track_id[0])
    new = tracker.relabel(old)
    assert new != old and tracker.active_ids == [new]
    tracked, ended = tracker.update(face)
    assert list(tracked.track_id) == [new] and ended == []
