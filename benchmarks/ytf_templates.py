"""YouTube Faces at 50 people: which frames (and weights) make the best one-vector template, per quality method.

    python benchmarks/ytf_templates.py score [--methods ...]     # rescore ytf_aligned_dev, resumable
    python benchmarks/ytf_templates.py report                    # -> results/ytf_templates.{json,md,png}

Data: ../shared/data/ytf_aligned_dev (50 people, 119 videos, 5,980 tight face crops of YouTube
Faces; see its SOURCES.txt).  ``score`` runs `vidfiqa rescore ytf` once per method:

- the student (``ediffiqa``) twice, storing MobileFaceNet embeddings (what templates are made of
  and compared with, ../shared/models/mobilefacenet_foamliu.pt) and the student's own 128-d
  embeddings (what `vidfiqa run` keeps frames apart with, and what the product's templates are);
- every other method with ``--embed none`` (the frames, found and aligned the same way, line up
  by video and frame number): FROQ, the baselines (sharpness, detector confidence, embedding norm,
  face size), FaceQAN on every frame, DifFIQA on ``--diffiqa-frames`` evenly spaced frames per
  video with ``--diffiqa-repeats`` repeats.

Embedding parquets stay in $VIDFIQA_CACHE/ytf_dev (recomputed in minutes); the quality-only ones
are kept in benchmarks/results/ytf_dev/, and so are a slow method's shards while it is not
finished (commit them: a later run resumes them).

``report``: for each method, the frame-level EDC (normalised pAUC@0.3 at FMR 1e-2 over frames of
different videos, `vidfiqa eval ytf`'s) and template TAR at FAR 1e-2 over every pair of videos
(7,021: 119 videos) for each rule - all frames (the mean), top-k, random-k, first-k, weighted
(a softmax over quality, temperature chosen on one half of the people, reported on the other
and on all) and selected (`vidfiqa run`'s diverse picks) - with 95 % intervals over videos
(bootstrap, the same draws for every rule, so each rule's difference from the all-frames mean
has its own interval).  Also: the ROC AUC of the student's rules (the same paired bootstrap), the
``ceiling`` (how many same-person pairs the all-frames mean rejects, and how many even an oracle
choice of frames could lift over its threshold), and the frame-level EDC of every method on the
same frames with 95 % intervals over draws of 80 % of the people, once on the frames every
method scored and once on those DifFIQA's subset holds (results/ytf_templates_edc.png).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
SHARED = Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared"))
ROOT = SHARED / "data" / "ytf_aligned_dev"
CACHE = Path(os.environ.get("VIDFIQA_CACHE", Path.home() / ".cache" / "vidfiqa")) / "ytf_dev"
KEPT = REPO / "benchmarks" / "results" / "ytf_dev"
RESULTS = REPO / "benchmarks" / "results"

FAST = ["ediffiqa", "froq", "sharpness", "detector_confidence", "embedding_norm", "face_size"]
SLOW = ["faceqan", "diffiqa"]
OPTIONS = {"froq": ["--option", f"calibration={REPO / 'training' / 'froq_mobilefacenet.json'}"]}
MFN = SHARED / "models" / "mobilefacenet_foamliu.pt"


def parquet_of(method: str, embed: str) -> Path:
    if embed == "none":
        return KEPT / f"{method}.parquet"
    return CACHE / f"{method}_{embed}.parquet"


def rescore(method: str, embed: str, extra: list[str]) -> Path:
    out = parquet_of(method, embed)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.is_file():
        return out
    command = [sys.executable, "-m", "vidfiqa", "rescore", "ytf", str(ROOT), "--method", method, "--embed", embed, "-o", str(out),
               *OPTIONS.get(method, []), *extra]
    if embed not in ("none", "student"):
        command += ["--weights", str(MFN)]
    env = {**os.environ, "VIDFIQA_WEIGHTS": str(SHARED / "models")}
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True, env=env, cwd=REPO)
    return out


def score(args) -> None:
    rescore("ediffiqa", "mobilefacenet", [])
    rescore("ediffiqa", "student", [])
    for method in args.methods:
        if method == "diffiqa":
            rescore(method, "none", ["--max-frames", str(args.diffiqa_frames), "--option", f"repeats={args.diffiqa_repeats}"])
        else:
            rescore(method, "none", [])


# ---------------------------------------------------------------------- report
def frames_table(path: Path) -> dict[tuple[str, int], tuple[float, np.ndarray | None]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    video = table.column("video").to_pylist()
    # The source frame number, not ``frame_index``: that is the position among the frames the run
    # chose, so with --max-frames (DifFIQA's subset) it would name other frames than the full runs'.
    frame = table.column("frame").to_pylist()
    quality = table.column("quality").to_pylist()
    emb = table.column("embedding").to_pylist() if "embedding" in table.column_names else [None] * len(video)
    return {(v, int(f)): (np.nan if q is None else float(q), None if e is None or len(e) == 0 else np.asarray(e, np.float32))
            for v, f, q, e in zip(video, frame, quality, emb)}


def half_of(person: str) -> str:
    return "choose" if zlib.crc32(person.encode()) % 2 == 0 else "report"


def build_videos(quality_rows: dict, mfn_rows: dict, student_rows: dict, template_model: str = "mobilefacenet") -> dict:
    """key -> (quality, template embeddings, student embeddings), frames in order; a frame counts
    when the method scored it and both embeddings exist.  ``template_model``: the embeddings the
    templates are made of, MobileFaceNet's or the student's own (what the product's are)."""
    by_video: dict[str, list[int]] = {}
    for (video, frame) in mfn_rows:
        by_video.setdefault(video, []).append(frame)
    videos = {}
    for video, frames in by_video.items():
        frames.sort()
        q, e, d = [], [], []
        for frame in frames:
            mq, me = mfn_rows[(video, frame)]
            sq, se = student_rows.get((video, frame), (np.nan, None))
            method_q = quality_rows.get((video, frame), (np.nan, None))[0]
            if me is None or se is None:
                continue
            q.append(method_q)
            e.append(me)
            d.append(se)
        if q and np.isfinite(q).any():
            videos[video] = (np.asarray(q, np.float64), np.stack(e if template_model == "mobilefacenet" else d), np.stack(d))
    return videos


def likeness(videos: dict, k: int = 3) -> dict:
    """Why top-k can lose to random-k: how alike the k frames each rule picks are (mean pairwise
    cosine of their MobileFaceNet embeddings; 1 = the same picture) and how far apart in time
    (mean frames between picks), averaged over videos."""
    from vidfiqa.eval import setverify as sv
    from dataclasses import replace

    from vidfiqa.select.rule import SelectionRule
    from vidfiqa.select.template_rules import selected_frames

    out = {}
    for rule in ("quality", "random", "first", "selected"):
        cos, gap = [], []
        for key, (q, e, d) in videos.items():
            if rule == "selected":
                chosen = selected_frames(q, np.arange(len(q)) / sv.VIDEO_FPS, d, replace(SelectionRule.default(), top_k=k))
            else:
                chosen = sv.select_frames(q, k, rule, sv._video_rng(0, key))
            if len(chosen) < 2:
                continue
            u = e[chosen] / np.linalg.norm(e[chosen], axis=1, keepdims=True)
            c = u @ u.T
            cos.append(float(c[np.triu_indices(len(chosen), 1)].mean()))
            gap.append(float(np.diff(np.sort(chosen)).mean()))
        out[rule] = {"mean_pairwise_cosine": round(float(np.mean(cos)), 4), "mean_frames_apart": round(float(np.mean(gap)), 1)}
    return out


def ceiling(videos: dict, far: float) -> dict:
    """How much any choice of frames could still gain over the all-frames mean at FAR ``far``.

    The same-person pairs that the mean template rejects, and for each the best cosine of any one
    frame of the first video with any one frame of the second: an oracle that picked, for this
    pair alone, the two frames that look most alike.  That bound is generous (a real rule picks
    one template per video for all its pairs, and picking for similarity raises impostor scores
    too), so a pair it cannot lift over the mean's threshold is out of reach of every frame rule.
    """
    from vidfiqa.eval import setverify as sv

    pairs = sv.extra_pairs(videos)
    keys = [(a, b) for a, b, _ in pairs]
    same = np.array([s for _, _, s in pairs], bool)
    scores = sv.pair_scores(videos, keys, None, "quality")
    impostors = np.sort(scores[~same])[::-1]
    threshold = float(impostors[int(np.floor(far * impostors.size))])
    rejected = []
    for i in np.flatnonzero(same & (scores <= threshold)):
        a, b = keys[i]
        ua = videos[a][1] / np.linalg.norm(videos[a][1], axis=1, keepdims=True)
        ub = videos[b][1] / np.linalg.norm(videos[b][1], axis=1, keepdims=True)
        best = float((ua @ ub.T).max())
        rejected.append({"pair": [a, b], "mean_template_cosine": round(float(scores[i]), 4),
                         "best_frame_pair_cosine": round(best, 4), "reachable": best > threshold})
    reachable = sum(r["reachable"] for r in rejected)
    genuine = int(same.sum())
    return {"threshold": round(threshold, 4), "same_person_pairs": genuine, "rejected_by_mean": len(rejected),
            "reachable_by_oracle": reachable, "tar_mean": round((genuine - len(rejected)) / genuine, 4),
            "tar_bound": round((genuine - len(rejected) + reachable) / genuine, 4),
            "within_0.05_of_threshold": sum(r["mean_template_cosine"] > threshold - 0.05 for r in rejected),
            "pairs": rejected}


def weighted_auc(scores: np.ndarray, same: np.ndarray, weight: np.ndarray) -> float:
    """ROC AUC with pair weights: the weighted share of (same-person, different-person) pair
    pairs that the scores order correctly (continuous scores: ties are negligible)."""
    order = np.argsort(scores, kind="stable")
    w, g = weight[order], same[order]
    impostor_below = np.cumsum(np.where(~g, w, 0.0))
    total_impostor = impostor_below[-1]
    return float((w[g] * impostor_below[g]).sum() / (w[g].sum() * total_impostor))


def auc_by_rule(videos: dict, temperature: float, draws: int, seed: int = 0) -> dict:
    """A threshold-free check of the template rules: ROC AUC over every pair of videos, with the
    same paired bootstrap over videos as TAR (each rule's difference from the all-frames mean)."""
    from vidfiqa.eval import setverify as sv

    pairs = sv.extra_pairs(videos)
    keys = [(a, b) for a, b, _ in pairs]
    same = np.array([s for _, _, s in pairs], bool)
    number = {key: i for i, key in enumerate(sorted(videos))}
    first, second = np.array([number[a] for a, _ in keys]), np.array([number[b] for _, b in keys])
    rules = {"all frames": sv.pair_scores(videos, keys, None, "quality"),
             "weighted": sv.pair_scores(videos, keys, None, "weighted", temperature=temperature),
             "quality k=3": sv.pair_scores(videos, keys, 3, "quality"),
             "random k=3": sv.pair_scores(videos, keys, 3, "random"),
             "selected k=3": sv.pair_scores(videos, keys, 3, "selected"),
             "selected k=5": sv.pair_scores(videos, keys, 5, "selected")}
    rng = np.random.default_rng(seed)
    boot = {name: np.empty(draws) for name in rules}
    for d in range(draws):
        counts = np.bincount(rng.integers(0, len(number), len(number)), minlength=len(number)).astype(np.float64)
        weight = counts[first] * counts[second]
        for name, scores in rules.items():
            boot[name][d] = weighted_auc(scores, same, weight)
    ones = np.ones(same.size)
    point = {name: weighted_auc(scores, same, ones) for name, scores in rules.items()}
    out = {}
    for name in rules:
        diff = boot[name] - boot["all frames"]
        out[name] = {"auc": round(point[name], 4), "interval": [round(float(v), 4) for v in np.quantile(boot[name], [0.025, 0.975])],
                     "diff": round(point[name] - point["all frames"], 4),
                     "diff_interval": [round(float(v), 4) for v in np.quantile(diff, [0.025, 0.975])]}
    return {"draws": draws, "over": "videos (resampled with replacement)", "rules": out}


def joint_edc(per_method: dict[str, dict], frames_per_video: int, seed: int = 0, draws: int = 100) -> dict:
    """Frame-level EDC of every method on the same frames and pairs (frames of different videos,
    up to ``frames_per_video`` per video among those every method scored), for one plot, with 95 %
    intervals of each method's normalised pAUC@0.3 at FMR 1e-2, and of its paired difference to
    the embedding norm, over ``draws`` seeded draws of 80 % of the people (benchmarks/front_end.py's
    rule, as for every EDC figure of the project)."""
    from front_end import pauc_intervals

    from vidfiqa.eval import edc
    from vidfiqa.eval import setverify as sv
    from vidfiqa.eval.verification import comparison_scores

    rng = np.random.default_rng(seed)
    names = list(per_method)
    keys = sorted(set.intersection(*(set(v) for v in per_method.values())))
    people = {p: i for i, p in enumerate(sorted({sv.person_of(k) for k in keys}))}
    emb, video_id, person_id = [], [], []
    quality: dict[str, list] = {name: [] for name in names}
    for v, key in enumerate(keys):
        q0, e = per_method[names[0]][key][0], per_method[names[0]][key][1]
        ok = np.ones(len(q0), bool)
        for name in names:
            ok &= np.isfinite(per_method[name][key][0])
        frames = np.flatnonzero(ok)
        if frames.size > frames_per_video:
            frames = np.sort(rng.choice(frames, size=frames_per_video, replace=False))
        emb.append(e[frames])
        for name in names:
            quality[name].append(per_method[name][key][0][frames])
        video_id.append(np.full(frames.size, v))
        person_id.append(np.full(frames.size, people[sv.person_of(key)]))
    ids = np.concatenate(person_id)
    pairs = sv._cross_video_pairs(np.concatenate(video_id), ids, 200_000, rng)
    comparison = comparison_scores(np.concatenate(emb).astype(np.float64), pairs)
    scores = {name: np.concatenate(q) for name, q in quality.items()}
    result = edc.evaluate(comparison, pairs, scores, fmrs=[1e-2], limits=[0.3], seed=seed)
    result["frames"], result["videos"] = int(ids.size), len(keys)
    result["genuine_pairs"], result["impostor_pairs"] = int(pairs.genuine.sum()), int((~pairs.genuine).sum())
    if draws:
        result["intervals"] = pauc_intervals(comparison, pairs, ids, scores, draws)
    return result


def report(args) -> None:
    from benchinfo import Run

    from vidfiqa.eval import setverify as sv

    run = Run("ytf_templates.py", sys.argv[1:], timed=False)
    mfn = frames_table(parquet_of("ediffiqa", "mobilefacenet"))
    student = frames_table(parquet_of("ediffiqa", "student"))
    methods = {"ediffiqa": mfn}
    for method in FAST[1:] + SLOW:
        path = parquet_of(method, "none")
        if path.is_file():
            methods[method] = frames_table(path)
    out: dict = {"data": "ytf_aligned_dev: 50 people, 119 videos, tight face crops", "far": sv.FAR, "draws": args.draws, "methods": {}}
    for method, rows in methods.items():
        videos = build_videos(rows, mfn, student)
        people = {sv.person_of(k) for k in videos}
        entry: dict = {"videos": len(videos), "people": len(people), "frames": int(sum(np.isfinite(v[0]).sum() for v in videos.values()))}
        entry["frame_edc"] = sv.frame_level_edc({k: (v[0], v[1]) for k, v in videos.items()}, {k: sv.person_of(k) for k in videos},
                                                frames_per_video=args.edc_frames, seed=0)
        # The temperature: in units of the method's own spread (its frames' standard deviation),
        # chosen on the choice half by TAR of the weighted rule, reported on the other half.
        spread = float(np.nanstd(np.concatenate([v[0] for v in videos.values()])))
        halves = {h: {k: v for k, v in videos.items() if half_of(sv.person_of(k)) == h} for h in ("choose", "report")}
        sweep = {}
        for factor in args.temperatures:
            t = factor * spread
            pairs = sv.extra_pairs(halves["choose"])
            keys = [(a, b) for a, b, _ in pairs]
            same = np.array([s for _, _, s in pairs])
            sweep[factor] = sv.tar_at_far(sv.pair_scores(halves["choose"], keys, None, "weighted", temperature=t), same)
        best = max(sweep, key=lambda f: (sweep[f], f))
        entry["temperature"] = {"spread": spread, "factors_tried": {str(f): v for f, v in sweep.items()}, "chosen_factor": best,
                                "chosen": best * spread, "chosen_on": "choice half (TAR@FAR 1e-2 over its video pairs)"}
        for name, subset in (("all", videos), ("report_half", halves["report"])):
            entry[name] = sv.evaluate_extra(subset, sv.extra_pairs(subset), ks=args.ks, rules=sv.SELECTIONS, seed=0,
                                            temperature=best * spread, bootstrap=args.draws)
        entry["likeness_k3"] = likeness(videos)
        if method == "ediffiqa":
            out["ceiling"] = ceiling(videos, sv.FAR)  # the mean's ceiling does not depend on the method
            entry["auc"] = auc_by_rule(videos, best * spread, args.draws)
            # The product's templates are of the student's own embeddings: the same rules in them.
            own = build_videos(rows, mfn, student, template_model="student")
            entry["student_embeddings"] = {
                "all": sv.evaluate_extra(own, sv.extra_pairs(own), ks=args.ks, rules=sv.SELECTIONS, seed=0, temperature=best * spread,
                                         bootstrap=args.draws)}
        out["methods"][method] = entry
        print(method, {r["rule"] + str(r["k"]): round(r["tar_at_far"], 3) for r in entry["all"]["results"]}, flush=True)
    from vidfiqa.eval import edc
    from vidfiqa.eval.edc_plot import Panel, write_edc_plot

    # Every method that scored every frame on the same frames and pairs; and, on the few frames
    # per video the subset methods (DifFIQA) scored, every method again.
    per_method = {m: build_videos(rows, mfn, student) for m, rows in methods.items()}
    subset = [m for m, rows in methods.items() if len(rows) < 0.9 * len(mfn)]
    full = {m: v for m, v in per_method.items() if m not in subset}
    joint = joint_edc(full, args.edc_frames, draws=args.edc_draws)
    panels = [Panel(title=f"ytf_aligned_dev: {joint['frames']} frames (up to {args.edc_frames} per video), MobileFaceNet, FMR 1e-2",
                    curves=joint["fmr"][0]["_curves"], legend_title="quality method")]
    out["joint_frame_edc"] = {"note": f"every method that scored every frame, on the same frames (up to {args.edc_frames} per video) and pairs",
                              **edc.strip_curves(joint)}
    if subset:
        small = joint_edc(per_method, args.edc_frames, draws=args.edc_draws)
        panels.append(Panel(title=f"the {small['frames']} frames {', '.join(subset)} scored: every method", curves=small["fmr"][0]["_curves"],
                            legend_title="quality method"))
        out["subset_frame_edc"] = {"note": f"every method on the frames {', '.join(subset)} scored", **edc.strip_curves(small)}
    write_edc_plot(RESULTS / "ytf_templates_edc.png", panels)
    data = run.write(RESULTS / "ytf_templates.json", out)
    (RESULTS / "ytf_templates.md").write_text(markdown(data))
    print(json.dumps({m: e["temperature"]["chosen"] for m, e in out["methods"].items()}))


def markdown(data: dict) -> str:
    from vidfiqa.eval.setverify import row_label

    lines = ["# YouTube Faces dev (50 people): templates by rule and quality method", "",
             f"TAR at FAR {data['far']:g} over every pair of the videos present; 95 % intervals over videos ({data['draws']} bootstrap draws); "
             "difference from the all-frames mean with its own (paired) interval. Frame-level EDC: normalised pAUC@0.3 at FMR 1e-2 (lower is better).", ""]
    for part in ("joint_frame_edc", "subset_frame_edc"):
        j = data.get(part)
        if not j or "intervals" not in j:
            continue
        lines += [f"## Frame-level EDC, {j['note']}", "",
                  f"{j['frames']} frames of {j['videos']} videos, {j['genuine_pairs']:,} genuine and {j['impostor_pairs']:,} impostor pairs; "
                  f"normalised pAUC@0.3 at FMR 1e-2 (lower is better), 95 % intervals over {j['intervals']['draws']}.", "",
                  "| method | pAUC | 95 % | minus embedding norm | 95 % | against the norm |", "|---|---|---|---|---|---|"]
        verdict = {"lower": "better (interval below 0)", "higher": "worse (interval above 0)", "no difference shown": "no difference shown"}
        methods = j["fmr"][0]["methods"]
        for name in sorted(methods, key=lambda m: methods[m]["normalised"]["0.3"]):
            iv = j["intervals"]["methods"].get(name, {})
            diff = iv.get("minus_embedding_norm")
            lo, hi = iv.get("interval", [float("nan")] * 2)
            lines.append(f"| {name} | {methods[name]['normalised']['0.3']:.3f} | [{lo:.3f}, {hi:.3f}] | "
                         + (f"{diff['median']:+.3f} | [{diff['interval'][0]:+.3f}, {diff['interval'][1]:+.3f}] | {verdict[diff['supported']]} |"
                            if diff else "| | |"))
        lines.append("")
    c = data.get("ceiling")
    if c:
        lines += [f"Ceiling: the all-frames mean rejects {c['rejected_by_mean']} of the {c['same_person_pairs']} same-person pairs "
                  f"(threshold {c['threshold']:.3f}); {c['within_0.05_of_threshold']} of them lie within 0.05 of the threshold, and "
                  f"for only {c['reachable_by_oracle']} does even the most alike frame pair of the two videos score above it. "
                  f"No choice of frames can take TAR past {c['tar_bound']:.3f} (the mean: {c['tar_mean']:.3f}).", ""]
    for method, e in data["methods"].items():
        edc = e["frame_edc"]
        pauc = edc["fmr"][0]["methods"]["quality"]["normalised"]["0.3"] if "fmr" in edc else None
        lines += [f"## {method}", "", f"{e['videos']} videos, {e['frames']} frames; frame-level EDC {pauc:.3f}" if pauc is not None else f"## {method}",
                  f"weighted temperature {e['temperature']['chosen']:.4g} ({e['temperature']['chosen_factor']} x the quality's spread, chosen on the choice half)", ""]
        parts = [("all", e["all"]), ("report_half", e["report_half"])]
        if "student_embeddings" in e:
            parts.append(("all, templates of the student's own embeddings (the product's)", e["student_embeddings"]["all"]))
        like = e.get("likeness_k3")
        if like:
            lines += ["Three frames per rule, averaged over videos: " + "; ".join(
                f"{rule}: pairwise cosine {v['mean_pairwise_cosine']:.3f}, {v['mean_frames_apart']:.1f} frames apart" for rule, v in like.items()), ""]
        if "auc" in e:
            lines += [f"ROC AUC over all pairs (threshold-free), 95 % intervals over videos ({e['auc']['draws']} draws, paired):", "",
                      "| rule | AUC | 95 % | vs all frames | 95 % |", "|---|---|---|---|---|"]
            for rule, a in e["auc"]["rules"].items():
                lines.append(f"| {rule} | {a['auc']:.4f} | [{a['interval'][0]:.4f}, {a['interval'][1]:.4f}] | {a['diff']:+.4f} | "
                             f"[{a['diff_interval'][0]:+.4f}, {a['diff_interval'][1]:+.4f}] |")
            lines.append("")
        for name, result in parts:
            lines += [f"### {name} ({result['pairs']} pairs)", "", "| rule | TAR | 95 % | vs all frames | 95 % | P(better) |", "|---|---|---|---|---|---|"]
            for row in result["results"]:
                b = row["bootstrap"]
                lines.append(f"| {row_label(row)} | {row['tar_at_far']:.3f} | [{b['low']:.3f}, {b['high']:.3f}] | {b['diff']:+.3f} | "
                             f"[{b['diff_low']:+.3f}, {b['diff_high']:+.3f}] | {b['p_better']:.2f} |")
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score")
    s.add_argument("--methods", nargs="+", default=FAST[1:] + SLOW, choices=FAST + SLOW)
    s.add_argument("--diffiqa-frames", type=int, default=3)
    s.add_argument("--diffiqa-repeats", type=int, default=2)
    r = sub.add_parser("report")
    r.add_argument("--draws", type=int, default=1000)
    r.add_argument("--edc-frames", type=int, default=20)
    r.add_argument("--edc-draws", type=int, default=100, help="draws of 80 %% of the people for the EDC intervals (0: none)")
    r.add_argument("--ks", type=lambda v: None if v == "all" else int(v), nargs="+", default=[1, 3, 5, 10, None])
    r.add_argument("--temperatures", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0, 2.0, 4.0, float("inf")])
    args = parser.parse_args()
    score(args) if args.command == "score" else report(args)


if __name__ == "__main__":
    main()
