"""`vidfiqa faces` and the CLI's handling of bad input, run as a user runs it (a subprocess)."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import DATA, need


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "vidfiqa", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_version():
    res = run_cli("--version")
    assert res.returncode == 0 and "vidfiqa" in res.stdout


@pytest.fixture(scope="module")
def odd_inputs(tmp_path_factory, astronaut):
    """One folder with every kind of input a user throws at us, good and bad."""
    root = tmp_path_factory.mktemp("inputs")
    Image.fromarray(astronaut).save(root / "rgb.jpg")
    Image.fromarray(astronaut).convert("L").save(root / "gray.png")
    Image.fromarray((np.asarray(Image.fromarray(astronaut).convert("L"), np.uint16) * 257)).save(root / "sixteen.png")
    Image.fromarray(astronaut).convert("CMYK").save(root / "cmyk.jpg")
    Image.fromarray(astronaut).resize((6000, 6000)).save(root / "huge.jpg", quality=70)
    Image.fromarray(np.full((300, 400, 3), 90, np.uint8)).save(root / "noface.png")
    (root / "zero.jpg").write_bytes(b"")
    (root / "notes.png").write_text("not an image")
    return root


def test_faces_on_odd_inputs(tmp_path, odd_inputs):
    out = tmp_path / "out"
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    res = run_cli("faces", odd_inputs, tmp_path / "missing.jpg", empty, "-o", out)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    err = res.stderr
    for phrase in ("zero.jpg: empty file", "notes.png: not a readable image", "missing.jpg: no such file", "empty_dir: directory contains no images", "noface.png: no face found"):
        assert phrase in " ".join(err.split()), f"missing message: {phrase}\n{err}"
    rows = list(csv.DictReader(open(out / "faces.csv")))
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in rows}
    # Every readable image with a face gives exactly one face row, with a crop on disk.
    assert set(by_name) == {"rgb.jpg", "gray.png", "sixteen.png", "cmyk.jpg", "huge.jpg"}
    assert len(rows) == 5
    for r in rows:
        crop = np.asarray(Image.open(out / r["crop"]))
        assert crop.shape == (112, 112, 3)
    # The huge image was downscaled for detection but reported in its own pixel coordinates.
    ref = np.array([float(by_name["rgb.jpg"][k]) for k in ("reye_x", "reye_y", "leye_x", "leye_y")])
    huge = np.array([float(by_name["huge.jpg"][k]) for k in ("reye_x", "reye_y", "leye_x", "leye_y")])
    assert np.abs(huge / (6000 / 512) - ref).max() < 3


def test_nothing_processable_exits_nonzero(tmp_path):
    (tmp_path / "zero.jpg").write_bytes(b"")
    res = run_cli("faces", tmp_path / "zero.jpg", tmp_path / "nope", "-o", tmp_path / "out")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr and "empty file" in res.stderr


def test_bad_option_is_one_line(tmp_path, astronaut):
    Image.fromarray(astronaut).save(tmp_path / "a.jpg")
    res = run_cli("faces", tmp_path / "a.jpg", "-o", tmp_path / "out", "--detector", "yunet")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and "--detector-model" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_faces_on_a_real_folder(tmp_path):
    folder = need(DATA / "faces" / "angelina_jolie")
    res = run_cli("faces", folder, "-o", tmp_path / "out", "--largest-only")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(open(tmp_path / "out" / "faces.csv")))
    n_images = len([p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")])
    assert len(rows) == n_images  # one face per photo
    assert all(float(r["score"]) > 0.6 for r in rows)
