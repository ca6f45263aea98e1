"""`vidfiqa rescore` on the real YouTube Faces subset: every method scores a few frames of two
videos, an interrupted run resumes without re-scoring finished videos, and Ray gives the same
scores as the in-process path."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import DATA, REPO, need, need_module
from vidfiqa.errors import ConfigError
from vidfiqa.rescore import RescoreSettings, find_items, rescore

YTF = DATA / "ytf_subset" / "frame_images_DB"
FROQ = REPO / "training" / "froq_mobilefacenet.json"


@pytest.fixture(scope="module")
def two_videos(tmp_path_factory):
    """A YTF tree with two people (one video each), linked from the shared subset."""
    root = tmp_path_factory.mktemp("ytf") / "frame_images_DB"
    root.mkdir()
    for person in ("Aaron_Guiel", "Agbani_Darego"):
        (root / person).symlink_to(need(YTF / person), target_is_directory=True)
        shutil.copy(YTF / f"{person}.labeled_faces.txt", root)
    return root


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """In-process scoring with one torch thread: on the shared 2-core machine the second OpenMP
    thread made DifFIQA 2x slower (Ray's workers set one thread themselves)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def table(path):
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pydict()


def quiet(message):
    pass


# DifFIQA and FaceQAN cost seconds per face on a CPU: one frame per video is enough to show that
# the method runs inside rescore (their ranking is tested in tests/quality/).
@pytest.mark.parametrize("method,options,frames", [
    ("ediffiqa", {}, 3),
    ("faceqan", {"copies": 1, "iterations": 1}, 1),
    ("froq", {"calibration": str(FROQ)}, 3),
    ("diffiqa", {"repeats": 1, "t": 1}, 1),  # the bundled diffusion model, one UNet pass per image
    ("sharpness", {}, 3),
])
def test_every_method_rescores_frames_of_two_videos(method, options, frames, two_videos, tmp_path, weights_env):
    out = tmp_path / "scores.parquet"
    summary = rescore(two_videos, out, RescoreSettings(method=method, method_options=options, max_frames=frames), log=quiet)
    rows = table(out)
    assert summary["videos"] == 2 and len(rows["video"]) == 2 * frames
    assert sorted(set(rows["video"])) == ["Aaron_Guiel/5", "Agbani_Darego/0"]
    assert all(rows["detected"]), "a face is found inside every labelled box"
    assert np.isfinite(rows["quality"]).all()
    assert all(len(e) == 128 for e in rows["embedding"])  # the student's embedding
    # The detector's box lies on the labelled face: centres within a few pixels of the label's.
    items = {i.key: i for i in find_items(two_videos)[0]}
    for key, position, x1, y1, x2, y2 in zip(rows["video"], rows["frame_index"], rows["x1"], rows["y1"], rows["x2"], rows["y2"]):
        lx1, ly1, lx2, ly2 = items[key].boxes[np.linspace(0, len(items[key].frames) - 1, frames).round().astype(int)[position]]
        assert abs((x1 + x2) / 2 - (lx1 + lx2) / 2) < 0.3 * (lx2 - lx1)
        assert abs((y1 + y2) / 2 - (ly1 + ly2) / 2) < 0.3 * (ly2 - ly1)


def test_interrupted_run_resumes_where_it_stopped(two_videos, tmp_path):
    settings = RescoreSettings(max_frames=4)
    reference = tmp_path / "reference.parquet"
    rescore(two_videos, reference, settings, log=quiet)

    out = tmp_path / "scores.parquet"

    def stop_after_first(done, total, key):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rescore(two_videos, out, settings, progress=stop_after_first, log=quiet)
    assert not out.exists()
    assert len(list((tmp_path / "scores.parquet.shards").glob("*.parquet"))) == 1
    summary = rescore(two_videos, out, settings, log=quiet)
    assert summary["scored_now"] == 1, "the finished video is not scored again"
    np.testing.assert_equal(table(out), table(reference))  # NaN == NaN here (frames without timestamps)
    with pytest.raises(ConfigError, match="other settings"):
        rescore(two_videos, out, RescoreSettings(max_frames=5), log=quiet)


def test_ray_gives_the_same_scores(two_videos, tmp_path):
    need_module("ray", "the ray extra: pip install -e '.[ray]'")
    settings = RescoreSettings(max_frames=3)
    rescore(two_videos, tmp_path / "local.parquet", settings, log=quiet)
    rescore(two_videos, tmp_path / "ray.parquet", settings, ray="local", ray_cpus=2, log=quiet)
    local, remote = table(tmp_path / "local.parquet"), table(tmp_path / "ray.parquet")
    assert local["video"] == remote["video"] and local["frame"] == remote["frame"]
    np.testing.assert_allclose(local["quality"], remote["quality"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.array(local["embedding"]), np.array(remote["embedding"]), atol=1e-5)


def test_any_folder_of_videos_and_frames(tmp_path):
    root = tmp_path / "media"
    (root / "clips").mkdir(parents=True)
    shutil.copy(REPO / "samples" / "astronaut.mp4", root / "clips")
    frames = root / "frames" / "cam7"
    frames.mkdir(parents=True)
    shutil.copy(REPO / "samples" / "astronaut.jpg", frames / "f2.jpg")
    shutil.copy(REPO / "samples" / "astronaut.jpg", frames / "f10.jpg")
    (frames / "f3.jpg").write_bytes(b"not a jpeg")  # unreadable frame: a row without a face
    out = tmp_path / "s.parquet"
    result = subprocess.run([sys.executable, "-m", "vidfiqa.cli", "rescore", "videos", str(root), "--max-frames", "4", "-o", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = table(out)
    assert sorted(set(rows["video"])) == ["clips/astronaut.mp4", "frames/cam7"]
    cam = [(p.rsplit("/", 1)[1], d) for v, p, d in zip(rows["video"], rows["path"], rows["detected"]) if v == "frames/cam7"]
    assert cam == [("f2.jpg", True), ("f3.jpg", False), ("f10.jpg", True)], "natural order; the broken frame is kept, unscored"
    clip = [q for v, q in zip(rows["video"], rows["quality"]) if v == "clips/astronaut.mp4"]
    assert len(clip) == 4 and np.isfinite(clip).all()
    bad = subprocess.run([sys.executable, "-m", "vidfiqa.cli", "rescore", "ytf", str(root), "-o", str(tmp_path / "x.parquet")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "not a YouTube Faces tree" in bad.stderr and "Traceback" not in bad.stderr
