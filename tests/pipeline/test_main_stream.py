"""Two streams per camera: the substream analysed, the picks cut from the main stream
(vidfiqa/video/main_stream.py, vidfiqa/select/recut.py), on two recordings of one real scene."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import street_crowd_camera

@pytest.fixture(scope="module")
def camera(tmp_path_factory) -> dict[str, Path]:
    """One camera's two recordings: its 640x360 substream and 1280x720 main stream, and variants
    of the main one: started 10 frames (0.4 s) late, and cut off after 2 s."""
    root = tmp_path_factory.mktemp("camera")
    return {"sub": street_crowd_camera(root / "sub.mp4", 640, 360), "main": street_crowd_camera(root / "main.mp4", 1280, 720),
            "main_late": street_crowd_camera(root / "main_late.mp4", 1280, 720, skip=10),
            "main_short": street_crowd_camera(root / "main_short.mp4", 1280, 720, frames=50)}


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidfiqa.cli", "run", *map(str, args), "-q"], capture_output=True, text=True, timeout=300)


def manifest_of(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def picks_of(manifest: dict) -> dict[tuple[int, int], dict]:
    return {(t["track_id"], p["frame_index"]): p for t in manifest["tracks"] for p in t["selected"]}


def test_picks_are_cut_from_the_main_stream_same_person_within_a_frame(camera, tmp_path, mfn_torch):
    """The substream is analysed as without a main stream (the same tracks, the same picks); every
    pick's images then come from the 1280x720 frame at the same moment: the face found again
    there is the same person as the analysed crop, at most one frame away, twice the size."""
    alone, both = tmp_path / "alone", tmp_path / "both"
    assert run(camera["sub"], "-o", alone).returncode == 0
    result = run(camera["sub"], "--main", camera["main"], "-o", both)
    assert result.returncode == 0, result.stderr
    analysed, cut = manifest_of(alone), manifest_of(both)
    assert picks_of(analysed).keys() == picks_of(cut).keys() and len(picks_of(cut)) >= 6
    assert cut["source"]["main"]["width"] == 1280 and "main stream:" in result.stderr
    stats = cut["stats"]["main_stream"]
    assert stats["from_main"] == stats["picks"] == len(picks_of(cut)), stats
    assert stats["sync_error_s"]["max"] <= 0.04 + 1e-6  # one frame at 25 fps: the recordings are in step

    keys = sorted(picks_of(cut))
    small = np.stack([cv2.cvtColor(cv2.imread(str(alone / picks_of(analysed)[k]["crop"])), cv2.COLOR_BGR2RGB) for k in keys])
    large = np.stack([cv2.cvtColor(cv2.imread(str(both / picks_of(cut)[k]["crop"])), cv2.COLOR_BGR2RGB) for k in keys])
    a, b = mfn_torch.embed(small), mfn_torch.embed(large)
    similarity = a @ b.T
    person = {(t["track_id"]): t["person_id"] for t in cut["tracks"]}
    for i, key in enumerate(keys):
        pick = picks_of(cut)[key]
        source = pick["source"]
        assert source["stream"] == "main" and source["size"] == [1280, 720] and abs(source["frame_offset"]) <= 1, source
        # the same person: closer to its own analysed crop than to any other person's
        others = [j for j, other in enumerate(keys) if person[other[0]] != person[key[0]]]
        assert similarity[i, i] > 0.5 and (not others or similarity[i, i] > similarity[i, others].max()), (key, similarity[i])
        face = cv2.imread(str(both / pick["face"]))
        box = pick["bbox"]
        assert face.shape[0] >= 1.6 * 1.9 * (box[2] - box[0]), (face.shape, box)  # about 2x the analysed face's pixels
        context = cv2.imread(str(both / pick["context"]))
        assert context.shape[0] > cv2.imread(str(alone / picks_of(analysed)[key]["context"])).shape[0]


def test_a_main_recording_that_started_late_is_matched_with_its_offset(camera, tmp_path):
    """Recordings that did not start together: --main-offset says by how much, and the faces
    line up again (within a frame)."""
    out = tmp_path / "late"
    result = run(camera["sub"], "--main", camera["main_late"], "--main-offset", "-0.4", "-o", out)
    assert result.returncode == 0, result.stderr
    stats = manifest_of(out)["stats"]["main_stream"]
    early = [p for p in picks_of(manifest_of(out)).values() if p["pts"] < 0.4 + 0.04 * 2.5]
    assert stats["from_main"] == stats["picks"] - len(early) >= 5, stats
    assert stats["sync_error_s"]["max"] <= 0.04 + 1e-6


def test_picks_past_the_end_of_the_main_recording_fall_back_and_say_why(camera, tmp_path):
    """A main stream that ends (a camera whose main stream died, a short recording): the picks it
    no longer covers keep the analysed images, say why, and are counted."""
    out = tmp_path / "short"
    result = run(camera["sub"], "--main", camera["main_short"], "-o", out)
    assert result.returncode == 0, result.stderr
    manifest = manifest_of(out)
    picks = picks_of(manifest).values()
    late = [p for p in picks if p["pts"] > 2.0 + 0.1]
    assert late and all(p["source"]["stream"] == "analysed" and "ends before" in p["source"]["reason"] and "face" not in p for p in late)
    early = [p for p in picks if p["pts"] < 2.0 - 0.1]
    assert early and all(p["source"]["stream"] == "main" for p in early)
    stats = manifest["stats"]["main_stream"]
    assert stats["fallbacks"] == {"ends_before": len(late)} and stats["from_main"] == stats["picks"] - len(late)
    assert "ends before" in result.stderr


def test_a_main_stream_that_cannot_be_opened_is_one_line(camera, tmp_path):
    missing = tmp_path / "nope.mp4"
    result = run(camera["sub"], "--main", missing, "-o", tmp_path / "g")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
    assert str(missing) in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "g").exists()
