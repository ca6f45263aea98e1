"""`vidfiqa faces`, `embed`, `models` and the CLI's handling of bad input.

One test per command runs it as a user does (a subprocess of ``python -m vidfiqa``: the entry
point, exit codes and stderr of a real process); the others call the same entry point,
``vidfiqa.cli.main``, in this process (no interpreter and torch start-up per call, and the models
cached by the first call are reused).
"""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import DATA, need


def run_cli(*args):
    """``python -m vidfiqa ARGS`` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "vidfiqa", *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture
def cli(capsys):
    """``vidfiqa ARGS`` in this process through the console entry point ``vidfiqa.cli.main``:
    a CompletedProcess with its exit status and what it wrote to stdout and stderr."""
    from vidfiqa.cli import main

    def run(*args):
        capsys.readouterr()  # drop what the test printed before
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


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


def test_nothing_processable_exits_nonzero(tmp_path, cli):
    (tmp_path / "zero.jpg").write_bytes(b"")
    res = cli("faces", tmp_path / "zero.jpg", tmp_path / "nope", "-o", tmp_path / "out")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr and "empty file" in res.stderr


def test_bad_option_is_one_line(tmp_path, astronaut, cli):
    Image.fromarray(astronaut).save(tmp_path / "a.jpg")
    res = cli("faces", tmp_path / "a.jpg", "-o", tmp_path / "out", "--detector", "yunet")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and "--detector-model" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_faces_on_a_real_folder(tmp_path, cli):
    folder = need(DATA / "faces" / "angelina_jolie")
    res = cli("faces", folder, "-o", tmp_path / "out", "--largest-only")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(open(tmp_path / "out" / "faces.csv")))
    n_images = len([p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")])
    assert len(rows) == n_images  # one face per photo
    assert all(float(r["score"]) > 0.6 for r in rows)


# ----------------------------------------------------------------------------- embed, models
def test_embed_cli_torch_and_onnx_agree(tmp_path, shared_models, cli):
    folder = need(DATA / "faces" / "angelina_jolie")
    env_args = ("--weights", shared_models / "mobilefacenet_foamliu.pt")
    res_t = run_cli("embed", folder, "-o", tmp_path / "t.npy", *env_args)  # the subprocess for `embed`
    res_o = cli("embed", folder, "-o", tmp_path / "o.npy", "--backend", "onnx", *env_args)
    assert res_t.returncode == 0 and res_o.returncode == 0, res_t.stderr + res_o.stderr
    t, o = np.load(tmp_path / "t.npy"), np.load(tmp_path / "o.npy")
    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert t.shape == (len(rows), 128) and t.dtype == np.float32
    assert np.abs(t - o).max() < 1e-3
    # Photos of one person: every pair of embeddings is similar.
    u = t / np.linalg.norm(t, axis=1, keepdims=True)
    assert (u @ u.T)[np.triu_indices(len(u), 1)].mean() > 0.4


def test_embed_missing_weights_is_one_line(tmp_path, astronaut, monkeypatch, cli):
    Image.fromarray(astronaut).save(tmp_path / "a.jpg")
    monkeypatch.setenv("VIDFIQA_WEIGHTS", str(tmp_path))
    res = cli("embed", tmp_path / "a.jpg", "-o", tmp_path / "e.npy")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    line = res.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "mobilefacenet_foamliu.pt" in line and "90a00ba1d8b0b688" in line and "VIDFIQA_WEIGHTS" in line


def faceless_patches(folder, astronaut, count: int = 12):
    """``count`` small patches of the photo's background (real pixels, no face in any)."""
    folder.mkdir()
    for k in range(count):
        y, x = 16 * (k % 4), 330 + 12 * (k // 4)
        Image.fromarray(np.ascontiguousarray(astronaut[y:y + 40, x:x + 40])).save(folder / f"bg{k:02d}.png")
    return folder


def test_faceless_images_exit_0_in_every_command(tmp_path, shared_models, astronaut, cli):
    """README's table: 0 when something was processed.  `score` exited 1 on a folder of faceless
    images while `faces` exited 0 (and `embed` 1): images that were read and searched are
    processed, with or without a face; each is named on stderr."""
    folder = faceless_patches(tmp_path / "tiny", astronaut)
    for command in (["faces", folder, "-o", tmp_path / "f"], ["score", folder, "-o", tmp_path / "s.csv"],
                    ["embed", folder, "-o", tmp_path / "e.npy", "--weights", shared_models / "mobilefacenet_foamliu.pt"]):
        res = cli(*command)
        assert res.returncode == 0, (command[0], res.stderr)
        assert " ".join(res.stderr.split()).count("no face found") == 12, (command[0], res.stderr)
    rows = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert len(rows) == 12 and all(r["quality"] == "" for r in rows)
    assert not (tmp_path / "e.npy").exists()


def without_root_override(command: list) -> list:
    """``command`` as a user for whom a mode of 000 means no access: root reads through it
    (CAP_DAC_OVERRIDE), so as root the command runs with those capabilities dropped."""
    import os
    import shutil

    if os.geteuid() != 0:
        return command
    if shutil.which("setpriv") is None:
        pytest.skip("running as root and util-linux's setpriv is missing: cannot drop CAP_DAC_OVERRIDE")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]


def test_an_unreadable_input_folder_is_an_input_error_with_its_reason(tmp_path, astronaut):
    """An unreadable folder given to `run` exited 4 (the output-error code) and `score`/`faces`
    called it "directory contains no images"; a subfolder that could not be read was skipped
    silently.  Now: `run` exits 2 saying why, and the photo commands name the folder and the
    reason and go on with the rest (an .avif among them, which folders skipped before)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    Image.fromarray(astronaut).save(locked / "a.jpg")
    mixed = tmp_path / "mixed"
    (mixed / "closed").mkdir(parents=True)
    Image.fromarray(astronaut).save(mixed / "closed" / "b.jpg")
    Image.fromarray(astronaut).save(mixed / "c.avif")
    locked.chmod(0)
    (mixed / "closed").chmod(0)
    try:
        run = subprocess.run(without_root_override([sys.executable, "-m", "vidfiqa", "run", str(locked), "-o", str(tmp_path / "g"), "-q"]),
                             capture_output=True, text=True, timeout=300)
        score = subprocess.run(without_root_override([sys.executable, "-m", "vidfiqa", "score", str(locked), str(mixed), "-o", str(tmp_path / "s.csv")]),
                               capture_output=True, text=True, timeout=300)
    finally:
        locked.chmod(0o755)
        (mixed / "closed").chmod(0o755)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip() == f"vidfiqa: error: {locked}: cannot read folder (Permission denied)", run.stderr
    assert score.returncode == 0, score.stderr
    err = " ".join(score.stderr.split())
    assert f"skipped {locked}: cannot read folder (Permission denied)" in err, err
    assert f"skipped {mixed / 'closed'}: cannot read folder (Permission denied)" in err, err
    assert "contains no images" not in err
    rows = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert [r["path"] for r in rows if r["quality"]] == [str(mixed / "c.avif")], rows


def test_models_lists_what_is_found_and_missing(tmp_path, shared_models, monkeypatch, cli):
    monkeypatch.setenv("VIDFIQA_WEIGHTS", str(shared_models))
    res = run_cli("models")  # the subprocess for `models` (it inherits the environment)
    assert res.returncode == 0, res.stderr
    line = next(row for row in res.stdout.splitlines() if "mobilefacenet" in row)
    assert "ready" in line
    iresnet = next(row for row in res.stdout.splitlines() if "iresnet50" in row)
    assert "missing" in iresnet and "iresnet50.pth" in iresnet
    monkeypatch.setenv("VIDFIQA_WEIGHTS", str(tmp_path))
    res = cli("models")
    assert res.returncode == 0, res.stderr
    line = next(row for row in res.stdout.splitlines() if "mobilefacenet" in row)
    assert "missing" in line
