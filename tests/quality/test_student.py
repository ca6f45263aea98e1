"""The bundled eDifFIQA student: loads from the package, ranks real faces, gives embeddings."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import DATA, missing, need
from vidfiqa import degrade
from vidfiqa.quality.ediffiqa import BUNDLED_ONNX



@pytest.fixture(autouse=True, scope="module")
def _bundled_student():
    if not BUNDLED_ONNX.is_file():
        missing(f"bundled student {BUNDLED_ONNX.name} not in this checkout")


def _sharpest_glint(n_people=8):
    import cv2

    root = need(DATA / "glint24_aligned")
    crops = []
    for person in sorted(p for p in root.iterdir() if p.is_dir())[:n_people]:
        candidates = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(person.glob("*.png"))[:5]]
        crops.append(max(candidates, key=lambda c: cv2.Laplacian(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()))
    return np.stack(crops)


def test_student_ranks_clean_above_blurred_and_downscaled(student):
    scorer = student
    clean = _sharpest_glint()
    ruined = np.stack([degrade.apply(c, "blur;sigma=3+downscale;size=24") for c in clean])
    q_clean, q_ruined = scorer.score(clean), scorer.score(ruined)
    assert np.all(q_clean > q_ruined), (q_clean, q_ruined)


def test_student_quality_falls_with_severity(student):
    scorer = student
    clean = _sharpest_glint(6)
    means = [scorer.score(np.stack([degrade.apply(c, f"blur;sigma={s}") for c in clean])).mean() for s in (0.5, 1.5, 3.0, 5.0)]
    assert all(a > b for a, b in zip(means, means[1:])), means


def test_student_embedding_keeps_identity(student):
    """The student's embedding still recognises people (it is what keeps selected frames diverse)."""
    from vidfiqa.datasets import read_identity_csv
    from vidfiqa.eval.verification import verify

    ids = read_identity_csv(need(DATA / "glint24_aligned" / "identities.csv"))
    keep = np.flatnonzero(np.arange(len(ids)) % 4 == 0)
    crops = np.stack([np.asarray(Image.open(ids.paths[i]).convert("RGB")) for i in keep])
    _, emb = student.score_and_embed(crops)
    assert emb.shape == (len(keep), 128)
    assert verify("glint", emb, ids.labels[keep], photos=len(keep)).auc > 0.95


def test_score_cli_reports_missing_faces(tmp_path, astronaut):
    Image.fromarray(astronaut).save(tmp_path / "a.jpg")
    Image.fromarray(np.full((120, 160, 3), 30, np.uint8)).save(tmp_path / "dark.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    out = tmp_path / "scores.csv"
    res = subprocess.run([sys.executable, "-m", "vidfiqa", "score", tmp_path, "-o", out], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in csv.DictReader(open(out))}
    assert set(rows) == {"a.jpg", "dark.png", "broken.jpg"}  # nothing dropped silently
    assert float(rows["a.jpg"]["quality"]) > 0 and rows["dark.png"]["quality"] == "" and rows["broken.jpg"]["quality"] == ""
    assert "no face found" in res.stderr and "broken.jpg" in res.stderr


def test_student_edc_on_held_out_people(student, mfn_onnx):
    """EDC on glint24 people the student never saw (the development split) with seeded degraded
    copies: the student beats sharpness and random, and is no worse than its teacher signal."""
    from vidfiqa.datasets import read_identity_csv
    from vidfiqa.eval.edc import evaluate
    from vidfiqa.eval.verification import all_pairs, comparison_scores
    from vidfiqa.quality import make_scorer
    from vidfiqa.train.cropset import split_of

    ids = read_identity_csv(need(DATA / "glint24_aligned" / "identities.csv"))
    dev = [i for i, name in enumerate(ids.identities) if split_of(f"glint24_aligned:{name}") == "dev"]
    assert len(dev) > 100, "the development split holds too few glint24 people"
    clean = np.stack([np.asarray(Image.open(ids.paths[i]).convert("RGB")) for i in dev])
    rng = np.random.default_rng(0)
    degraded = np.stack([degrade.apply(c, degrade.sample(rng)) for c in clean])
    crops = np.concatenate([clean, degraded])
    labels = np.concatenate([ids.labels[dev]] * 2)
    embeddings = mfn_onnx.embed(crops)
    pairs = all_pairs(labels, max_impostors=None)
    quality = {
        "student": student.score(crops),
        "sharpness": make_scorer("sharpness").score(crops),
        "embedding_norm": np.linalg.norm(embeddings, axis=1),
        "random": rng.random(len(crops)),
    }
    report = evaluate(comparison_scores(embeddings, pairs), pairs, quality, fmrs=[1e-2], limits=[0.3])
    pauc = {name: m["normalised"]["0.3"] for name, m in report["fmr"][0]["methods"].items()}
    assert pauc["student"] < pauc["sharpness"] < pauc["random"] + 0.05, pauc
    assert pauc["student"] <= pauc["embedding_norm"] + 0.01, pauc


def test_a_pytorch_checkpoint_runs_on_the_device_asked_for(tmp_path):
    """``EDifFIQA(checkpoint=..., device=...)`` places the network on that device (it used to stay
    on the CPU whatever was asked); a GPU that is not there is a one-line configuration error."""
    import torch

    from vidfiqa.errors import ConfigError
    from vidfiqa.quality.ediffiqa import EDifFIQA, build_model

    torch.manual_seed(0)
    path = tmp_path / "student.pt"
    torch.save(build_model("T").state_dict(), path)
    scorer = EDifFIQA(checkpoint=path, device="cpu", batch_size=4)
    assert next(scorer._torch.parameters()).device.type == "cpu"
    crops = np.random.default_rng(0).integers(0, 255, (5, 112, 112, 3), dtype=np.uint8)
    q, e = scorer.score_and_embed(crops)
    assert q.shape == (5,) and e.shape == (5, scorer.embedding_dim) and np.isfinite(q).all()
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="cuda"):
            EDifFIQA(checkpoint=path, device="cuda")
        assert next(EDifFIQA(checkpoint=path, device="auto")._torch.parameters()).device.type == "cpu"
