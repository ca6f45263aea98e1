"""Face verification with MobileFaceNet on the identity sets of ../shared/data.

Every genuine pair of each identities.csv, up to 200k seeded impostor pairs; the issue's bar is
ROC AUC >= 0.95 on faces/ and glint24_aligned/.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DATA, need
from vidfiqa.eval.verification import all_pairs, comparison_scores, roc_auc, tar_at_far


def test_roc_auc_known_cases():
    genuine = np.array([True, True, False, False])
    assert roc_auc(np.array([0.9, 0.8, 0.1, 0.2]), genuine) == 1.0
    assert roc_auc(np.array([0.1, 0.2, 0.9, 0.8]), genuine) == 0.0
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), genuine) == 0.5
    assert roc_auc(np.array([0.9, 0.1, 0.5, 0.2]), genuine) == 0.5  # (1 + 1 + 0 + 0) / 4
    scores = np.r_[np.linspace(0.5, 1, 10), np.linspace(0, 0.6, 100)]
    labels = np.r_[np.ones(10, bool), np.zeros(100, bool)]
    # FAR 0: the threshold is the highest impostor score (0.6); only genuines above it count.
    assert tar_at_far(scores, labels, 0.0) == pytest.approx((scores[:10] > 0.6).mean())


def test_all_pairs_counts():
    labels = np.array([0, 0, 0, 1, 1, 2])
    pairs = all_pairs(labels, max_impostors=None)
    assert len(pairs) == 15 and pairs.genuine.sum() == 4  # C(3,2) + C(2,2)
    assert np.all(labels[pairs.first[pairs.genuine]] == labels[pairs.second[pairs.genuine]])
    emb = np.eye(6)[labels]  # one-hot by identity: perfect embeddings
    assert roc_auc(comparison_scores(emb, pairs), pairs.genuine) == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("name, aligned", [("faces", False), ("glint24_aligned", True)])
def test_mobilefacenet_verification_auc(mfn_onnx, retinaface, name, aligned):
    from vidfiqa.datasets import read_identity_csv
    from vidfiqa.eval.verification import verify
    from vidfiqa.photos import embed_photos

    ids = read_identity_csv(need(DATA / name / "identities.csv"))
    assert not ids.missing
    emb, found = embed_photos(ids.paths, mfn_onnx, None if aligned else retinaface, aligned_input=aligned)
    assert found.mean() > 0.97, f"faces found in only {found.mean():.1%} of {name}"
    report = verify(name, emb[found], ids.labels[found], photos=len(ids))
    print(report.row())
    assert report.genuine_pairs > 1000 and report.impostor_pairs > 10000
    assert report.auc >= 0.95, report.row()
    # The same embeddings with identities shuffled must fall to chance: the AUC measures identity.
    shuffled = np.random.default_rng(0).permutation(ids.labels[found])
    assert abs(verify(name, emb[found], shuffled, photos=len(ids)).auc - 0.5) < 0.05
