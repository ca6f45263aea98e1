"""False faces and poor picks: which tracks of the shared clips are faces, and what a face gate and a
``min_quality`` for picks would remove (issue 11, part 4).

    python benchmarks/face_gate.py run       # `vidfiqa run` (default settings) on every shared clip,
                                             # galleries cached under --cache (default /tmp/face_gate)
    python benchmarks/face_gate.py sheets    # contact sheets (a few crops per track, with its
                                             # features) under <cache>/sheets, to label the tracks
    python benchmarks/face_gate.py report    # features + labels -> the gate's and min_quality's
                                             # removals per clip, leave-one-clip-out, margins:
                                             # benchmarks/results/face_gate_vm.{json,md}

``report`` takes the gate to report with ``--gate min_smoothed_max=0.1,...`` (FaceGate fields;
default: FaceGate's defaults) and ``--min-quality`` (default: the value this study chose).
The labels (benchmarks/face_gate_labels.json: clip, track_id, label real/false, why) were made by
looking at the contact sheets.  Features are computed from each track's quality.csv, rebuilt into a
TrackResult, by the same ``vidfiqa.select.gate.track_features`` the gate uses.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
LABELS = HERE / "face_gate_labels.json"
OUT = HERE / "results" / "face_gate_vm"
sys.path.insert(0, str(HERE))

from benchinfo import Run  # noqa: E402

from vidfiqa.faces import Faces  # noqa: E402
from vidfiqa.select.gate import FaceGate, track_features  # noqa: E402
from vidfiqa.select.result import QualitySeries, TrackResult  # noqa: E402

YTF_FOLDERS = ["Albert_Brooks/0", "Alberto_Ruiz_Gallardon/0", "Alek_Wek/1", "Alek_Wek/4", "Alexandre_Despatie/3", "Aaron_Guiel/5"]
YTF_FPS = 24.0
CHOSEN_MIN_QUALITY = 0.05  # this study's value for RunSettings.min_quality (see the report)


def clips() -> list[tuple[str, Path, list[str]]]:
    """(name, source, extra `vidfiqa run` options) of every shared clip."""
    out: list[tuple[str, Path, list[str]]] = [(p.stem, p, []) for d in ("videos", "edited_videos") for p in sorted((DATA / d).glob("*")) if p.is_file()]
    for folder in YTF_FOLDERS:
        out.append(("ytfdir_" + folder.replace("/", "_"), DATA / "ytf_subset" / "frame_images_DB" / folder, ["--fps", str(YTF_FPS)]))
    # With the default settings Alek_Wek/4 (a runway, faces of 15-30 px) fails at 09ab757: a track
    # with no detection big enough to score has no crop, and the gallery asserts one.  Every face
    # scored instead (not the defaults: reported apart from the rest).
    out.append(("ytfdir_Alek_Wek_4_minface0", DATA / "ytf_subset" / "frame_images_DB" / "Alek_Wek/4",
                ["--fps", str(YTF_FPS), "--min-face-size", "0"]))
    return out


# ----------------------------------------------------------------------------- run
def complete(gallery: Path) -> bool:
    path = gallery / "manifest.json"
    return path.is_file() and json.loads(path.read_text()).get("status") == "complete"


def run_clips(cache: Path, commit: str | None) -> None:
    """`vidfiqa run` with default settings on every clip not yet in ``cache``.  With ``commit``,
    the vidfiqa of that commit (``git archive`` into the cache), so that edits in progress in the
    working tree do not leak into the measurement; without, the installed one."""
    env = dict(os.environ)
    if commit:
        rev = subprocess.run(["git", "rev-parse", "--short", commit], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()
        src = cache / f"_src_{rev}"
        if not (src / "vidfiqa").is_dir():
            src.mkdir(parents=True, exist_ok=True)
            archive = subprocess.run(["git", "archive", rev], cwd=REPO, check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
        env["PYTHONPATH"] = str(src)
    for name, source, extra in clips():
        gallery = cache / name
        if complete(gallery) or (gallery / "failed.txt").is_file():
            continue
        print(f"vidfiqa run {source} {' '.join(extra)}", flush=True)
        done = subprocess.run([sys.executable, "-m", "vidfiqa.cli", "run", "-q", str(source), "-o", str(gallery), *extra],
                              env=env, cwd="/", capture_output=True, text=True)
        print(done.stdout.strip(), done.stderr.strip()[-400:], flush=True)
        gallery.mkdir(parents=True, exist_ok=True)
        (gallery / "commit.txt").write_text((rev if commit else "working tree") + "\n")
        if done.returncode != 0:  # recorded, and reported by `report`
            gallery.mkdir(parents=True, exist_ok=True)
            (gallery / "failed.txt").write_text(f"exit status {done.returncode}: {done.stderr.strip().splitlines()[-1]}\n")


# ----------------------------------------------------------------------------- read galleries
def read_series(path: Path) -> QualitySeries:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))

    def col(name: str) -> np.ndarray:
        return np.array([float(r[name]) if r[name] not in ("", "nan") else np.nan for r in rows], np.float64)

    return QualitySeries(
        frame_index=col("frame_index").astype(np.int64), pts=col("pts"), quality=col("quality"),
        quality_smoothed=col("quality_smoothed"), detector_score=col("detector_score"),
        boxes=np.stack([col("x1"), col("y1"), col("x2"), col("y2")], 1) if rows else np.zeros((0, 4)),
    )


def read_tracks(cache: Path) -> list[dict]:
    """One dict per track of every cached gallery: clip, track_id, its TrackResult, features, picks."""
    tracks = []
    for name, _, _ in clips():
        if not complete(cache / name):
            print(f"no complete gallery for {name} under {cache} (run the 'run' stage)", file=sys.stderr)
            continue
        manifest = json.loads((cache / name / "manifest.json").read_text())
        for t in manifest["tracks"]:
            series = read_series(cache / name / t["series"])
            sel = t["selected"]
            chosen = Faces.create(np.array([s["bbox"] for s in sel]).reshape(-1, 4), np.array([s["landmarks"] for s in sel]).reshape(-1, 5, 2),
                                  np.array([s["detector_score"] for s in sel]), frame_index=np.array([s["frame_index"] for s in sel], np.int64),
                                  quality=np.array([s["quality"] for s in sel], np.float32))
            result = TrackResult(t["track_id"], t["ended"], series, chosen, np.array([s["quality_smoothed"] for s in sel], np.float64))
            tracks.append({"clip": name, "track_id": t["track_id"], "result": result, "features": track_features(result),
                           "picks": [{"frame_index": s["frame_index"], "quality": s["quality"], "quality_smoothed": s["quality_smoothed"],
                                      "crop": str(cache / name / s["crop"]), "context": str(cache / name / s["context"])} for s in sel]})
    return tracks


# ----------------------------------------------------------------------------- contact sheets
def sheets(cache: Path, per_row: int = 4) -> None:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", 12)
    out = cache / "sheets"
    out.mkdir(exist_ok=True)
    tracks = read_tracks(cache)
    tile, text_w = 112, 300
    for name in dict.fromkeys(t["clip"] for t in tracks):
        rows = [t for t in tracks if t["clip"] == name]
        for page in range(0, len(rows), 12):
            chunk = rows[page:page + 12]
            sheet = Image.new("RGB", (text_w + tile * per_row, tile * len(chunk)), "white")
            draw = ImageDraw.Draw(sheet)
            for i, t in enumerate(chunk):
                f = t["features"]
                lines = [f"{name[:34]}", f"track {t['track_id']}  n={f['detections']:.0f} {f['duration_s']:.1f}s size={f['face_size']:.0f}",
                         f"q max {f['quality_max']:.3f} med {f['quality_median']:.3f}", f"sm max {f['smoothed_max']:.3f} med {f['smoothed_median']:.3f}",
                         f"det mean {f['detector_mean']:.2f} max {f['detector_max']:.2f}",
                         "picks " + " ".join(f"{p['quality_smoothed']:.3f}" for p in t["picks"])]
                for j, line in enumerate(lines):
                    draw.text((4, i * tile + 4 + 15 * j), line, fill="black", font=font)
                images = [p["crop"] for p in t["picks"]][: per_row - 1] + [p["context"] for p in t["picks"]][:1]
                for k, path in enumerate(images):
                    im = Image.open(path).convert("RGB")
                    im.thumbnail((tile, tile))
                    sheet.paste(im, (text_w + k * tile, i * tile))
                draw.line([(0, (i + 1) * tile - 1), (sheet.width, (i + 1) * tile - 1)], fill="gray")
            path = out / f"{name}_{page // 12}.png"
            sheet.save(path)
            print(path)


# ----------------------------------------------------------------------------- report
def parse_gate(text: str | None) -> FaceGate:
    gate = FaceGate()
    if not text:
        return gate
    names = {f.name: f for f in fields(FaceGate)}
    values = {}
    for item in text.split(","):
        key, value = item.split("=")
        if key not in names:
            raise SystemExit(f"FaceGate has no field {key!r} (fields: {', '.join(names)})")
        values[key] = float(value)
    return replace(gate, **values)


def labelled(tracks: list[dict]) -> list[dict]:
    labels = {(x["clip"], x["track_id"]): x for x in json.loads(LABELS.read_text())["tracks"]}
    # The run of Alek_Wek/4 with every face scored: only the labelled tracks count (the others are
    # audience faces below the default min_face_size, never scored with the defaults).
    tracks = [t for t in tracks if (t["clip"], t["track_id"]) in labels or not t["clip"].endswith("_minface0")]
    missing = [(t["clip"], t["track_id"]) for t in tracks if (t["clip"], t["track_id"]) not in labels]
    if missing:
        raise SystemExit(f"{len(missing)} tracks have no label, e.g. {missing[:5]}")
    for t in tracks:
        t["label"] = labels[(t["clip"], t["track_id"])]["label"]
        t["why"] = labels[(t["clip"], t["track_id"])]["why"]
        t["doubtful"] = labels[(t["clip"], t["track_id"])].get("doubtful", False)
    return tracks


def removals(tracks: list[dict], gate: FaceGate, min_quality: float | None) -> dict:
    """Per clip: real/false tracks kept and removed by the gate; picks removed by min_quality, and
    tracks left without a pick by it."""
    per_clip: dict[str, dict] = {}
    for t in tracks:
        c = per_clip.setdefault(t["clip"], {"real_kept": 0, "real_removed": 0, "false_kept": 0, "false_removed": 0,
                                            "picks": 0, "picks_removed_min_quality": 0, "real_without_pick": 0,
                                            "false_without_pick": 0, "removed": [], "kept_false": []})
        reason = gate.check(t["result"])
        kept = reason is None
        c[f"{t['label']}_{'kept' if kept else 'removed'}"] += 1
        if not kept:
            c["removed"].append({"track_id": t["track_id"], "label": t["label"], "reason": reason})
        elif t["label"] == "false":
            c["kept_false"].append({"track_id": t["track_id"], "why": t["why"]})
        smoothed = [p["quality_smoothed"] for p in t["picks"]]
        c["picks"] += len(smoothed)
        if min_quality is not None:
            c["picks_removed_min_quality"] += sum(q < min_quality for q in smoothed)
            # a track keeps a pick when its best smoothed value reaches min_quality
            if not t["features"]["smoothed_max"] >= min_quality:
                c[f"{t['label']}_without_pick"] += 1
    total = {k: sum(c[k] for c in per_clip.values()) for k in next(iter(per_clip.values())) if k not in ("removed", "kept_false")}
    return {"per_clip": per_clip, "total": total}


def margins(tracks: list[dict], feature: str) -> dict:
    real = [t for t in tracks if t["label"] == "real"]
    false = [t for t in tracks if t["label"] == "false"]
    lo = min(real, key=lambda t: t["features"][feature])
    hi = sorted(false, key=lambda t: -t["features"][feature])
    return {"lowest_real": {"clip": lo["clip"], "track_id": lo["track_id"], "value": round(lo["features"][feature], 4)},
            "highest_false": [{"clip": t["clip"], "track_id": t["track_id"], "value": round(t["features"][feature], 4), "why": t["why"]} for t in hi[:5]]}


Q_GRID = np.round(np.arange(0.0, 0.3001, 0.001), 3)
D_GRID = np.round(np.arange(0.5, 1.0001, 0.005), 3)


def fit_gate(train: list[dict]) -> tuple[FaceGate, float]:
    """The widest-margin FaceGate on ``train``: among the (min_quality, min_detector) pairs of the
    grid that keep every real track and remove as many false ones as any pair does, the one
    whose box edge is farthest from the nearest track (the margin: the smaller of the distances
    in quality and in detector confidence, for a track on the wrong side of only one of them)."""
    q = np.array([t["features"]["smoothed_max"] for t in train])
    d = np.array([t["features"]["detector_mean"] for t in train])
    real = np.array([t["label"] == "real" for t in train])
    Q, D = np.meshgrid(Q_GRID, D_GRID, indexing="ij")
    inside = (q[None, None] < Q[..., None]) & (d[None, None] < D[..., None])  # removed
    ok = ~(inside & real).any(-1)
    removed_false = (inside & ~real).sum(-1)
    best = removed_false[ok].max()
    # distance of every track to the box edge: removed ones by how far inside, kept ones by how far out
    dq, dd = Q[..., None] - q[None, None], D[..., None] - d[None, None]
    margin_in = np.minimum(dq, dd)  # > 0 for removed tracks
    margin_out = np.maximum(-dq, -dd)  # >= 0 for kept tracks
    margin = np.where(inside, margin_in, margin_out).min(-1)
    margin = np.where(ok & (removed_false == best), margin, -np.inf)
    i, j = np.unravel_index(int(np.argmax(margin)), margin.shape)
    return FaceGate(min_quality=float(Q[i, j]), min_detector=float(D[i, j])), float(margin[i, j])


def counts(tracks: list[dict], gate: FaceGate) -> dict:
    row = {"real_kept": 0, "real_removed": 0, "false_kept": 0, "false_removed": 0}
    for t in tracks:
        row[f"{t['label']}_{'kept' if gate.check(t['result']) is None else 'removed'}"] += 1
    return row


def leave_one_clip_out(tracks: list[dict]) -> list[dict]:
    """Fit on every other clip, report on the held-out one (the YTF video and its frame folder
    are one clip: the same frames)."""
    def group(clip: str) -> str:
        return clip.replace("ytfdir_", "ytf_")

    rows = []
    for held in dict.fromkeys(group(t["clip"]) for t in tracks):
        train = [t for t in tracks if group(t["clip"]) != held]
        test = [t for t in tracks if group(t["clip"]) == held]
        gate, margin = fit_gate(train)
        rows.append({"held_out": held, "min_quality": gate.min_quality, "min_detector": gate.min_detector,
                     "train_margin": round(margin, 4), **counts(test, gate)})
    return rows


def feature_table(tracks: list[dict]) -> list[dict]:
    return [{"clip": t["clip"], "track_id": t["track_id"], "label": t["label"],
             **{k: round(v, 4) for k, v in t["features"].items()},
             "picks_smoothed": [round(p["quality_smoothed"], 4) for p in t["picks"]]} for t in tracks]


def gate_margins(tracks: list[dict], gate: FaceGate) -> dict:
    """The tracks nearest the gate's box, on each side."""
    def near(t: dict) -> dict:
        f = t["features"]
        return {"clip": t["clip"], "track_id": t["track_id"], "label": t["label"], "smoothed_max": round(f["smoothed_max"], 4),
                "detector_mean": round(f["detector_mean"], 4), "why": t["why"]}

    removed = [t for t in tracks if gate.check(t["result"]) is not None]
    kept = [t for t in tracks if gate.check(t["result"]) is None]
    inside = sorted(removed, key=lambda t: -min(t["features"]["smoothed_max"] - gate.min_quality, t["features"]["detector_mean"] - gate.min_detector))
    outside = sorted(kept, key=lambda t: max(t["features"]["smoothed_max"] - gate.min_quality, t["features"]["detector_mean"] - gate.min_detector))
    return {"removed_nearest_the_edge": [near(t) for t in inside[:3]], "kept_nearest_the_edge": [near(t) for t in outside[:5]]}


def min_quality_sweep(tracks: list[dict], values: list[float]) -> list[dict]:
    rows = []
    for v in values:
        rows.append({"min_quality": v,
                     "picks_below": sum(p["quality_smoothed"] < v for t in tracks for p in t["picks"]),
                     "picks": sum(len(t["picks"]) for t in tracks),
                     "real_left_without_pick": [f"{t['clip']}#{t['track_id']}" + (" (doubtful)" if t["doubtful"] else "")
                                                for t in tracks if t["label"] == "real" and not t["features"]["smoothed_max"] >= v],
                     "false_left_without_pick": sum(t["label"] == "false" and not t["features"]["smoothed_max"] >= v for t in tracks)})
    return rows


def report(cache: Path, gate: FaceGate, min_quality: float | None, argv: list[str]) -> None:
    run = Run("face_gate.py", argv, timed=False)
    tracks = labelled(read_tracks(cache))
    fitted, margin = fit_gate(tracks)
    failed = {p.parent.name: p.read_text().strip() for p in sorted(cache.glob("*/failed.txt"))}
    data = run.write(OUT.with_suffix(".json"), {
        "gate": {"class": "vidfiqa.select.gate.FaceGate", **asdict(gate)},
        "fit_on_all_clips": {**asdict(fitted), "margin": round(margin, 4),
                             "rule": "widest-margin (min_quality, min_detector) box that keeps every real track and removes the most false ones"},
        "min_quality": min_quality,
        "labels": str(LABELS.relative_to(REPO)),
        "commits": sorted({p.read_text().strip() for p in cache.glob("*/commit.txt")}),
        "clips": [{"name": n, "source": str(s.relative_to(SHARED.parent)) if s.is_relative_to(SHARED.parent) else str(s), "options": o,
                   **({"failed": failed[n]} if n in failed else {})} for n, s, o in clips()],
        "counts": {"tracks": len(tracks), "real": sum(t["label"] == "real" for t in tracks), "false": sum(t["label"] == "false" for t in tracks),
                   "doubtful": sum(t["doubtful"] for t in tracks)},
        "removals": removals(tracks, gate, min_quality),
        "gate_margins": gate_margins(tracks, gate),
        "leave_one_clip_out": leave_one_clip_out(tracks),
        "min_quality_sweep": min_quality_sweep(tracks, [0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.15]),
        "single_feature_margins": {f: margins(tracks, f) for f in ("smoothed_max", "smoothed_median", "quality_max", "quality_median", "detector_mean", "detections", "face_size")},
        "tracks": feature_table(tracks),
    })
    write_markdown(data)


def write_markdown(data: dict) -> None:
    gate = ", ".join(f"{k}={v}" for k, v in data["gate"].items() if k != "class")
    c = data["counts"]
    fit = data["fit_on_all_clips"]
    lines = [f"# Face gate and min_quality on the shared clips ({data['started_utc']}, vidfiqa {', '.join(data['commits'])})", "",
             f"`FaceGate({gate})` (a track fails when its smoothed quality max is below min_quality AND its mean detector "
             f"confidence below min_detector, or nothing was scored), `min_quality={data['min_quality']}` for picks. "
             f"{c['tracks']} tracks labelled ({c['real']} real faces, {c['false']} false, {c['doubtful']} doubtful), labels in `{data['labels']}`. "
             f"Widest-margin box on all clips: min_quality={fit['min_quality']}, min_detector={fit['min_detector']}, margin {fit['margin']}.", "",
             "| clip | real kept | real removed | false kept | false removed | picks | picks < min_quality | real tracks left without a pick |",
             "|---|---|---|---|---|---|---|---|"]
    for clip, r in data["removals"]["per_clip"].items():
        lines.append(f"| {clip} | {r['real_kept']} | {r['real_removed']} | {r['false_kept']} | {r['false_removed']} | {r['picks']} | "
                     f"{r['picks_removed_min_quality']} | {r['real_without_pick']} |")
    t = data["removals"]["total"]
    lines.append(f"| **all** | {t['real_kept']} | {t['real_removed']} | {t['false_kept']} | {t['false_removed']} | {t['picks']} | "
                 f"{t['picks_removed_min_quality']} | {t['real_without_pick']} |")
    failed = [x for x in data["clips"] if "failed" in x]
    if failed:
        lines += ["", "Failed with the default settings (not measured): " + "; ".join(f"{x['name']}: {x['failed']}" for x in failed)]
    m = data["gate_margins"]
    lines += ["", "## Tracks nearest the gate's edge", "", "| side | clip | track | label | smoothed max | detector mean | what it is |", "|---|---|---|---|---|---|---|"]
    for side, rows in (("removed", m["removed_nearest_the_edge"]), ("kept", m["kept_nearest_the_edge"])):
        for r in rows:
            lines.append(f"| {side} | {r['clip']} | {r['track_id']} | {r['label']} | {r['smoothed_max']} | {r['detector_mean']} | {r['why']} |")
    lines += ["", "## Leave one clip out (fit the widest-margin box on the other clips, report on this one)", "",
              "| held-out clip | min_quality | min_detector | train margin | real kept | real removed | false kept | false removed |",
              "|---|---|---|---|---|---|---|---|"]
    for r in data["leave_one_clip_out"]:
        lines.append(f"| {r['held_out']} | {r['min_quality']} | {r['min_detector']} | {r['train_margin']} | {r['real_kept']} | {r['real_removed']} | "
                     f"{r['false_kept']} | {r['false_removed']} |")
    lines += ["", "## min_quality for picks (a pick's smoothed quality must reach it)", "",
              "| min_quality | picks below (of all) | real tracks left without a pick | false tracks left without a pick |", "|---|---|---|---|"]
    for r in data["min_quality_sweep"]:
        lines.append(f"| {r['min_quality']} | {r['picks_below']} / {r['picks']} | {', '.join(r['real_left_without_pick']) or '-'} | {r['false_left_without_pick']} |")
    lines += ["", "## One feature alone (lowest real track vs highest false ones)", ""]
    for feature, mm in data["single_feature_margins"].items():
        hi = ", ".join(f"{x['value']} ({x['clip']} #{x['track_id']})" for x in mm["highest_false"][:3])
        lines.append(f"- `{feature}`: lowest real {mm['lowest_real']['value']} ({mm['lowest_real']['clip']} #{mm['lowest_real']['track_id']}); highest false {hi}")
    load = data["load_average"]
    lines += ["", f"Machine: {data['machine']['cpu_model']}, {data['machine']['cpu_count']} CPUs; load average {load['start'][0]} -> {load['end'][0]}."]
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"-> {OUT.with_suffix('.md')}")


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["run", "sheets", "report", "all"])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/face_gate"), help="where the galleries are kept")
    ap.add_argument("--commit", help="run the vidfiqa of this commit (git archive), not the working tree's")
    ap.add_argument("--gate", help="FaceGate fields, e.g. min_smoothed_max=0.1 (default: FaceGate's defaults)")
    ap.add_argument("--min-quality", type=float, default=CHOSEN_MIN_QUALITY, help="min_quality for picks to report")
    args = ap.parse_args(argv)
    if args.stage in ("run", "all"):
        run_clips(args.cache, args.commit)
    if args.stage in ("sheets",):
        sheets(args.cache)
    if args.stage in ("report", "all"):
        report(args.cache, parse_gate(args.gate), args.min_quality, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
