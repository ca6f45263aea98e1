"""EDC (FNMR vs discard) and pAUC: hand-checked toy cases, the fixed-threshold rule, the random
and perfect-order references, the input files and `vidfiqa eval edc`."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import DATA, MOBILEFACENET_PT, need
from vidfiqa.errors import InputError
from vidfiqa.eval.edc import (
    edc_curve,
    evaluate,
    floor_curve,
    floor_pauc_continuous,
    pauc,
    random_baseline,
    report_json,
    threshold_at_fmr,
)
from vidfiqa.eval.verification import Pairs, all_pairs


# ----------------------------------------------------------------------------- toy cases
def toy():
    """10 genuine pairs (3 fail at the threshold), 1000 impostor pairs, FMR 1e-2.

    k = floor(0.01 * 1000) = 10 -> threshold = 11th highest impostor score = 0.5 * 989/999.
    Genuine scores below it: 0.1, 0.2, 0.3 (qualities 1, 1, 2).  Qualities 1 and 1 tie.
    """
    g_scores = np.array([0.1, 0.9, 0.2, 0.8, 0.7, 0.95, 0.3, 0.85, 0.6, 0.75])
    g_quality = np.array([1, 5, 1, 4, 3, 6, 2, 7, 8, 9], float)
    imp = np.linspace(0, 0.5, 1000)
    scores = np.r_[g_scores, imp]
    genuine = np.r_[np.ones(10, bool), np.zeros(1000, bool)]
    quality = np.r_[g_quality, np.full(1000, 0.0)]
    return scores, genuine, quality


def test_toy_curve_and_pauc_by_hand():
    scores, genuine, quality = toy()
    curve = edc_curve(scores, genuine, quality, fmr=1e-2)
    assert curve.threshold == pytest.approx(0.5 * 989 / 999)
    # The two pairs of quality 1 leave together: no point at 0.1.  Then quality 2 (the last
    # failure) at 0.3, then one pair at a time with no failures left.
    np.testing.assert_allclose(curve.discard, [0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    np.testing.assert_allclose(curve.fnmr, [3 / 10, 1 / 8, 0, 0, 0, 0, 0, 0, 0])
    assert curve.fnmr0 == pytest.approx(0.3)
    # Stepwise: 0.3 on [0, 0.2), 1/8 on [0.2, 0.3), 0 after.
    assert curve.pauc(0.2) == pytest.approx(0.3 * 0.2)
    assert curve.pauc(0.25) == pytest.approx(0.3 * 0.2 + 0.125 * 0.05)
    assert curve.pauc(0.3) == pytest.approx(0.0725)
    assert curve.normalised_pauc(0.3) == pytest.approx(0.0725 / (0.3 * 0.3))
    # Perfect order on the 1/10 grid: 3/10, 2/9, 1/8, 0 -> 0.1 * (0.3 + 2/9 + 1/8) at 0.3.
    floor = floor_curve(10, 3)
    np.testing.assert_allclose(floor.fnmr, [0.3, 2 / 9, 1 / 8, 0])
    assert floor.pauc(0.3) == pytest.approx(0.1 * (0.3 + 2 / 9 + 1 / 8))
    assert curve.pauc(0.3) > floor.pauc(0.3)  # the tie costs this score the 0.1 step


def test_ties_change_the_answer():
    """Breaking the tie at quality 1 would add a point at 0.1 and lower the pAUC."""
    scores, genuine, quality = toy()
    broken = quality.copy()
    broken[0] = 0.5  # the failing pair of the tie now goes first on its own
    tied, untied = edc_curve(scores, genuine, quality, fmr=1e-2), edc_curve(scores, genuine, broken, fmr=1e-2)
    assert 0.1 not in tied.discard and 0.1 in untied.discard
    assert untied.pauc(0.2) == pytest.approx(0.1 * 0.3 + 0.1 * 2 / 9)
    assert untied.pauc(0.2) < tied.pauc(0.2)


def test_constant_quality_is_exactly_random():
    scores, genuine, _ = toy()
    curve = edc_curve(scores, genuine, np.ones_like(scores), fmr=1e-2)
    assert list(curve.discard) == [0.0] and curve.normalised_pauc(0.3) == pytest.approx(1.0)


def test_threshold_stays_fixed_while_discarding():
    """Low-quality impostors score high.  Recomputing the threshold on the retained pairs (the
    pitfall) lowers it once they are discarded; the EDC keeps the 0 %-discard threshold."""
    g_scores = np.array([0.1, 0.2, 0.45, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97])
    g_quality = np.arange(1, 11, dtype=float)
    imp_scores = np.r_[np.linspace(0.9, 0.99, 10), np.linspace(0, 0.5, 90)]
    imp_quality = np.r_[np.zeros(10), np.full(90, 10.0)]
    scores = np.r_[g_scores, imp_scores]
    genuine = np.r_[np.ones(10, bool), np.zeros(100, bool)]
    quality = np.r_[g_quality, imp_quality]

    curve = edc_curve(scores, genuine, quality, fmr=0.1)
    fixed, _ = threshold_at_fmr(imp_scores, 0.1)
    assert fixed == pytest.approx(0.5) and curve.threshold == fixed
    # Pitfall: after discarding quality <= 1, the retained impostors are the 90 low scorers.
    retained_imp = imp_scores[imp_quality > 1]
    recomputed, _ = threshold_at_fmr(retained_imp, 0.1)
    assert recomputed < 0.45 < fixed
    kept = g_scores[g_quality > 1]
    pitfall_fnmr = np.mean(kept <= recomputed)  # 1/9: 0.45 would count as a match
    fixed_fnmr = np.mean(kept <= fixed)  # 2/9
    assert fixed_fnmr == pytest.approx(2 / 9) and pitfall_fnmr == pytest.approx(1 / 9)
    assert curve.at(0.1) == pytest.approx(fixed_fnmr)
    # Impostor qualities cannot move an FNMR-EDC at all.
    shuffled = np.r_[g_quality, np.random.default_rng(0).random(100)]
    other = edc_curve(scores, genuine, shuffled, fmr=0.1)
    np.testing.assert_array_equal(other.fnmr, curve.fnmr)


def test_threshold_realised_fmr_and_resolution():
    imp = np.arange(100, dtype=float)
    t, realised = threshold_at_fmr(imp, 0.05)
    assert t == 94 and realised == 0.05  # 95..99 are above: 5 of 100
    t, realised = threshold_at_fmr(imp, 1e-3)  # fewer than 1/FMR impostors: the top one
    assert t == 99 and realised == 0.0


def synthetic(n_photos=400, n_ids=40, seed=0):
    """Photos with a hidden 'difficulty'; genuine comparison scores fall with difficulty."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_ids), n_photos // n_ids)
    hard = rng.random(n_photos)
    pairs = all_pairs(labels, max_impostors=None)
    worst = np.maximum(hard[pairs.first], hard[pairs.second])
    scores = np.where(pairs.genuine, 0.9 - 0.8 * worst + 0.1 * rng.standard_normal(len(pairs)), 0.1 * rng.standard_normal(len(pairs)))
    return pairs, scores, hard


def test_random_order_normalised_pauc_is_about_one():
    pairs, scores, _ = synthetic()
    rng = np.random.default_rng(1)
    values = [edc_curve(scores, pairs.genuine, rng.random(len(pairs)), fmr=1e-3).normalised_pauc(0.3) for _ in range(40)]
    assert np.mean(values) == pytest.approx(1.0, abs=0.03)
    # The reported baseline: pair-level and photo-level seeded draws both average ~1.
    t, _ = threshold_at_fmr(scores[~pairs.genuine], 1e-3)
    failed = scores[pairs.genuine] <= t
    gp = Pairs(pairs.first[pairs.genuine], pairs.second[pairs.genuine], pairs.genuine[pairs.genuine])
    for kwargs in ({}, {"pairs": gp}):
        base = random_baseline(failed, [0.2, 0.3], permutations=100, seed=0, **kwargs)
        assert base["0.3"]["expected"] == 1.0
        assert base["0.3"]["mean"] == pytest.approx(1.0, abs=0.05) and 0 < base["0.3"]["std"] < 0.3


def test_perfect_order_reaches_the_floor():
    pairs, scores, hard = synthetic()
    # Quality = the genuine score itself: the failing pairs are exactly the lowest ones.
    curve = edc_curve(scores, pairs.genuine, scores, fmr=1e-3)
    n, e = curve.n_genuine, int(curve.errors[0])
    floor = floor_curve(n, e)
    for limit in (0.2, 0.3):
        assert curve.pauc(limit) == pytest.approx(floor.pauc(limit))
        # The continuous formula is the limit of the stepwise floor: within one step.
        assert floor.pauc(limit) - floor_pauc_continuous(curve.fnmr0, limit) == pytest.approx(0, abs=curve.fnmr0 / n + 1e-12)
    x = floor.discard
    np.testing.assert_allclose(floor.fnmr, np.clip((curve.fnmr0 - x) / (1 - x), 0, None), atol=1e-12)
    # A good-but-imperfect score (the hidden difficulty) lands between floor and random.
    photo_q = -hard
    real = evaluate(scores, pairs, {"difficulty": photo_q}, fmrs=[1e-3], limits=[0.3], permutations=20)
    nauc = real["fmr"][0]["methods"]["difficulty"]["normalised"]["0.3"]
    assert real["fmr"][0]["floor"]["0.3"]["normalised"] < nauc < 0.9


def test_pauc_rejects_bad_curves():
    with pytest.raises(ValueError):
        pauc(np.array([0.1, 0.2]), np.array([0.3, 0.2]), 0.3)
    with pytest.raises(ValueError):
        edc_curve(np.array([0.5, 0.1]), np.array([True, False]), np.array([np.nan, 1.0]))


def test_evaluate_report_is_strict_json():
    pairs, scores, hard = synthetic(n_photos=30, n_ids=6)  # 60 genuine, 375 impostor pairs
    report = evaluate(scores, pairs, {"a": -hard, "b": np.zeros_like(hard)}, fmrs=[1e-3, 1e-2], limits=[0.2, 0.3], permutations=10)
    data = json.loads(report_json(report))
    first = data["fmr"][0]
    # 375 impostors cannot resolve FMR 1e-3 (the threshold is the top impostor), but 1e-2.
    assert first["fmr_resolved"] is False and first["realised_fmr"] == 0 and data["fmr"][1]["fmr_resolved"] is True
    assert set(first["methods"]) == {"a", "b"} and "_curves" not in first
    assert first["methods"]["b"]["normalised"]["0.3"] == pytest.approx(1.0)  # constant score
    pts = first["methods"]["a"]["points"]
    assert pts["discard"][0] == 0 and len(pts["discard"]) == len(pts["fnmr"]) <= 201


# ----------------------------------------------------------------------------- input files
def test_pairs_and_quality_csv(tmp_path):
    from PIL import Image

    from vidfiqa.eval.edc_inputs import read_pairs_csv, read_quality_csv

    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    (tmp_path / "pairs.csv").write_text("path_a,path_b,genuine\na.png,b.png,1\na.png,c.png,false\nb.png,gone.png,0\n")
    plist = read_pairs_csv(tmp_path / "pairs.csv")
    assert [p.name for p in plist.paths] == ["a.png", "b.png", "c.png"]
    assert list(plist.pairs.genuine) == [True, False] and plist.skipped_rows == 1 and plist.missing == ["gone.png"]
    (tmp_path / "q.csv").write_text(f"path,quality\na.png,0.5\n{tmp_path / 'b.png'},\n")
    q = read_quality_csv(tmp_path / "q.csv", plist.paths)
    assert q[0] == 0.5 and np.isnan(q[1]) and np.isnan(q[2])  # empty and absent: no face
    (tmp_path / "bad.csv").write_text("path_a,path_b,genuine\na.png,b.png,maybe\n")
    with pytest.raises(InputError, match="genuine must be"):
        read_pairs_csv(tmp_path / "bad.csv")
    (tmp_path / "other.csv").write_text("path,quality\nelsewhere.png,1\n")
    with pytest.raises(InputError, match="none of its paths"):
        read_quality_csv(tmp_path / "other.csv", plist.paths)


# ----------------------------------------------------------------------------- the command
def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "vidfiqa", *map(str, args)], capture_output=True, text=True, timeout=300, env=env)


def test_cli_bad_options_are_one_line(tmp_path):
    ids = tmp_path / "ids.csv"
    ids.write_text("path,identity\n")
    for args, phrase in (
        (["--methods", "sharpnes"], "unknown quality method 'sharpnes'"),
        (["--scores", "nofile"], "--scores expects NAME=FILE.csv"),
        (["--scores", f"floor={ids}"], "'floor' is reserved"),
        (["--methods", ""], "nothing to evaluate"),
    ):
        res = run_cli("eval", "edc", ids, "-o", tmp_path / "r.json", *args)
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("vidfiqa: error:"), res.stderr
        assert phrase in lines[0]


def test_cli_eval_edc_on_ten_identities(tmp_path):
    source = need(DATA / "faces" / "identities.csv")
    need(MOBILEFACENET_PT)
    rows = list(csv.DictReader(open(source, encoding="utf-8")))
    keep = sorted({r["identity"] for r in rows})[:10]
    ids = tmp_path / "ids.csv"
    chosen = [r for r in rows if r["identity"] in keep]
    with open(ids, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "identity"])
        writer.writerows([[str(DATA / r["path"]), r["identity"]] for r in chosen])
    # Precomputed scores with one photo lacking a score: it must leave every method.
    pre = tmp_path / "pre.csv"
    with open(pre, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "quality"])
        writer.writerows([[str(DATA / r["path"]), "" if i == 0 else i % 7] for i, r in enumerate(chosen)])
    out, png = tmp_path / "report.json", tmp_path / "edc.png"
    env = {**os.environ, "VIDFIQA_WEIGHTS": str(MOBILEFACENET_PT.parent)}
    res = run_cli("eval", "edc", ids, "--methods", "sharpness,face_size,random", "--scores", f"pre={pre}", "-o", out, "--plot", png, env=env)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    report = json.loads(out.read_text())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    counts = report["counts"]
    assert counts["photos"] == len(chosen) and counts["embedded"] >= 0.9 * len(chosen)
    assert counts["used"] == counts["embedded"] - counts["excluded_no_quality"] and counts["excluded_no_quality"] >= 1
    assert report["methods"]["pre"]["missing"] >= 1
    assert counts["genuine_pairs"] > 100 and counts["impostor_pairs"] > 1000
    assert report["comparator"]["model"] == "mobilefacenet"
    assert [e["fmr"] for e in report["fmr"]] == [1e-3, 1e-2]
    for entry in report["fmr"]:
        assert 0 < entry["fnmr0"] < 1
        assert set(entry["methods"]) == {"sharpness", "face_size", "random", "pre"}
        for m in entry["methods"].values():
            for limit in ("0.2", "0.3"):
                assert m["normalised"][limit] is not None and np.isfinite(m["normalised"][limit])
                assert m["normalised"][limit] >= entry["floor"][limit]["normalised"] - 1e-9
    assert "face_size" in res.stdout and "floor" in res.stdout
