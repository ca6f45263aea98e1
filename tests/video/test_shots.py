"""Shot-boundary detection between frames: hard cuts and cross-dissolves, on real footage."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import DATA, REPO, need

from vidfiqa.video.shots import SceneCutDetector

SIZE = (320, 180)  # small frames keep decoding fast; the detector works on a 64 x 36 thumbnail anyway


def _read(name: str, limit: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(need(DATA / name)))
    frames = []
    while limit is None or len(frames) < limit:
        ok, frame = cap.read()
        if not ok:
            break
        scale = max(SIZE[0] / frame.shape[1], SIZE[1] / frame.shape[0])
        frame = cv2.resize(frame, (round(frame.shape[1] * scale), round(frame.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        y, x = (frame.shape[0] - SIZE[1]) // 2, (frame.shape[1] - SIZE[0]) // 2
        frames.append(np.ascontiguousarray(frame[y:y + SIZE[1], x:x + SIZE[0], ::-1]))
    return frames


def _detections(frames, **kwargs) -> list[tuple[int, str]]:
    detector = SceneCutDetector(**kwargs)
    return [(i, detector.last_kind) for i, frame in enumerate(frames) if detector(frame)]


def test_scene_cut_fires_on_cuts_not_on_fades(astronaut):
    detector = SceneCutDetector()
    assert not detector(astronaut)
    for gain in np.linspace(1.0, 0.3, 15):  # the lights go down gradually
        assert not detector((astronaut * gain).astype(np.uint8))
    for _ in range(10):  # the shot goes on, dim
        assert not detector((astronaut * 0.3).astype(np.uint8))
    other = np.ascontiguousarray(astronaut[::-1, ::-1, ::-1])  # a different shot (colours swapped)
    assert detector(other)
    assert detector.last_kind == "cut"


def test_zero_threshold_disables_and_reset_forgets(astronaut):
    other = np.ascontiguousarray(astronaut[::-1, ::-1, ::-1])
    off = SceneCutDetector(0)
    assert not any(off(frame) for frame in [astronaut] * 12 + [other])
    on = SceneCutDetector()
    for _ in range(12):
        on(astronaut)
    on.reset()
    assert not on(other)  # the first frame after reset starts a shot; it is no cut


def test_edited_clip_cuts_and_dissolve_found_nothing_else():
    """Shared clips of different people, hard cuts at 40 and 80, a 20-frame cross-dissolve at
    100-119 (reported within 10 frames of its end), another cut at 160."""
    segments = [_read("videos/liveportrait_d6.mp4", 40), _read("videos/liveportrait_d9.mp4", 40),
                _read("videos/liveportrait_s18.mp4", 40), _read("videos/videoretalking_2.mp4", 60), _read("videos/tpsmm_driving.mp4", 40)]
    frames = segments[0] + segments[1] + segments[2]
    b = segments[3]
    for j in range(20):  # the last 20 frames of s18 dissolve into the first 20 of videoretalking
        a = (j + 1) / 21
        frames[100 + j] = cv2.addWeighted(frames[100 + j], 1 - a, b[j], a, 0)
    frames += b[20:] + segments[4]
    assert len(frames) == 200
    found = _detections(frames)
    assert [f for f, k in found if k == "cut"] == [40, 80, 160], found
    dissolves = [f for f, k in found if k == "dissolve"]
    assert len(dissolves) == 1 and 100 <= dissolves[0] <= 129, found


@pytest.mark.parametrize("clip", ["azurevi_avenger2_cuts", "azurevi_friends_cuts"])
def test_real_edited_excerpts(clip):
    """Film and TV excerpts: measured 3 of 3 cuts each, no false cut (benchmarks/shots.py);
    the bar: at least 2 of 3 and at most 1 false."""
    truth = json.loads((REPO / "benchmarks" / "shots_ground_truth.json").read_text())["clips"][f"edited_videos/{clip}.mp4"]["boundaries"]
    found = _detections(_read(f"edited_videos/{clip}.mp4"))
    hits = [any(t["first"] <= f <= t["last"] + 2 for f, _ in found) for t in truth]
    false = [f for f, _ in found if not any(t["first"] <= f <= t["last"] + 2 for t in truth)]
    assert sum(hits) >= 2 and len(false) <= 1, (found, truth)


def test_continuous_shots_have_no_cut():
    """A jerky clip (repeated frames, then jumps) and a camera pan: one shot each."""
    for clip in ("videos/liveportrait_d12.mp4", "videos/ytf_Aishwarya_Rai_0.avi"):
        assert _detections(_read(clip)) == [], clip


@pytest.mark.parametrize("clip", ["azurevi_avenger2_cuts.mp4", "azurevi_friends_cuts.mp4"])
def test_a_strided_run_still_sees_every_cut_through_the_thumbnails_of_skipped_frames(clip):
    """At stride 6 (5 analysed frames a second of 30 fps) the decoder hands each analysed frame
    the thumbnails of the frames before it; fed those, the detector finds each of the excerpt's
    three cuts (ground truth by inspection: benchmarks/shots_ground_truth.json) at the first
    analysed frame after it, and nothing else."""
    import json

    from conftest import DATA, REPO, need
    from vidfiqa.video.pyav_source import PyAVSource
    from vidfiqa.video.shots import THUMB_H, THUMB_W

    truth = json.loads((REPO / "benchmarks" / "shots_ground_truth.json").read_text())["clips"][f"edited_videos/{clip}"]
    source = PyAVSource(str(need(DATA / "edited_videos" / clip)), stride=6)
    source.thumbnails = True
    detector = SceneCutDetector()
    found, decoded, last = [], 0, -1
    try:
        for frame in source:
            assert frame.thumbnails is not None and len(frame.thumbnails) == (1 if frame.index == 0 else 6)
            assert frame.thumbnails[-1].shape == (THUMB_H, THUMB_W, 3)
            decoded += len(frame.thumbnails)
            last = frame.index
            cut = False
            for thumb in frame.thumbnails:
                cut = detector.observe(thumb) or cut
            if cut:
                found.append(frame.index)
    finally:
        source.close()
    # Every decoded frame up to the last analysed one gave its thumbnail (those after it precede
    # no analysed frame).
    assert decoded == last + 1 and source.frames_read - decoded < 6
    cuts = [b["first"] for b in truth["boundaries"]]
    assert len(found) == len(cuts), (found, cuts)
    for at, cut in zip(found, cuts):
        assert cut <= at <= cut + 6, (found, cuts)
