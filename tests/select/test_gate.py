"""The face gate on real data: tracks from the pipeline's TrackProcessor, judged from the TrackResult alone.

The false face is the blurred chair RetinaFace finds (confidence up to 0.97) behind the woman in
liveportrait_s18.mp4 (frames 179-220); the low-resolution real face is a YouTube Faces clip.
Only the frames around the tracks are fed, to keep the tests fast.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from conftest import DATA, need

from vidfiqa.faces import Faces
from vidfiqa.select.gate import FaceGate, track_features
from vidfiqa.select.result import QualitySeries, TrackResult

S18 = DATA / "videos" / "liveportrait_s18.mp4"
YTF = DATA / "videos" / "ytf_Aishwarya_Rai_0.avi"


@pytest.fixture(scope="module")
def models(student):
    from vidfiqa.pipeline.models import Models
    from vidfiqa.pipeline.settings import make_settings

    settings = make_settings()
    return settings, Models.build(settings, scorer=student)


def tracks_of(models, path, first: int = 0, last: int | None = None) -> list[TrackResult]:
    """Every TrackResult of frames first..last of ``path``, with the default settings."""
    from vidfiqa.pipeline.processor import TrackProcessor
    from vidfiqa.video import open_source

    settings, bundle = models
    results: list[TrackResult] = []
    video = open_source(need(path))
    try:
        fps = video.info.fps or 25.0
        processor = TrackProcessor(bundle, settings, on_track=results.append, step_s=1 / fps, fps=fps)
        for frame in itertools.islice(video, first, None if last is None else last + 1):
            processor.process(frame)
        processor.finish("end_of_input")
    finally:
        video.close()
    return results


def test_blurred_chair_is_rejected_and_the_woman_passes(models):
    results = tracks_of(models, S18, first=170, last=230)
    gate = FaceGate()
    chair = [r for r in results if r.first_frame >= 175 and r.series.boxes[:, 0].min() > 700]
    person = [r for r in results if r not in chair]
    assert len(chair) == 1 and len(person) == 1, [(r.first_frame, r.series.boxes[0]) for r in results]
    assert float(chair[0].series.detector_score.max()) > 0.9  # the detector is sure of it
    reason = gate.check(chair[0])
    assert reason is not None and "not face-like" in reason, reason
    assert gate.check(person[0]) is None


def test_low_resolution_youtube_face_passes(models):
    results = tracks_of(models, YTF)
    assert results
    longest = max(results, key=lambda r: r.num_detections)
    f = track_features(longest)
    assert f["face_size"] < 100  # a small face ...
    assert FaceGate().check(longest) is None, track_features(longest)


def _result(quality: np.ndarray, detector: float = 0.9, size: float = 60.0) -> TrackResult:
    n = len(quality)
    boxes = np.tile([0.0, 0.0, size, size], (n, 1))
    series = QualitySeries(frame_index=np.arange(n), pts=np.arange(n) / 25.0, quality=quality, quality_smoothed=quality,
                           detector_score=np.full(n, detector), boxes=boxes)
    return TrackResult(1, "lost", series, Faces.empty(), np.zeros(0))


def test_both_the_quality_model_and_the_detector_must_doubt_a_track():
    gate = FaceGate()
    assert gate.check(_result(np.full(10, 0.9))) is None
    assert gate.check(_result(np.full(10, 0.03), detector=0.99)) is None  # a real profile: the detector is sure
    assert gate.check(_result(np.full(10, 0.12), detector=0.80)) is None  # a blurred real face the detector doubts
    reason = gate.check(_result(np.full(10, 0.07), detector=0.81))  # the chair
    assert reason is not None and "not face-like" in reason and "0.070" in reason and "\n" not in reason
    assert gate.check(_result(np.full(10, np.nan), detector=0.99)) is not None  # nothing scored
    assert dataclasses.is_dataclass(gate) and gate == FaceGate()
    with pytest.raises(dataclasses.FrozenInstanceError):
        gate.min_quality = 0.0  # type: ignore[misc]
