"""FaceQAN and FROQ on real aligned faces (glint24 crops) with the MobileFaceNet weights.

Quality must fall when a face is blurred (Gaussian sigma 3) or downscaled 4x and upscaled back;
FaceQAN must be reproducible under a seed whatever the batching; a FROQ calibration must pick a
few positively correlated layers, survive a JSON round trip and generalise to held-out faces.
Attack and pseudo-label sizes are cut down where the point is not the defaults themselves, to
keep this file well under two minutes on two shared CPU cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from conftest import DATA, MOBILEFACENET_PT, need
from vidfiqa.errors import ConfigError
from vidfiqa.quality import make_scorer

GLINT = DATA / "glint24_aligned"
# Cheap pseudo-labels for calibration in tests: 2x2 occlusion grid, one noise draw
# (7 forward passes per face instead of 76).
CHEAP = dict(occlusion_grid=2, noise_draws=1)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on two cores shared with other jobs, OpenMP's spinning second
    thread made MobileFaceNet 2-3x *slower*, not faster."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def identities() -> list[Path]:
    return sorted(p for p in need(GLINT).iterdir() if p.is_dir())


def load(paths) -> np.ndarray:
    return np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths])


def crops_of(people: list[Path], per_person: int, skip: int = 0) -> np.ndarray:
    """``per_person`` crops of each person (files in name order, after the first ``skip``)."""
    return load([p for person in people for p in sorted(person.glob("*.png"))[skip : skip + per_person]])


def blurred(crops: np.ndarray) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(c, (0, 0), 3) for c in crops])


def downscaled(crops: np.ndarray) -> np.ndarray:
    return np.stack([cv2.resize(cv2.resize(c, (28, 28), interpolation=cv2.INTER_AREA), (112, 112), interpolation=cv2.INTER_LINEAR) for c in crops])


def degraded(crops: np.ndarray) -> np.ndarray:
    """One degraded copy per crop: blurred for even rows, downscaled for odd ones."""
    out = blurred(crops)
    out[1::2] = downscaled(crops[1::2])
    return out


@pytest.fixture(scope="module")
def weights() -> Path:
    return need(MOBILEFACENET_PT)


def sharpness(crop: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


@pytest.fixture(scope="module")
def eight() -> np.ndarray:
    """The sharpest (variance of the Laplacian) of the first 5 crops of each of 8 people who
    are not in the FROQ calibration set: a "clean" crop must not be blurry already."""
    return np.stack([max(crops_of([person], 5), key=sharpness) for person in identities()[16:24]])


# ----------------------------------------------------------------------------------- FaceQAN
def assert_ranks_clean_first(q: np.ndarray, allowed_misses: int = 0) -> None:
    """q: (3, N) scores of clean, blurred, downscaled crops."""
    for row, what in ((1, "blurred"), (2, "downscaled")):
        misses = int(np.sum(q[0] <= q[row]))
        assert misses <= allowed_misses, f"{misses} clean crops scored no higher than {what}:\n{q}"
        assert np.median(q[0] - q[row]) > 0, q


def test_faceqan_ranks_clean_above_degraded(weights, eight):
    scorer = make_scorer("faceqan", weights=weights, iterations=4, copies=2, batch_size=8)
    q = scorer.score(np.concatenate([eight, blurred(eight), downscaled(eight)])).reshape(3, -1)
    assert q.dtype == np.float32 and np.all((q >= 0) & (q <= 1))
    # One miss is tolerated: faces behind dark sunglasses can score *higher* blurred (seen on
    # another pick of these people's crops, with the default l = 5, k = 10 too).
    assert_ranks_clean_first(q, allowed_misses=1)


def test_faceqan_defaults_on_two_images(weights, eight):
    scorer = make_scorer("faceqan", weights=weights)
    assert (scorer.epsilon, scorer.iterations, scorer.copies, scorer.power) == (0.001, 5, 10, 5)
    pair = np.stack([eight[0], blurred(eight[:1])[0]])
    sims, s_f = scorer.similarities(pair)
    assert sims.shape == (2, 5, 10) and s_f.shape == (2,)
    # The attack pushes the copies away from the clean embedding, iteration after iteration.
    per_step = sims.mean(axis=2)
    assert np.all(np.diff(per_step, axis=1) < 0)
    q = scorer.score(pair)
    assert np.all((q > 0) & (q < 1)) and q[0] > q[1]


def test_faceqan_seeded_and_batch_independent(weights, eight):
    crops = eight[:3]
    small = dict(weights=weights, iterations=2, copies=3)
    first = make_scorer("faceqan", seed=7, batch_size=1, **small).score(crops)
    again = make_scorer("faceqan", seed=7, batch_size=1, **small).score(crops)
    batched = make_scorer("faceqan", seed=7, batch_size=3, **small)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, batched.score(crops))
    np.testing.assert_array_equal(first[::-1], batched.score(crops[::-1]))
    np.testing.assert_array_equal(first[1:2], batched.score(crops[1:2]))
    other = make_scorer("faceqan", seed=8, batch_size=3, **small).score(crops)
    assert not np.array_equal(first, other)
    np.testing.assert_allclose(first, other, atol=0.05)


def test_faceqan_folds_batchnorm_without_changing_its_answers(weights, eight):
    """FaceQAN's model has its BatchNorms folded into the convolutions (1.6x faster here): the
    same embeddings and, through the sign-of-gradient attack, the same scores to rounding."""
    from vidfiqa.quality.frmodel import FRModel

    folded = make_scorer("faceqan", weights=weights, iterations=3, copies=4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.fr.model.modules())
    plain = make_scorer("faceqan", weights=weights, iterations=3, copies=4)
    plain.fr = FRModel("mobilefacenet", weights)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.fr.model.modules())
    x = plain.fr.to_unit(eight)
    with torch.no_grad():
        a, b = plain.fr.embed(x), folded.fr.embed(x)
    assert torch.nn.functional.cosine_similarity(a, b).min() > 0.999999
    np.testing.assert_allclose(folded.score(eight), plain.score(eight), atol=5e-4)


def test_faceqan_options_are_checked(weights):
    with pytest.raises(ConfigError, match="unknown option.*iters"):
        make_scorer("faceqan", weights=weights, iters=3)
    with pytest.raises(ConfigError, match="epsilon"):
        make_scorer("faceqan", weights=weights, epsilon=0)
    with pytest.raises(ConfigError, match="not a differentiable"):
        make_scorer("faceqan", model="dlib")


def test_faceqan_and_froq_hooks_on_iresnet(tmp_path, eight):
    """Any differentiable registry backbone works: an (untrained) iresnet18 checkpoint."""
    from vidfiqa.backbones import iresnet18
    from vidfiqa.quality.froq import all_layer_norms
    from vidfiqa.quality.frmodel import FRModel

    torch.manual_seed(0)
    path = tmp_path / "iresnet18.pth"
    torch.save(iresnet18().state_dict(), path)
    q = make_scorer("faceqan", model="iresnet18", weights=path, iterations=2, copies=2).score(eight[:1])
    assert q.shape == (1,) and 0 <= q[0] <= 1
    names, norms = all_layer_norms(FRModel("iresnet18", path), eight[:2])
    assert {"conv1", "layer1.0.prelu", "layer4", "fc", "features"} <= set(names)
    assert norms.shape == (2, len(names)) and np.all(np.isfinite(norms))


# ----------------------------------------------------------------------------------- FROQ
@pytest.fixture(scope="module")
def froq(weights):
    """A FROQ scorer calibrated on 48 crops of 16 people plus one degraded copy of each.

    Measured at this size (cheap labels): 5 layers, rho 0.854 (standardised 0.858), smallest
    single-layer rho of a chosen layer 0.718; on the held-out eight 1 miss for blurred and 1 for
    downscaled (1 allowed), median gaps 1.91 and 1.19; held-out Spearman 0.83 (> 0 asserted).
    The earlier 300 crops cost 3x the time for the same picture (160 crops: rho 0.834)."""
    clean = crops_of(identities()[:16], 3)
    scorer = make_scorer("froq", weights=weights)
    calibration = scorer.calibrate(np.concatenate([clean, degraded(clean)]), **CHEAP)
    return scorer, calibration


def test_froq_calibration_selects_positive_layers(froq):
    _, cal = froq
    assert 1 <= len(cal.layers) <= 10
    single = {c["layer"]: c["rho"] for c in cal.candidates}
    assert len(single) == 10 and all(single[layer] > 0 for layer in cal.layers)
    assert cal.rho > 0 and cal.rho == max(cal.rho_trace) and len(cal.rho_trace) == 10
    assert cal.n_samples == 96 and cal.standardize is False
    # Both variants are recorded; the one used is the raw mean (the method as published).
    assert cal.comparison["raw"]["layers"] == cal.layers
    assert cal.comparison["standardized"]["rho"] > 0
    assert len(cal.mean) == len(cal.std) == len(cal.layers) and min(cal.std) > 0


def test_froq_json_round_trip_and_scoring_from_file(froq, weights, eight, tmp_path):
    from vidfiqa.quality.froq import Calibration

    scorer, cal = froq
    path = cal.save(tmp_path / "froq.json")
    data = json.loads(path.read_text())
    assert data["format"] == "vidfiqa-froq-calibration" and data["layers"] == cal.layers
    assert data["weights_sha256"] and data["alpha"] == 1e-3
    assert Calibration.load(path) == cal
    from_file = make_scorer("froq", calibration=path, weights=weights)
    np.testing.assert_array_equal(from_file.score(eight), scorer.score(eight))


def test_froq_ranks_clean_above_degraded(froq, eight):
    scorer, _ = froq
    q = scorer.score(np.concatenate([eight, blurred(eight), downscaled(eight)])).reshape(3, -1)
    assert q.dtype == np.float32
    # One miss is tolerated: the face behind dark sunglasses (crop 2) scores higher blurred;
    # even its default pseudo-label hardly drops (0.982 -> 0.981), so calibration cannot fix it.
    assert_ranks_clean_first(q, allowed_misses=1)


def test_froq_tracks_pseudo_labels_on_held_out_faces(froq):
    from vidfiqa.quality.froq_labels import pseudo_labels

    scorer, cal = froq
    clean = crops_of(identities()[16:24], 3, skip=1)  # 24 crops of people not calibrated on
    crops = np.concatenate([clean, degraded(clean)])
    labels = pseudo_labels(scorer.fr, crops, alpha=cal.alpha, draws=cal.noise_draws, grid=cal.occlusion_grid)
    assert spearmanr(scorer.score(crops), labels.q).statistic > 0


def test_froq_pseudo_labels_with_defaults(weights, eight):
    from vidfiqa.quality.froq_labels import occlusion_boxes, pseudo_labels
    from vidfiqa.quality.frmodel import FRModel

    boxes = occlusion_boxes(112, 8)
    assert len(boxes) == 64 and all(y1 - y0 == 14 and x1 - x0 == 14 for y0, y1, x0, x1 in boxes)
    labels = pseudo_labels(FRModel("mobilefacenet", weights), np.stack([eight[0], blurred(eight[:1])[0]]))
    for part in (labels.flip, labels.occlusion, labels.noise, labels.q):
        assert part.shape == (2,) and np.all((part > 0) & (part <= 1 + 1e-6))
    assert np.all(labels.noise > 0.999)  # alpha = 1e-3: the noise term is nearly constant
    assert labels.q[0] > labels.q[1]


def test_froq_errors(froq, weights, tmp_path):
    from dataclasses import replace

    from vidfiqa.quality.froq import FROQ

    with pytest.raises(ConfigError, match="needs a calibration"):
        FROQ(weights=weights).score(np.zeros((1, 112, 112, 3), np.uint8))
    with pytest.raises(ConfigError, match="unknown option"):
        FROQ(weights=weights, calibraton="x.json")
    _, cal = froq
    with pytest.raises(ConfigError, match="recalibrate for these weights"):
        FROQ(calibration=replace(cal, weights_sha256="0" * 64), weights=weights)
    bad = tmp_path / "bad.json"
    bad.write_text('{"layers": []}')
    with pytest.raises(ConfigError, match="not a FROQ calibration"):
        FROQ(calibration=bad, weights=weights)


# ----------------------------------------------------------------------------------- CLI
def run_cli(*args):
    # One thread in the child too, for the same reason as the fixture above.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VIDFIQA_WEIGHTS": str(MOBILEFACENET_PT.parent)}
    return subprocess.run([sys.executable, "-m", "vidfiqa", *map(str, args)], capture_output=True, text=True, timeout=300, env=env)


def test_cli_calibrate_froq(weights, tmp_path):
    folder = tmp_path / "crops"
    folder.mkdir()
    clean = crops_of(identities()[:6], 1)
    for i, crop in enumerate(np.concatenate([clean, degraded(clean)])):
        cv2.imwrite(str(folder / f"{i:02d}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out" / "froq.json"
    res = run_cli("calibrate", "froq", folder, "--aligned", "--occlusion-grid", "2", "--noise-draws", "1", "-o", out)
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    assert data["n_samples"] == 12 and data["model"] == "mobilefacenet" and 1 <= len(data["layers"]) <= 10
    err = " ".join(res.stderr.split())
    assert "raw norms rho by step" in err and "standardised norms rho by step" in err

    few = tmp_path / "few"
    few.mkdir()
    cv2.imwrite(str(few / "a.png"), clean[0])
    res = run_cli("calibrate", "froq", few, "--aligned", "-o", tmp_path / "none.json")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "needs at least 10 faces" in res.stderr and not (tmp_path / "none.json").exists()
