"""YouTube Faces made surveillance-like: do vidfiqa's template and picks pay off on mixed-quality video?

    python benchmarks/ytf_cctv.py build      # mixed-quality copies of ytf_aligned_dev ($VIDFIQA_CACHE/ytf_cctv/)
    python benchmarks/ytf_cctv.py score      # `vidfiqa rescore ytf` of each copy and of the clean set (resumable)
    python benchmarks/ytf_cctv.py report     # -> results/ytf_cctv.{json,md}

Data: ../shared/data/ytf_aligned_dev (50 people, 119 videos, 5,980 tight face crops of YouTube
Faces).  ``build`` writes, per seed, a copy in which every video has runs of frames degraded the
way camera footage is, and the rest left as it was:

- a fraction of each video's frames, drawn per video from 0.3..0.7, in runs of 3..10 frames
  (a person walking through shadow, a burst of motion, a moment of heavy compression);
- each run one kind, at one level drawn from ``LEVELS`` (``vidfiqa.degrade``'s 0..1 severity;
  realistic, not destroyed): motion blur, defocus, shrinking (a small face), darkness, sensor noise
  of a dark scene at the camera's gain, over-exposure, JPEG, H.264 blocking at a low bitrate,
  occlusion.  Noise and occluder positions vary frame to frame within a run, as they do in video.

``CHOOSE_SEEDS`` make the sets the settings are chosen on; ``REPORT_SEEDS`` other draws of the
degradations (other runs, kinds and levels on the same people), on which the chosen settings are
reported, beside clean YTF.  What a frame got is in ``degradations.csv`` beside each copy.  The
copies stay out of the repository (written under $VIDFIQA_CACHE, default ~/.cache/vidfiqa).

What the data is not: real surveillance video.  The faces are YouTube interview crops, already
detected and tightly cropped; degradations are applied to the crop, not to the scene before
detection, so detection failures of real cameras are not modelled (a crop whose face the
detector cannot find again is simply not scored, as in the pipeline).

``report``: TAR at FAR 1e-2 over every pair of videos (7,021 pairs: 119 videos), MobileFaceNet
templates, for the template rules and the pipeline's picks, with 95 % intervals over videos
(paired bootstrap: each rule's difference from the all-frames mean has its own interval); the
student's per-kind AUC (a degraded frame against the clean frames of its own video); the
settings chosen on the choosing seeds and the product's figures on the reporting seeds and clean.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ytf_templates import CACHE as YTF_DEV_CACHE  # noqa: E402  (the same folders as the templates study)
from ytf_templates import MFN, REPO, RESULTS, SHARED  # noqa: E402

CLEAN = SHARED / "data" / "ytf_aligned_dev"
CACHE = YTF_DEV_CACHE.parent / "ytf_cctv"

CHOOSE_SEEDS = (11, 12)
REPORT_SEEDS = (21, 22)
MIX_KINDS = ("motion_blur", "defocus", "downscale", "low_light", "sensor_noise", "overexposure", "jpeg", "h264", "occlusion")
LEVELS = (0.35, 0.9)  # severity range of a run (degrade.py's 0..1)
FRACTION = (0.3, 0.7)  # share of a video's frames degraded
RUN_LENGTH = (3, 10)  # frames per run, inclusive


# ---------------------------------------------------------------------- build
def plan_video(frames: int, rng: np.random.Generator) -> list[tuple[int, int, str, float]]:
    """Runs ``(start, stop, kind, severity)`` covering about a drawn fraction of ``frames``
    (later runs overwrite earlier ones where they overlap)."""
    target = int(round(rng.uniform(*FRACTION) * frames))
    marked = np.zeros(frames, bool)
    runs = []
    while marked.sum() < target:
        length = int(rng.integers(RUN_LENGTH[0], RUN_LENGTH[1] + 1))
        start = int(rng.integers(0, max(1, frames - length + 1)))
        stop = min(frames, start + length)
        runs.append((start, stop, MIX_KINDS[int(rng.integers(len(MIX_KINDS)))], float(rng.uniform(*LEVELS))))
        marked[start:stop] = True
    return runs


def frame_specs(frames: int, rng: np.random.Generator) -> list[str]:
    """Each frame's degradation (text form of ``vidfiqa.degrade``; '' = left clean)."""
    from vidfiqa import degrade

    specs = [""] * frames
    for start, stop, kind, severity in plan_video(frames, rng):
        # One draw of the run's settings; what varies frame to frame in video (noise, where an
        # occluder is) is drawn again per frame from the run's own generator.
        base = degrade._sample_one(kind, np.random.default_rng(rng.integers(1 << 62)), severity)
        for f in range(start, stop):
            spec = base
            if kind in ("sensor_noise", "low_light"):
                spec = replace(base, params=tuple((k, float(rng.integers(1 << 30)) if k == "seed" else v) for k, v in base.params))
            elif kind == "occlusion":
                spec = degrade._sample_one(kind, np.random.default_rng(rng.integers(1 << 62)), severity)
            specs[f] = str(spec)
    return specs


def build_set(seed: int) -> Path:
    import cv2

    from vidfiqa import degrade
    from vidfiqa.atomic import atomic_write_text

    out = CACHE / f"seed{seed}"
    if (out / "degradations.csv").is_file():
        return out
    rows = []
    for person in sorted((CLEAN / "aligned_images_DB").iterdir()):
        for video in sorted(p for p in person.iterdir() if p.is_dir()):
            files = sorted(video.glob("*.jpg"), key=lambda p: int(p.stem.rsplit(".", 1)[1]))
            rng = np.random.default_rng([seed, zlib.crc32(f"{person.name}/{video.name}".encode())])
            target = out / "aligned_images_DB" / person.name / video.name
            target.mkdir(parents=True, exist_ok=True)
            for path, spec in zip(files, frame_specs(len(files), rng)):
                crop = cv2.imread(str(path))[..., ::-1]
                if spec:
                    crop = degrade.apply(crop, spec)
                # Every frame is written again as a JPEG at quality 100 (YTF's layout names .jpg
                # files): its own loss is far below the damage's.
                ok = cv2.imwrite(str(target / path.name), np.ascontiguousarray(crop[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 100])
                if not ok:
                    raise OSError(f"could not write {target / path.name}")
                rows.append((f"{person.name}/{video.name}", int(path.stem.rsplit(".", 1)[1]), spec.split(";", 1)[0] if spec else "clean", spec))
    lines = ["video,frame,kind,spec"] + [f"{v},{f},{k},{s}" for v, f, k, s in rows]
    atomic_write_text(out / "degradations.csv", "\n".join(lines) + "\n")
    return out


def read_degradations(folder: Path) -> dict[tuple[str, int], str]:
    with open(folder / "degradations.csv", newline="") as f:
        return {(r["video"], int(r["frame"])): r["kind"] for r in csv.DictReader(f)}


# ---------------------------------------------------------------------- score
def sets() -> dict[str, Path]:
    """Name -> YTF root: the clean set and every seed's copy."""
    out = {"clean": CLEAN}
    for seed in CHOOSE_SEEDS + REPORT_SEEDS:
        out[f"seed{seed}"] = CACHE / f"seed{seed}"
    return out


def parquet(name: str, embed: str) -> Path:
    return CACHE / "scores" / f"{name}_{embed}.parquet"


def rescore(name: str, root: Path, embed: str, student: Path | None = None) -> Path:
    """One `vidfiqa rescore ytf` run; ``student``: quality only (``--embed none``) from this ONNX
    student instead of the bundled one, kept as ``<set>_quality-<its folder>.parquet``."""
    out = parquet(name, embed if student is None else f"quality-{student.parent.name}")
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "vidfiqa", "rescore", "ytf", str(root), "--method", "ediffiqa", "--embed", embed, "-o", str(out)]
    if student is not None:
        command += ["--option", f"onnx={student}"]
    elif embed != "student":
        command += ["--weights", str(MFN)]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=REPO, env={**os.environ, "VIDFIQA_WEIGHTS": str(SHARED / "models")})
    return out


# ---------------------------------------------------------------------- report
def load_videos(name: str, student: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """video -> (quality, MobileFaceNet embeddings, student embeddings, frame numbers), frames in
    order; a frame counts when both runs found its face.  ``student``: the quality of another
    student's run (``score --student``) instead of the bundled one's."""
    from ytf_templates import frames_table

    mfn, own = frames_table(parquet(name, "mobilefacenet")), frames_table(parquet(name, "student"))
    if student is not None:
        other = frames_table(parquet(name, f"quality-{student}"))
        mfn = {key: (other.get(key, (np.nan, None))[0], e) for key, (_, e) in mfn.items()}
    by_video: dict[str, list[int]] = {}
    for video, frame in mfn:
        by_video.setdefault(video, []).append(frame)
    videos = {}
    for video, frames in by_video.items():
        q, e, d, kept = [], [], [], []
        for frame in sorted(frames):
            quality, me = mfn[(video, frame)]
            _, se = own.get((video, frame), (np.nan, None))
            if me is None or se is None or not np.isfinite(quality):
                continue
            q.append(quality), e.append(me), d.append(se), kept.append(frame)
        if q:
            videos[video] = (np.asarray(q), np.stack(e), np.stack(d), np.asarray(kept))
    return videos


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, in float64 (the project's l2_normalize keeps float32 as it is)."""
    from vidfiqa.boxes import l2_normalize

    return l2_normalize(np.asarray(x, np.float64))


def template_candidates() -> dict[str, dict]:
    """Template rules tried: name -> parameters (see :func:`template`)."""
    out: dict[str, dict] = {"mean": {"rule": "mean"}}
    for k in (3, 5, 8):
        out[f"top-{k}"] = {"rule": "top", "k": k}
    for t in (0.02, 0.03, 0.05, 0.07, 0.1, 0.13, 0.17):
        out[f"weighted T={t}"] = {"rule": "weighted", "t": t}
    for c in (0.25, 0.5, 0.75, 1.0):
        out[f"weighted T={c}*spread"] = {"rule": "relative", "c": c}
    for delta in (0.05, 0.1, 0.15, 0.2, 0.3):
        out[f"within {delta} of best"] = {"rule": "floor", "delta": delta}
    for delta in (0.1, 0.15, 0.2):
        for t in (0.05, 0.1):
            out[f"within {delta} of best, T={t}"] = {"rule": "floor", "delta": delta, "t": t}
    return out


def template(q: np.ndarray, e: np.ndarray, p: dict) -> np.ndarray:
    u = unit(e)
    rule = p["rule"]
    if rule == "mean":
        w = np.ones(len(q))
    elif rule == "top":
        w = np.zeros(len(q))
        w[np.argsort(-q, kind="stable")[: p["k"]]] = 1
    elif rule == "weighted":
        w = np.exp((q - q.max()) / p["t"])
    elif rule == "relative":
        w = np.exp((q - q.max()) / max(p["c"] * float(np.std(q)), 1e-3))
    elif rule == "floor":
        keep = q >= q.max() - p["delta"]
        w = keep * (np.exp((q - q.max()) / p["t"]) if "t" in p else 1.0)
    else:
        raise ValueError(rule)
    return unit(w @ u)


def pick_candidates() -> dict[str, dict]:
    """The pipeline's picks (k = 3) under other selection settings: diversity and a floor
    relative to the track's best merit (``None``: the settings as shipped)."""
    out: dict[str, dict] = {}
    for diversity in (0.0, 0.1, 0.2, 0.3):
        for delta in (None, 0.05, 0.1, 0.2):
            out[f"selected k=3, diversity {diversity}" + ("" if delta is None else f", within {delta} of best")] = {"diversity": diversity, "delta": delta}
    return out


def picks(q: np.ndarray, d: np.ndarray, p: dict, k: int = 3) -> np.ndarray:
    """Frame indices the pipeline's selection picks with these settings (its own smoothing,
    merit and MMR, select/diverse.py), eligible = within ``delta`` of the best merit."""
    from vidfiqa.eval.setverify import VIDEO_FPS
    from vidfiqa.select.diverse import select_diverse
    from vidfiqa.select.rule import SelectionRule, merit
    from vidfiqa.select.smoothing import smooth_quality

    rule = replace(SelectionRule.default(), top_k=k, diversity=p["diversity"])
    m = merit(q, smooth_quality(q, rule.smooth_window, rule.smooth_sigma))
    eligible = None if p["delta"] is None else m >= np.nanmax(m) - p["delta"]
    return np.asarray(select_diverse(m, np.arange(len(q)) / VIDEO_FPS, d, rule, eligible=eligible), int)


def rule_scores(videos: dict, pairs: list[tuple[str, str, bool]]) -> dict[str, np.ndarray]:
    """Pair scores (template cosine) of every rule and candidate."""
    from vidfiqa.eval import setverify as sv
    from vidfiqa.select.rule import SelectionRule
    from vidfiqa.select.template_rules import selected_frames

    keys = sorted(videos)
    row = {k: i for i, k in enumerate(keys)}
    a = np.array([row[x] for x, _, _ in pairs])
    b = np.array([row[y] for _, y, _ in pairs])
    out: dict[str, np.ndarray] = {}

    def add(name: str, templates: list[np.ndarray]) -> None:
        t = np.stack(templates)
        out[name] = np.einsum("ij,ij->i", t[a], t[b])

    from vidfiqa.select.template_rules import product_template

    add("product", [product_template(videos[k][1], videos[k][0]) for k in keys])  # what vidfiqa run ships, its own builder
    for name, p in template_candidates().items():
        add(name, [template(videos[k][0], videos[k][1], p) for k in keys])
    for k in (3, 5):
        add(f"random-{k}", [sv.mean_template(videos[v][1][sv.select_frames(videos[v][0], k, "random", sv._video_rng(0, v))]) for v in keys])
        add(f"first-{k}", [sv.mean_template(videos[v][1][:k]) for v in keys])
    shipped = SelectionRule.default()
    add("selected k=3 (as shipped)", [sv.mean_template(videos[v][1][selected_frames(videos[v][0], np.arange(len(videos[v][0])) / sv.VIDEO_FPS,
                                                                                   videos[v][2], shipped)]) for v in keys])
    for name, p in pick_candidates().items():
        add(name, [sv.mean_template(videos[v][1][picks(videos[v][0], videos[v][2], p)]) for v in keys])
    return out


def evaluate(videos: dict, draws: int) -> dict:
    """TAR@FAR 1e-2 per rule with 95 % intervals over videos, each paired with the mean's: one
    set is the pooled evaluation of a single copy."""
    result = evaluate_pooled([videos], draws)
    result.pop("copies")
    return result


def evaluate_pooled(sets_videos: list[dict], draws: int) -> dict:
    """TAR@FAR 1e-2 over the pairs of several copies of the same videos together (each copy's
    pairs within itself), one threshold for all: the degradations' own chance is averaged out.
    The bootstrap resamples *videos*, a video taking its copies in every set with it, so the
    intervals still describe other people and videos, not only other draws of damage."""
    from vidfiqa.eval import setverify as sv

    keys = sorted(set.intersection(*(set(v) for v in sets_videos)))
    number = {k: i for i, k in enumerate(keys)}
    pairs = sv.extra_pairs(keys)
    same = np.tile(np.array([s for _, _, s in pairs], bool), len(sets_videos))
    first = np.tile(np.array([number[x] for x, _, _ in pairs]), len(sets_videos))
    second = np.tile(np.array([number[y] for _, y, _ in pairs]), len(sets_videos))
    per_set = [rule_scores({k: v[k] for k in keys}, pairs) for v in sets_videos]
    scores = {name: np.concatenate([p[name] for p in per_set]) for name in per_set[0]}
    boot = sv.bootstrap_tar(scores, first, second, same, len(keys), "mean", sv.FAR, draws=draws, seed=0)
    return {"copies": len(sets_videos), "videos": len(keys), "pairs": int(same.size), "same_person_pairs": int(same.sum()),
            "rules": {n: {k: round(v, 4) for k, v in r.items()} for n, r in boot.items()}}


def kind_auc(videos: dict, degradations: dict[tuple[str, int], str]) -> dict:
    """Per kind: ROC AUC of the student's quality, that kind's frames against the clean frames of
    the same video (a clean frame should score higher), averaged over videos holding both."""
    out: dict[str, list[float]] = {}
    for video, (q, _, _, frames) in videos.items():
        kinds = np.array([degradations.get((video, int(f)), "clean") for f in frames])
        clean = q[kinds == "clean"]
        if clean.size == 0:
            continue
        for kind in set(kinds) - {"clean"}:
            bad = q[kinds == kind]
            # Mann-Whitney: P(clean > degraded) + 0.5 P(tie)
            greater = (clean[:, None] > bad[None, :]).mean() + 0.5 * (clean[:, None] == bad[None, :]).mean()
            out.setdefault(kind, []).append(float(greater))
    return {k: {"auc": round(float(np.mean(v)), 4), "videos": len(v)} for k, v in sorted(out.items())}


def utility_drop(videos: dict, degradations: dict[tuple[str, int], str]) -> dict:
    """Per kind: how much it costs recognition and how much the student marks it down, averaged
    over videos: the drop of a frame's MobileFaceNet cosine to its video's clean-frame template,
    and the drop of the student's quality, against the clean frames of the same video."""
    cos_drop: dict[str, list[float]] = {}
    q_drop: dict[str, list[float]] = {}
    for video, (q, e, _, frames) in videos.items():
        kinds = np.array([degradations.get((video, int(f)), "clean") for f in frames])
        clean = kinds == "clean"
        if clean.sum() < 3:
            continue
        u = unit(e)
        cosine = u @ unit(u[clean].mean(0))
        for kind in set(kinds) - {"clean"}:
            cos_drop.setdefault(kind, []).append(float(cosine[clean].mean() - cosine[kinds == kind].mean()))
            q_drop.setdefault(kind, []).append(float(q[clean].mean() - q[kinds == kind].mean()))
    return {k: {"mobilefacenet_cosine_drop": round(float(np.mean(cos_drop[k])), 4), "student_quality_drop": round(float(np.mean(q_drop[k])), 4)}
            for k in sorted(cos_drop)}


def found_share(videos: dict, degradations: dict[tuple[str, int], str]) -> dict:
    """Per kind: the share of its frames whose face was found again (and scored)."""
    total: dict[str, int] = {}
    for kind in degradations.values():
        total[kind] = total.get(kind, 0) + 1
    found: dict[str, int] = {}
    for video, (_, _, _, frames) in videos.items():
        for f in frames:
            kind = degradations.get((video, int(f)), "clean")
            found[kind] = found.get(kind, 0) + 1
    return {k: round(found.get(k, 0) / n, 4) for k, n in sorted(total.items())}


def report(args) -> None:
    from benchinfo import Run

    run = Run("ytf_cctv.py", sys.argv[1:], timed=False)
    results: dict = {"data": __doc__.split("What the data is not:")[0].split("Data: ", 1)[1].strip(),
                     "what_it_is_not": "Real surveillance video: YouTube interview crops, degraded after detection and cropping.",
                     "choose_seeds": list(CHOOSE_SEEDS), "report_seeds": list(REPORT_SEEDS), "kinds": list(MIX_KINDS),
                     "levels": list(LEVELS), "fraction": list(FRACTION), "run_length": list(RUN_LENGTH), "far": 1e-2, "draws": args.draws,
                     "sets": {}}
    results["student"] = args.student or "bundled"
    for name, root in sets().items():
        videos = load_videos(name, args.student)
        entry: dict = {"frames_scored": int(sum(len(v[0]) for v in videos.values()))}
        if name != "clean":
            degradations = read_degradations(root)
            entry["degraded_share"] = round(sum(k != "clean" for k in degradations.values()) / len(degradations), 4)
            entry["kind_auc"] = kind_auc(videos, degradations)
            entry["found"] = found_share(videos, degradations)
            entry["utility_drop"] = utility_drop(videos, degradations)
        entry.update(evaluate(videos, args.draws))
        results["sets"][name] = entry
        best = sorted(entry["rules"].items(), key=lambda kv: -kv[1]["tar"])[:5]
        print(name, {n: r["tar"] for n, r in best}, "mean", entry["rules"]["mean"]["tar"], flush=True)
    for family, seeds in (("choosing_pooled", CHOOSE_SEEDS), ("reporting_pooled", REPORT_SEEDS)):
        results[family] = evaluate_pooled([load_videos(f"seed{s}", args.student) for s in seeds], args.draws)
    results["choice"] = choose(results)
    data = run.write(RESULTS / f"{args.out}.json", results)
    (RESULTS / f"{args.out}.md").write_text(markdown(data))


def choose(results: dict) -> dict:
    """The template rule and the picks' settings: highest TAR over the choosing seeds' copies pooled, among
    the candidates that lose nothing on clean YTF that the interval supports (the paired
    difference from the mean's TAR has its upper end above 0)."""
    from vidfiqa.select.template_rules import TEMPLATE_TEMPERATURE

    chosen = {}
    names = list(results["sets"]["clean"]["rules"])
    clean = results["sets"]["clean"]["rules"]
    mean_tar = {n: results["choosing_pooled"]["rules"][n]["tar"] for n in names}
    safe = {n for n in names if clean[n]["diff_high"] > 0}
    for family, members in (("template", list(template_candidates())), ("picks", [n for n in names if n.startswith("selected k=3")])):
        ranked = sorted((n for n in members if n in safe), key=lambda n: -mean_tar[n])
        chosen[family] = {"chosen": ranked[0] if ranked else None,
                          "choosing_tar": {n: round(mean_tar[n], 4) for n in sorted(members, key=lambda n: -mean_tar[n])},
                          "unsafe_on_clean": sorted(set(members) - safe)}
    chosen["shipped_before"] = {"template": f"weighted T={TEMPLATE_TEMPERATURE}", "picks": "selected k=3 (as shipped)"}
    return chosen


def markdown(data: dict) -> str:
    lines = ["# YouTube Faces, surveillance-like: templates and picks on mixed-quality video", "",
             f"Data: {data['data']}", "", f"What it is not: {data['what_it_is_not']}", "",
             f"TAR at FAR {data['far']:g} over every pair of videos, MobileFaceNet templates; 95 % intervals over videos "
             f"({data['draws']} bootstrap draws), the difference from the all-frames mean with its own paired interval.", ""]
    choice = data.get("choice", {})
    for family in ("template", "picks"):
        c = choice.get(family)
        if c:
            lines.append(f"- chosen {family} (on seeds {', '.join(map(str, data['choose_seeds']))}, none losing on clean): **{c['chosen']}**")
    lines.append("")
    report_names = ["product", choice.get("shipped_before", {}).get("template"), choice.get("template", {}).get("chosen"),
                    choice.get("shipped_before", {}).get("picks"), choice.get("picks", {}).get("chosen"), "top-3", "top-5", "random-3", "first-3"]
    report_names = [n for i, n in enumerate(report_names) if n and n not in report_names[:i]]
    lines += ["## Chosen against shipped, on every set", "", "| set | rule | TAR | 95 % | vs mean | 95 % |", "|---|---|---|---|---|---|"]
    for name, entry in data["sets"].items():
        rules = entry["rules"]
        lines.append(f"| {name} | mean | {rules['mean']['tar']:.3f} | [{rules['mean']['low']:.3f}, {rules['mean']['high']:.3f}] | | |")
        for n in report_names:
            r = rules[n]
            lines.append(f"| {name} | {n} | {r['tar']:.3f} | [{r['low']:.3f}, {r['high']:.3f}] | {r['diff']:+.3f} | [{r['diff_low']:+.3f}, {r['diff_high']:+.3f}] |")
    for family, title in (("reporting_pooled", "reporting seeds"), ("choosing_pooled", "choosing seeds")):
        pooled = data.get(family)
        if not pooled:
            continue
        lines += ["", f"## The {title} pooled ({pooled['copies']} copies of {pooled['videos']} videos, {pooled['same_person_pairs']} same-person pairs)", "",
                  "| rule | TAR | 95 % | vs mean | 95 % | P(better) |", "|---|---|---|---|---|---|"]
        r = pooled["rules"]["mean"]
        lines.append(f"| mean | {r['tar']:.3f} | [{r['low']:.3f}, {r['high']:.3f}] | | | |")
        for n in report_names:
            r = pooled["rules"][n]
            lines.append(f"| {n} | {r['tar']:.3f} | [{r['low']:.3f}, {r['high']:.3f}] | {r['diff']:+.3f} | [{r['diff_low']:+.3f}, {r['diff_high']:+.3f}] | {r['p_better']:.2f} |")
    lines += ["", "## The student's per-kind AUC (a degraded frame against its video's clean frames)", "",
              "| set | " + " | ".join(data["kinds"]) + " |", "|---|" + "---|" * len(data["kinds"])]
    for name, entry in data["sets"].items():
        if "kind_auc" in entry:
            lines.append(f"| {name} | " + " | ".join(f"{entry['kind_auc'].get(k, {}).get('auc', float('nan')):.3f}" for k in data["kinds"]) + " |")
    lines += ["", "What each kind costs recognition (drop of MobileFaceNet's cosine to the video's clean template) and how much the "
              "student marks it down (drop of its quality), against the clean frames of the same video, averaged over videos:", "",
              "| set | " + " | ".join(data["kinds"]) + " |", "|---|" + "---|" * len(data["kinds"])]
    for name, entry in data["sets"].items():
        if "utility_drop" in entry:
            u = entry["utility_drop"]
            lines.append(f"| {name} | " + " | ".join(f"{u[k]['mobilefacenet_cosine_drop']:.3f} / {u[k]['student_quality_drop']:.3f}" if k in u else "" for k in data["kinds"]) + " |")
    lines += ["", "Faces found again (scored) per kind:", "", "| set | clean | " + " | ".join(data["kinds"]) + " |", "|---|---|" + "---|" * len(data["kinds"])]
    for name, entry in data["sets"].items():
        if "found" in entry:
            lines.append(f"| {name} | {entry['found'].get('clean', float('nan')):.3f} | " + " | ".join(f"{entry['found'].get(k, float('nan')):.3f}" for k in data["kinds"]) + " |")
    lines += ["", "## Every candidate: TAR over the choosing seeds pooled", "", "| rule | choosing TAR | clean TAR | clean vs mean | 95 % |", "|---|---|---|---|---|"]
    clean = data["sets"]["clean"]["rules"]
    for family in ("template", "picks"):
        for n, tar in choice.get(family, {}).get("choosing_tar", {}).items():
            r = clean[n]
            lines.append(f"| {n} | {tar:.3f} | {r['tar']:.3f} | {r['diff']:+.3f} | [{r['diff_low']:+.3f}, {r['diff_high']:+.3f}] |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build")
    sc = sub.add_parser("score")
    sc.add_argument("--student", type=Path, default=None, help="also (only) the quality of this student ONNX (its folder names it)")
    r = sub.add_parser("report")
    r.add_argument("--draws", type=int, default=1000)
    r.add_argument("--student", default=None, help="rank by this student's quality (score --student, by its folder's name)")
    r.add_argument("--out", default="ytf_cctv", help="results/<out>.json and .md")
    args = parser.parse_args()
    if args.command == "build":
        for seed in CHOOSE_SEEDS + REPORT_SEEDS:
            print(build_set(seed), flush=True)
    elif args.command == "score":
        for name, root in sets().items():
            if args.student is not None:
                rescore(name, root, "none", args.student.resolve())
                continue
            for embed in ("mobilefacenet", "student"):
                rescore(name, root, embed)
    else:
        report(args)


if __name__ == "__main__":
    main()
