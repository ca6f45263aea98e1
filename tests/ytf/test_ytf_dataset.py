"""YouTube Faces: frame folders, label boxes, the verification protocol, and what does not fit."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import scipy.io

from vidfiqa.errors import InputError
from vidfiqa.ytf import YtfPair, face_box, read_protocol, read_ytf

from conftest import DATA, need

SUBSET = DATA / "ytf_subset"
FRAMES_DB = SUBSET / "frame_images_DB"
PROTOCOL = DATA / "ytf_protocol"


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert text and "\n" not in text
    return text


def test_subset_counts_boxes_and_order():
    videos, report = read_ytf(need(SUBSET))
    assert (report.people, report.videos, report.frames) == (7, 8, 1341)
    assert [v.key for v in videos] == sorted(v.key for v in videos)
    # Every extracted frame has a label line.  The label files hold 63 more lines: those of
    # Alexandre_Despatie/5, a video the subset left out (its label file is the dataset's, whole).
    assert report.labelled_frames == report.frames == 1341
    assert (report.frames_without_box, report.malformed_lines, report.empty_videos) == (0, 0, 0)
    assert report.boxes_without_frame == 63
    assert len(report.problems) == 1 and "Alexandre_Despatie/5" in report.problems[0]
    assert report.summary().startswith("7 people, 8 videos, 1,341 frames (1,341 with boxes)")
    for video in videos:
        assert not video.aligned
        numbers = [frame.frame_number for frame in video.frames]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
        assert all(frame.path.parent.name == video.video for frame in video.frames)


def test_box_matches_label_line():
    videos, _ = read_ytf(need(SUBSET))
    video = next(v for v in videos if v.key == "Aaron_Guiel/5")
    frame = next(f for f in video.frames if f.frame_number == 1841)
    # Aaron_Guiel\5\5.1841.jpg,0,185,83,47,47,0.0,1: centre (185, 83), size 47.
    assert frame.path.name == "5.1841.jpg"
    assert frame.box == (161.5, 59.5, 208.5, 106.5)
    assert face_box(frame) == frame.box
    assert face_box(frame, 2.0) == pytest.approx((138.0, 36.0, 232.0, 130.0))


def test_person_folder_and_db_folder_as_root():
    whole, _ = read_ytf(need(SUBSET))
    db_videos, _ = read_ytf(FRAMES_DB)
    assert [v.key for v in db_videos] == [v.key for v in whole]
    person, report = read_ytf(FRAMES_DB / "Alek_Wek")
    assert [v.key for v in person] == ["Alek_Wek/1", "Alek_Wek/4"]
    assert report.frames == report.labelled_frames == 420


def test_malformed_and_missing_lines_are_counted(tmp_path):
    src = need(FRAMES_DB / "Aaron_Guiel")
    db = tmp_path / "frame_images_DB"
    shutil.copytree(src, db / "Aaron_Guiel")
    lines = (FRAMES_DB / "Aaron_Guiel.labeled_faces.txt").read_text().splitlines()
    lines[3] = "Aaron_Guiel\\5\\5.1844.jpg,0,185,83"  # truncated
    lines[4] = "Aaron_Guiel\\5\\5.1845.jpg,0,x,83,47,47,0.0,1"  # not a number
    removed_line = lines.pop(10)  # a frame without a label line
    (db / "Aaron_Guiel.labeled_faces.txt").write_text("\n".join(lines) + "\n")
    (db / "Aaron_Guiel" / "5" / "5.1900.jpg").unlink()  # a label line without its frame
    (db / "Aaron_Guiel" / "6").mkdir()  # an empty video folder

    videos, report = read_ytf(tmp_path)
    assert report.malformed_lines == 2 and report.boxes_without_frame == 1 and report.empty_videos == 1
    # The two malformed lines and the removed one leave three frames without a box.
    assert report.frames == 131 and report.frames_without_box == 3 and report.labelled_frames == 128
    assert [v.key for v in videos] == ["Aaron_Guiel/5"]
    unboxed = {f.path.name for f in videos[0].frames if f.box is None}
    assert unboxed == {"5.1844.jpg", "5.1845.jpg", removed_line.split("\\")[-1].split(",")[0]}
    assert any("labeled_faces.txt:4: malformed" in p for p in report.problems)
    assert any("5.1900.jpg is missing" in p for p in report.problems)


def test_missing_label_file_leaves_frames_unboxed(tmp_path):
    shutil.copytree(need(FRAMES_DB / "Aishwarya_Rai"), tmp_path / "frame_images_DB" / "Aishwarya_Rai")
    videos, report = read_ytf(tmp_path)
    assert report.frames == report.frames_without_box == 76 and report.labelled_frames == 0
    assert "label file missing" in report.problems[0]


def test_aligned_layout(tmp_path):
    frames = sorted(need(FRAMES_DB / "Alek_Wek" / "1").glob("*.jpg"), key=lambda p: int(p.name.split(".")[1]))[:3]
    video_dir = tmp_path / "aligned_images_DB" / "Alek_Wek" / "1"
    video_dir.mkdir(parents=True)
    for frame in frames:
        shutil.copy(frame, video_dir / f"aligned_detect_{frame.name}")
    videos, report = read_ytf(tmp_path)
    assert [v.key for v in videos] == ["Alek_Wek/1"] and videos[0].aligned
    assert [f.box for f in videos[0].frames] == [None] * 3
    assert [f.path.name for f in videos[0].frames] == [f"aligned_detect_{f.name}" for f in frames]
    # Aligned crops carry no labels: nothing is missing.
    assert (report.frames, report.frames_without_box, report.problems) == (3, 0, [])
    assert face_box(videos[0].frames[0], 2.0) is None


def test_folder_without_layout_is_an_input_error(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "notes.txt").write_text("x")
    with pytest.raises(InputError) as err:
        read_ytf(tmp_path)
    assert "no YouTube Faces layout" in _one_line(err)
    with pytest.raises(InputError):
        read_ytf(tmp_path / "absent")


def _subset_keys() -> set[str]:
    """The videos on disk, listed directly (not through read_ytf)."""
    return {f"{v.parent.name}/{v.name}" for v in need(FRAMES_DB).glob("*/*") if v.is_dir()}


def test_protocol_and_evaluable_pairs():
    protocol = read_protocol(need(PROTOCOL))
    assert len(protocol.names) == 3425 and protocol.labels.shape == (3425,)
    assert len(protocol.pairs) == 5000 and sum(p.same for p in protocol.pairs) == 2500
    assert [sum(p.fold == k for p in protocol.pairs) for k in range(10)] == [500] * 10

    # The same count, computed independently from the names file and the raw 1-based splits.
    keys = _subset_keys()
    names = (PROTOCOL / "Youtube_names.txt").read_text().split()
    splits = scipy.io.loadmat(PROTOCOL / "Youtube_splits.mat")["m"].astype(int)
    present = np.array([name in keys for name in names])
    both = present[splits[:, 0, :] - 1] & present[splits[:, 1, :] - 1]
    pairs, counts = protocol.evaluable(keys)
    assert counts["evaluable"] == len(pairs) == int(both.sum())
    assert counts["total"] == 5000 and counts["missing_video"] == 5000 - counts["evaluable"]
    assert counts["per_fold"] == both.sum(axis=0).tolist()
    assert counts["same"] == int(splits[:, 2, :][both].sum()) and counts["same"] + counts["different"] == len(pairs)
    assert all(p.key1 in keys and p.key2 in keys for p in pairs)


def _write_meta(path, names, labels, splits):
    cell = np.empty((len(names), 1), dtype=object)
    cell[:, 0] = names
    scipy.io.savemat(path, {"video_names": cell, "video_labels": np.asarray(labels, dtype=float).reshape(1, -1),
                            "Splits": np.asarray(splits, dtype=float)})


def test_meta_and_splits_roundtrip(tmp_path):
    names = ["A/0", "A/1", "B/0", "C/2"]
    splits = np.zeros((2, 3, 2))
    splits[:, :, 0] = [[1, 2, 1], [1, 3, 0]]
    splits[:, :, 1] = [[3, 4, 0], [2, 1, 1]]
    meta = tmp_path / "meta_data" / "meta_and_splits.mat"
    meta.parent.mkdir()
    _write_meta(meta, names, [1, 1, 2, 3], splits)
    for where in (meta, tmp_path, meta.parent):
        protocol = read_protocol(where)
        assert protocol.names == tuple(names) and protocol.labels.tolist() == [1, 1, 2, 3]
        assert protocol.pairs == (YtfPair(0, "A/0", "A/1", True), YtfPair(0, "A/0", "B/0", False),
                                  YtfPair(1, "B/0", "C/2", False), YtfPair(1, "A/1", "A/0", True))
    pairs, counts = protocol.evaluable({"A/0", "A/1", "B/0"})
    assert len(pairs) == 3 and counts["per_fold"] == [2, 1] and (counts["same"], counts["different"]) == (2, 1)


@pytest.mark.parametrize("labels, splits, message", [
    ([1, 1], [[[1], [3], [1]]], "outside the 1..2"),
    ([1, 1], [[[0], [1], [1]]], "outside the 1..2"),
    ([1, 1], [[[1], [2], [2]]], "is_same"),
    ([1, 1, 1], [[[1], [2], [1]]], "3 video labels for 2"),
    ([1, 1], [[1, 2]], "shape"),
])
def test_bad_protocol_is_an_input_error(tmp_path, labels, splits, message):
    meta = tmp_path / "meta_and_splits.mat"
    _write_meta(meta, ["A/0", "B/0"], labels, splits)
    with pytest.raises(InputError) as err:
        read_protocol(meta)
    assert message in _one_line(err)


def test_protocol_missing_parts_are_input_errors(tmp_path):
    with pytest.raises(InputError):
        read_protocol(tmp_path)
    scipy.io.savemat(tmp_path / "meta_and_splits.mat", {"names": np.zeros(3)})
    with pytest.raises(InputError) as err:
        read_protocol(tmp_path)
    assert "no variable 'video_names'" in _one_line(err)
