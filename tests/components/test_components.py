"""Quality components on real data: head pose against the YouTube Faces authors' own estimate,
masks on held-apart people, image statistics on degraded copies of real photos, the limits on a
real clip, `score --components` on bad input, and the page's reasons in Chromium."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import DATA, need
from vidfiqa import degrade
from vidfiqa.components import NAMES, ComponentLimits, ComponentMeter, reasons
from vidfiqa.components.meter import INDEX
from vidfiqa.components.pose import head_pose
from vidfiqa.detect import make_detector
from vidfiqa.photos import PhotoPipeline
from vidfiqa.quality.ediffiqa import EDifFIQA
from vidfiqa.train.cropset import split_of

YTF_DEV = DATA / "ytf_aligned_dev"
TURNED_CLIP = DATA / "videos" / "ytf_Aaron_Guiel_5.avi"  # a man turned ~45 deg one way, then the other


@pytest.fixture(scope="module")
def photo_faces():
    """Detect, align and score photos (largest face), with the student's embeddings."""
    student = EDifFIQA()

    def run(paths, pad=0.0):
        pipe = PhotoPipeline(make_detector("retinaface"), stages=[student], largest_only=True, pad=pad)
        return [r for r in pipe.run(paths)]

    return run


def _reference_rows():
    """headpose.csv rows with the reference's own 5-frame running median of yaw (its single
    frames jump; the median is chosen from the reference alone, never from our estimate)."""
    rows = list(csv.DictReader(open(need(YTF_DEV / "headpose.csv"), newline="")))
    by_video: dict[str, list[dict]] = {}
    for row in rows:
        by_video.setdefault(row["video"], []).append(row)
    out = []
    for video_rows in by_video.values():
        yaws = np.array([float(r["yaw"]) if r["yaw"] else np.nan for r in video_rows])
        for j, row in enumerate(video_rows):
            window = yaws[max(0, j - 2): j + 3]
            if np.isfinite(window).sum() == len(window) and np.ptp(window) < 10:  # the reference agrees with itself here
                out.append((row, float(np.median(window))))
    return out


def test_yaw_has_the_right_sign_and_size_on_youtube_faces_frames_of_known_pose(photo_faces):
    rows = _reference_rows()
    def spread(items):  # 12 frames spread over the videos (rows are in video order)
        return [items[i] for i in np.linspace(0, len(items) - 1, 12).round().astype(int)]

    right = spread([(r, y) for r, y in rows if y > 35])
    left = spread([(r, y) for r, y in rows if y < -35])
    frontal = spread([(r, y) for r, y in rows if abs(y) < 5])
    chosen = right + left + frontal
    results = photo_faces([YTF_DEV / r["path"] for r, _ in chosen], pad=0.3)
    ours = np.array([head_pose(res.faces.landmarks)[0, 0] if res.ok else np.nan for res in results])
    reference = np.array([y for _, y in chosen])
    n_right, n_left = len(right), len(left)
    assert (ours[:n_right] > 15).mean() >= 0.9, ours[:n_right]
    assert (ours[n_right:n_right + n_left] < -15).mean() >= 0.9, ours[n_right:n_right + n_left]
    assert (np.abs(ours[n_right + n_left:]) < 15).mean() >= 0.9, ours[n_right + n_left:]
    # Size: within 15 deg of the reference for most frames (its MAE over every frame is in
    # benchmarks/results/components.md).
    assert np.median(np.abs(ours - reference)) < 12, np.c_[ours, reference]


def test_a_mirrored_photo_has_the_opposite_yaw_and_roll_and_the_same_pitch(photo_faces, tmp_path):
    import cv2

    original = need(DATA / "faces" / "angelina_jolie" / "deepface_img1.jpg")
    image = cv2.imread(str(original))
    assert image is not None
    flipped = tmp_path / "flipped.jpg"
    cv2.imwrite(str(flipped), image[:, ::-1])
    a, b = photo_faces([original, flipped])
    pa, pb = head_pose(a.faces.landmarks)[0], head_pose(b.faces.landmarks)[0]
    assert abs(pa[0] + pb[0]) < 4 and abs(pa[2] + pb[2]) < 3 and abs(pa[1] - pb[1]) < 4, (pa, pb)


def test_masked_faces_score_high_occlusion_on_people_the_head_never_saw(photo_faces):
    rows = list(csv.DictReader(open(need(DATA / "rmfd_masked" / "masked.csv"), newline="")))
    held = [r for r in rows if split_of(f"rmfd_masked:{r['path'].split('/')[0]}") == "dev"]
    masked = [r for r in held if r["masked"] == "1"][::10][:15]
    unmasked = [r for r in held if r["masked"] == "0"][::10][:15]
    meter = ComponentMeter()
    values = {}
    for name, chosen in (("masked", masked), ("unmasked", unmasked)):
        results = [r for r in photo_faces([DATA / "rmfd_masked" / r["path"] for r in chosen], pad=0.4) if r.ok]
        values[name] = np.array([meter.add_occlusion(r.faces.replace(components=np.full((1, len(NAMES)), np.nan, np.float32)))
                                 .components[0, INDEX["occlusion"]] for r in results])
    m, u = values["masked"], values["unmasked"]
    assert len(m) >= 10 and len(u) >= 10
    assert np.median(m) > 0.7 and np.median(u) < 0.3, (m, u)
    assert (m[:, None] > u[None, :]).mean() > 0.9  # AUC on these photos
    assert "face covered (mask or object)" in reasons(np.where(np.arange(len(NAMES)) == INDEX["occlusion"], np.max(m), np.nan))


def test_each_image_statistic_moves_the_right_way_on_degraded_copies_of_real_photos(photo_faces):
    import cv2

    from vidfiqa.align import Aligner
    from vidfiqa.faces import Faces
    from vidfiqa.imageio import load_image

    paths = sorted((DATA / "faces").glob("*/*.jpg"))[:40:5]
    assert paths, "no photos in faces/"
    found = [(p, r) for p, r in zip(paths, photo_faces(paths)) if r.ok]
    meter, aligner = ComponentMeter(), Aligner()
    kinds = {"blur": ("sharpness", -1), "low_light": ("exposure", -1), "overexposure": ("exposure", 1), "sensor_noise": ("noise", 1),
             "jpeg": ("compression", 1), "h264": ("compression", 1)}
    rng = np.random.default_rng(0)
    for path, result in found:
        # The face as a camera would show it, 40 px between the eyes: the scale degrade's levels
        # are made for (a few pixels of blur are nothing on a face 200 px wide).
        k = 40.0 / float(result.faces.inter_eye_distance[0])
        image = cv2.resize(load_image(path, max_side=1 << 16).pixels, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        scaled = Faces.create(result.faces.boxes[:1] * k, result.faces.landmarks[:1] * k, result.faces.scores[:1])

        def measure(picture, scaled=scaled):
            return meter.measure(aligner(scaled, [picture]), picture)[0]

        clean = measure(image)
        for kind, (name, sign) in kinds.items():
            spec = degrade._sample_one(kind, rng, 0.7)
            moved = (measure(degrade.apply(image, spec))[INDEX[name]] - clean[INDEX[name]]) * sign
            assert moved > 0, f"{path.name}: {spec} moved {name} the wrong way ({moved:+.3f})"


def test_max_yaw_drops_turned_faces_from_the_picks_of_a_real_clip(tmp_path):
    from vidfiqa.pipeline import make_settings
    from vidfiqa.pipeline.run import VideoPipeline

    clip = need(TURNED_CLIP)
    free = VideoPipeline(make_settings()).run(clip, tmp_path / "free")
    limited = VideoPipeline(make_settings(max_yaw=30.0)).run(clip, tmp_path / "limited")
    yaws_free = [s["components"]["yaw"] for t in free["tracks"] for s in t["selected"]]
    assert max(abs(y) for y in yaws_free) > 35, "the clip's picks are turned when nothing limits them"
    yaws_limited = [s["components"]["yaw"] for t in limited["tracks"] for s in t["selected"]]
    assert yaws_limited and max(abs(y) for y in yaws_limited) <= 30
    unusable = [t["unusable"] for t in limited["tracks"] if not t["selected"]]
    assert unusable and all("turned away: yaw" in u and "max_yaw 30" in u for u in unusable)
    # Every pick says why it is as good as it is, in the manifest and in the track's own file.
    for track in limited["tracks"]:
        for item in track["selected"]:
            assert set(item["components"]) == set(NAMES)
        on_disk = json.loads((tmp_path / "limited" / "tracks" / f"{track['track_id']:04d}" / "track.json").read_text())
        assert on_disk.get("unusable") == track.get("unusable")


def test_limits_pass_unmeasured_faces_and_name_what_they_break():
    rows = np.full((3, len(NAMES)), np.nan, np.float32)
    rows[0, INDEX["yaw"]], rows[1, INDEX["yaw"]] = 10, -50
    rows[:, INDEX["inter_eye_px"]] = [30, 30, 9]
    limits = ComponentLimits(max_yaw=30, min_inter_eye_px=12)
    assert limits.passes(rows).tolist() == [True, False, False]
    assert ComponentLimits().passes(rows) is None
    assert limits.failures(rows[2]) == ["face 9 px between the eyes (min_inter_eye_px 12)"]
    assert "turned away: yaw -50\N{DEGREE SIGN}" in reasons(rows[1])


def test_score_components_writes_one_column_each_and_keeps_one_line_errors(tmp_path):
    bad = tmp_path / "not_an_image.jpg"
    bad.write_bytes(b"this is text")
    photo = need(DATA / "rmfd_masked" / "aidai" / "0_0_0.jpg")
    out = tmp_path / "scores.csv"
    run = subprocess.run([sys.executable, "-m", "vidfiqa", "score", str(photo), str(bad), str(tmp_path / "missing.jpg"), "--components", "-o", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    rows = list(csv.DictReader(open(out, newline="")))
    assert list(rows[0])[-len(NAMES):] == list(NAMES)
    assert float(rows[0]["occlusion"]) > 0.5  # a masked face
    assert rows[1]["quality"] == "" and rows[1]["yaw"] == "" and rows[2]["sharpness"] == ""
    none = subprocess.run([sys.executable, "-m", "vidfiqa", "score", str(bad), "--components", "-o", str(tmp_path / "none.csv")],
                          capture_output=True, text=True, timeout=300)
    assert none.returncode == 1 and "Traceback" not in none.stdout + none.stderr
    refused = subprocess.run([sys.executable, "-m", "vidfiqa", "run", str(TURNED_CLIP), "-o", str(tmp_path / "g"), "--max-yaw", "120"],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "max_yaw must be within 0..90" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr


def test_the_page_shows_each_picks_components_and_why_a_track_has_no_usable_frame(tmp_path, chromium):
    from vidfiqa.pipeline import make_settings
    from vidfiqa.pipeline.run import VideoPipeline

    VideoPipeline(make_settings(max_yaw=30.0)).run(need(TURNED_CLIP), tmp_path / "g")
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                          "--virtual-time-budget=5000", "--dump-dom", (tmp_path / "g" / "index.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert 'data-images-broken="0"' in dom, dom[:500]
    assert "no frame within the limits: turned away: yaw" in dom
    assert 'class="comp" title="yaw ' in dom and "inter_eye_px" in dom
