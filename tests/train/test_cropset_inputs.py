"""The crop set's input files are pinned (training/cropset_v1_inputs.sha256): ``build`` reads
exactly the listed files, ignores files added to ../shared later and refuses changed ones."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import DATA, REPO, SHARED, need

from vidfiqa.train import cropset
from vidfiqa.train.cropset import INPUTS_V1, InputsChanged, build, check_inputs, plan, read_inputs, write_inputs

LABELS = REPO / "training" / "labels" / "candidates_v1.csv"


def source_file(key: str) -> str:
    """The file under <shared>/data a crop key was made from."""
    path = key.partition("|")[0].partition("#")[0]
    if path.startswith("clips/"):
        return "videos/" + path.split("/", 1)[1].split("@")[0]
    if path.startswith("ytf/"):
        return "ytf_subset/frame_images_DB/" + path[len("ytf/"):]
    return path


def test_manifest_pins_the_files_the_labelled_crops_came_from():
    """Every crop the committed teacher labels describe comes from a pinned file, and every pinned
    image or clip gave at least one crop - except the masked photos whose face was not found."""
    settings, pinned = read_inputs(INPUTS_V1)
    assert settings["ytf_stride"] == "3" and settings["clip_every"] == "15" and int(settings["files"]) == len(pinned)
    with open(LABELS, newline="") as handle:
        sources = {source_file(row["key"]) for row in csv.DictReader(handle)}
    assert sources <= set(pinned), sorted(sources - set(pinned))[:5]
    unused = [rel for rel in pinned if rel not in sources and not rel.endswith((".csv", ".labeled_faces.txt"))]
    assert {rel.split("/")[0] for rel in unused} <= {"rmfd_masked"} and len(unused) == 1996 - 1977


def test_pinned_list_is_what_the_builder_reads_from_shared():
    need(DATA / "ytf_subset")
    check = check_inputs(SHARED)
    assert check.ok, check.problems()
    assert check.planned == check.pinned  # same files, same order
    assert not check.missing and not check.changed


# --------------------------------------------------------------------------- a small fake ../shared
def fake_shared(root: Path) -> Path:
    data = root / "data"
    for name in cropset.IDENTITY_SETS:
        folder = data / name
        (folder / "p1").mkdir(parents=True)
        rows = ["path,identity"]
        for i in range(2):
            (folder / "p1" / f"{i}.jpg").write_bytes(f"{name} {i}".encode())
            rows.append(f"p1/{i}.jpg,p1")
        (folder / "identities.csv").write_text("\n".join(rows) + "\n")
    frames = data / "ytf_subset" / "frame_images_DB"
    (frames / "Ann" / "1").mkdir(parents=True)
    lines = []
    for i in range(6):
        (frames / "Ann" / "1" / f"1.{i}.jpg").write_bytes(b"frame %d" % i)
        lines.append(f"Ann\\1\\1.{i}.jpg,0,50,50,20,20,0.0,1")
    (frames / "Ann.labeled_faces.txt").write_text("\n".join(lines) + "\n")
    (data / "videos").mkdir()
    (data / "videos" / "clip.mp4").write_bytes(b"not really a video")
    return root


@pytest.fixture
def recorded(monkeypatch):
    """build() with its readers replaced by recorders (no model, no decoding)."""
    calls: dict[str, list[str]] = {"photos": [], "ytf": [], "videos": [], "detectors": []}

    class Detector:
        def __init__(self, **kwargs):
            calls["detectors"].append(kwargs)

    def add_identity_set(out, data_root, name, detector, progress=None, paths=None):
        calls["photos"] += [p.relative_to(data_root).as_posix() for p in paths]

    def add_ytf(out, ytf_root, detector, stride=3, progress=None, label_files=None):
        calls["ytf"] += [rel for _, rel, path, _ in cropset.ytf_frames(ytf_root, label_files, stride) if path.is_file()]

    def add_clips(out, videos_dir, detector, every=15, min_eye=12.0, progress=None, videos=None):
        calls["videos"] += [v.name for v in videos]

    import vidfiqa.detect

    monkeypatch.setattr(vidfiqa.detect, "RetinaFaceDetector", Detector)
    monkeypatch.setattr(cropset, "add_identity_set", add_identity_set)
    monkeypatch.setattr(cropset, "add_ytf", add_ytf)
    monkeypatch.setattr(cropset, "add_clips", add_clips)
    return calls


def test_build_reads_the_pinned_files_and_ignores_new_ones(tmp_path, recorded):
    shared = fake_shared(tmp_path / "shared")
    manifest = tmp_path / "inputs.sha256"
    pinned = write_inputs(shared, manifest)
    assert pinned == plan(shared).files()
    assert len(pinned) == 4 * 3 + 1 + 2 + 1  # 4 CSVs + 8 photos, 1 label file + every 3rd of 6 frames, 1 clip

    log: list[str] = []
    build(shared, inputs=manifest, log=log.append)
    first = {k: list(v) for k, v in recorded.items() if k != "detectors"}
    assert first["ytf"] == ["Ann/1/1.0.jpg", "Ann/1/1.3.jpg"] and first["videos"] == ["clip.mp4"]
    assert len(first["photos"]) == 8

    # New files in ../shared: another clip, another person's label file and frames, a photo no CSV lists.
    data = shared / "data"
    (data / "videos" / "new.mp4").write_bytes(b"new")
    (data / "ytf_subset" / "frame_images_DB" / "Bob" / "1").mkdir(parents=True)
    (data / "ytf_subset" / "frame_images_DB" / "Bob" / "1" / "1.0.jpg").write_bytes(b"bob")
    (data / "ytf_subset" / "frame_images_DB" / "Bob.labeled_faces.txt").write_text("Bob\\1\\1.0.jpg,0,5,5,2,2,0.0,1\n")
    (data / "faces" / "p1" / "extra.jpg").write_bytes(b"extra")
    for calls in recorded.values():
        calls.clear()
    log.clear()
    build(shared, inputs=manifest, log=log.append)
    assert {k: v for k, v in recorded.items() if k != "detectors"} == first
    assert any("ignoring 3 files" in line for line in log), log  # extra.jpg: no CSV lists it, so never read
    assert check_inputs(shared, manifest).ok

    # Unpinned, the same call would read the new files.
    assert len(plan(shared).files()) == len(pinned) + 3


@pytest.mark.parametrize("change", ["photo", "csv", "label", "remove_frame", "video"])
def test_build_refuses_changed_inputs_before_loading_a_model(tmp_path, recorded, change):
    shared = fake_shared(tmp_path / "shared")
    manifest = tmp_path / "inputs.sha256"
    write_inputs(shared, manifest)
    data = shared / "data"
    if change == "photo":
        (data / "celeba_wild" / "p1" / "1.jpg").write_bytes(b"another photo")
    elif change == "csv":
        with open(data / "faces" / "identities.csv", "a") as handle:
            handle.write("p1/0.jpg,p2\n")
    elif change == "label":
        with open(data / "ytf_subset" / "frame_images_DB" / "Ann.labeled_faces.txt", "a") as handle:
            handle.write("Ann\\1\\1.5.jpg,0,50,50,20,20,0.0,1\n")
    elif change == "remove_frame":
        (data / "ytf_subset" / "frame_images_DB" / "Ann" / "1" / "1.3.jpg").unlink()
    else:
        (data / "videos" / "clip.mp4").unlink()
    check = check_inputs(shared, manifest)
    assert not check.ok
    with pytest.raises(InputsChanged, match="pinned inputs"):
        build(shared, inputs=manifest, log=lambda m: None)
    assert recorded["detectors"] == [] and recorded["photos"] == []


def test_build_refuses_other_settings_than_pinned(tmp_path, recorded):
    shared = fake_shared(tmp_path / "shared")
    manifest = tmp_path / "inputs.sha256"
    write_inputs(shared, manifest)
    with pytest.raises(InputsChanged, match="ytf_stride"):
        build(shared, ytf_stride=2, inputs=manifest, log=lambda m: None)
    with pytest.raises(InputsChanged, match="not found"):
        build(shared, inputs=tmp_path / "absent.sha256", log=lambda m: None)
    assert recorded["detectors"] == []
