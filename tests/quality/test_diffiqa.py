"""The bundled DifFIQA model (vidfiqa.quality.diffiqa, shipped small diffusion model) ranks real
clean faces above their heavily degraded copies.

The scorer's training, maths and options are tested in tests/diffusion/test_diffiqa.py.  Here the
point is the ranking on real faces, asserted the way the method can guarantee it: DifFIQA's
quality is a mean cosine similarity, so every score sits just below 1 and the absolute gaps are
tiny (0.9867 against 0.9865 for the closest pair in an earlier version of this test, which
allowed one miss in eight).  What degrades is the *identity loss* 1 - q: it must grow for most
faces and, over the set, by a clear factor.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import GLINT, MOBILEFACENET_PT, need
from vidfiqa.quality import make_scorer

PEOPLE = slice(0, 12)  # 12 people, one face each
T = 1  # forward step: one UNet pass per image instead of five at the method's t = 5 (time budget)
# Measured with seed 0, t = 1, repeats = 1 on these 12 faces (the noise is seeded per crop, so a
# face's score does not depend on the batch): 9 of 12 clean faces above their heavy copy, median
# identity-loss ratio 1.30 (smallest 0.53), total loss ratio 1.18.  (The first 6 alone: 6 of 6,
# median 1.54 - a kinder subset, which is why the set grew.)  On all 24 people at t = 1: 20 of 24
# above, median 1.22, total 1.38; at t = 5, people 12-23: 12 of 12, median 1.41, total 1.47.
# One noise repeat at t = 1 is a noisy estimate: the bars allow one more miss than measured and
# keep about half the measured growth in loss.
MIN_ABOVE = 8 / 12
MIN_MEDIAN_RATIO = 1.15
MIN_TOTAL_RATIO = 1.08


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """On the shared 2-core machine a second OpenMP thread made this 2x slower (14.6 s against
    7.1 s per crop at t = 5, load average 7)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _sharpest_crop(person: Path) -> np.ndarray:
    crops = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(person.glob("*.png"))[:5]]
    return max(crops, key=lambda c: cv2.Laplacian(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def _heavy(crop: np.ndarray) -> np.ndarray:
    """Blurred (Gaussian sigma 3), then downscaled 4x and upscaled back."""
    small = cv2.resize(cv2.GaussianBlur(crop, (0, 0), 3), (28, 28), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (112, 112), interpolation=cv2.INTER_LINEAR)


@pytest.mark.slow
def test_bundled_diffiqa_ranks_clean_above_heavily_degraded():
    """One noise repeat and t = 1 (the suite's time budget; the paper uses 10 repeats at t = 5)
    and the small model: either degradation alone is too mild to separate every face, hence the
    heavy copy."""
    people = sorted(p for p in need(GLINT).iterdir() if p.is_dir())[PEOPLE]
    clean = np.stack([_sharpest_crop(p) for p in people])
    heavy = np.stack([_heavy(c) for c in clean])
    scorer = make_scorer("diffiqa", weights=need(MOBILEFACENET_PT), repeats=1, seed=0, t=T)
    q = scorer.score(np.concatenate([clean, heavy])).reshape(2, -1)
    assert np.isfinite(q).all() and np.all(q <= 1)
    loss_clean, loss_heavy = 1 - q[0], 1 - q[1]
    ratio = loss_heavy / np.maximum(loss_clean, 1e-6)
    above = float(np.mean(q[0] > q[1]))
    report = f"clean q {np.round(q[0], 4)}\nheavy q {np.round(q[1], 4)}\nloss ratio {np.round(ratio, 2)}"
    assert above >= MIN_ABOVE, f"only {above:.0%} of clean faces score above their heavy copy (need {MIN_ABOVE:.0%})\n{report}"
    assert np.median(ratio) >= MIN_MEDIAN_RATIO, f"median identity-loss ratio {np.median(ratio):.2f} < {MIN_MEDIAN_RATIO}\n{report}"
    assert loss_heavy.sum() >= MIN_TOTAL_RATIO * loss_clean.sum(), f"total loss ratio {loss_heavy.sum() / loss_clean.sum():.2f} < {MIN_TOTAL_RATIO}\n{report}"
