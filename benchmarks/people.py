"""Track purity and person counts of `vidfiqa run` (default settings) on multi-person footage, and
the extra time per frame that identity-watching and person-linking cost.

    python benchmarks/people.py [--keep DIR]   # -> benchmarks/results/people_vm.json and people_vm.md

Clips:

* **edited (built here)**: single-person shared clips joined with hard cuts and a cross-dissolve,
  two people coming back later in the clip (``PLAN``), so who is on screen at every frame is known.  Track
  purity is exact there: the share of a track's detections that show its majority person (the
  frames of the dissolve count for neither).  Person counts are compared with the clips' people,
  and every person must hold one clip's person only.
* **real multi-person footage**: the 1080p street crowd and the two edited film/TV excerpts.  No
  frame-level identity labels exist, so an independent matcher judges: dlib's ResNet (a model the
  pipeline does not use) embeds up to ``PER_TRACK`` evenly spaced scored faces of every track
  (quality >= ``JUDGE_QUALITY``: dlib is unreliable on the blurred, turned-away rest).  A track is
  *mixed* when some of its faces lie farther than dlib's same-person distance 0.6 from the track's
  medoid face.  Two tracks of one person whose dlib templates (mean embeddings) are farther apart
  than 0.6 are a *suspect merge*; two tracks of different persons, never on screen together,
  closer than ``SPLIT_DISTANCE``, a *suspect split*.  The people counted by eye from contact
  sheets (``people_ground_truth.json``: people, and whether any track or person mixes two
  people or any person is split) give the answer; dlib's flags say where to look, and on these
  small, blurred and turned faces most of its flags were wrong.

Extra time: the processor's ``identity`` stage (watching each track's embeddings) and the
gallery's ``persons`` time (linking tracks into persons at every manifest write), in ms per
processed frame, next to ``detect`` + ``redetect``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from benchinfo import Run

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
from shots import read  # noqa: E402

DATA = REPO.parent / "shared" / "data"
TRUTH = HERE / "people_ground_truth.json"
PER_TRACK = 15  # faces per track that dlib judges
JUDGE_QUALITY = 0.15  # student quality below which a face is left out of dlib's judgement
SAME_DISTANCE = 0.6  # dlib's own same-person bound
SPLIT_DISTANCE = 0.5  # closer than this across persons: probably one person, split

#: (clip, first frame, frames, transition into the next: None, "cut" or ("dissolve", frames)).
#: Person = the clip's person; d6 and d9 come back, later in their clips.
PLAN: list[tuple[str, int, int, tuple | str | None]] = [
    ("liveportrait_d6.mp4", 0, 60, "cut"),
    ("liveportrait_d9.mp4", 0, 60, ("dissolve", 16)),
    ("liveportrait_s18.mp4", 0, 60, "cut"),
    ("liveportrait_d12.mp4", 0, 70, "cut"),
    ("liveportrait_d6.mp4", 600, 60, "cut"),
    ("videoretalking_2.mp4", 0, 60, "cut"),
    ("liveportrait_d9.mp4", 400, 60, None),
]
REAL = ["videos/facenetpytorch_street_crowd.mp4", "edited_videos/azurevi_friends_cuts.mp4", "edited_videos/azurevi_avenger2_cuts.mp4"]


class RecordingAligner:
    """The pipeline's aligner, keeping every aligned crop by (frame, box) for the judge."""

    def __init__(self, aligner):
        self.aligner = aligner
        self.crops: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}

    def __call__(self, faces, frames):
        aligned = self.aligner(faces, frames)
        for i in range(len(aligned)):
            self.crops.setdefault(int(aligned.frame_index[i]), []).append((np.asarray(aligned.boxes[i], np.float64), aligned.crops[i]))
        return aligned

    def __getattr__(self, name):
        return getattr(self.aligner, name)

    def crop_at(self, frame: int, box: np.ndarray) -> np.ndarray | None:
        near = [(float(np.abs(b - box).max()), c) for b, c in self.crops.get(frame, [])]
        near = [x for x in near if x[0] < 0.5]  # the series rounds boxes to 0.1 px
        return min(near, key=lambda x: x[0])[1] if near else None


def run_clip(path: Path, out: Path, models):
    from vidfiqa.pipeline import make_settings
    from vidfiqa.pipeline.run import VideoPipeline

    recorder = RecordingAligner(models.aligner)
    pipeline = VideoPipeline(make_settings(), dataclasses.replace(models, aligner=recorder))
    manifest = pipeline.run(path, out)
    series = {}
    for t in manifest["tracks"] + manifest["rejected"]:
        rows = np.genfromtxt(out / t["series"], delimiter=",", names=True)
        series[t["track_id"]] = np.atleast_1d(rows)
    return manifest, series, recorder


def stage_ms(manifest) -> dict[str, float]:
    stats = manifest["stats"]
    frames = stats["frames_processed"]
    st = stats["stage_seconds"]
    ms = {k: round(1e3 * st.get(k, 0.0) / frames, 3) for k in ("detect", "redetect", "score", "identity", "persons")}
    ms["detection"] = round(ms["detect"] + ms["redetect"], 3)
    ms["identity_and_persons"] = round(ms["identity"] + ms["persons"], 3)
    return ms


def edited_report(models, work: Path) -> dict:
    import av

    import cv2

    frames: list[np.ndarray] = []
    who: list[str] = []
    pending = 0  # frames of a dissolve into the segment being added
    for name, first, n, transition in PLAN:
        segment = read(DATA / "videos" / name, first + n, (640, 360))[first:]
        for j in range(pending):  # blend the previous segment's last frames with this one's first
            a = (j + 1) / (pending + 1)
            k = len(frames) - pending + j
            frames[k] = cv2.addWeighted(frames[k], 1 - a, segment[j], a, 0)
            who[k] = "dissolve"
        frames += segment[pending:]
        who += [name] * (len(segment) - pending)
        pending = transition[1] if isinstance(transition, tuple) else 0
    clip = work / "edited.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"crf": "18", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    manifest, series, _ = run_clip(clip, work / "edited", models)
    tracks = []
    for t in manifest["tracks"]:
        owners = Counter(who[int(f)] for f in series[t["track_id"]]["frame_index"] if who[int(f)] != "dissolve")
        total = sum(owners.values())
        top, n = owners.most_common(1)[0] if owners else ("-", 0)
        tracks.append({"track_id": t["track_id"], "person_id": t["person_id"], "detections": t["num_detections"],
                       "majority": top, "purity": round(n / total, 4) if total else None, "ended": t["ended"]})
    persons = []
    for p in manifest["persons"]:
        shown = Counter(who[s["frame_index"]] for s in p["selected"])
        clips = sorted({tr["majority"] for tr in tracks if tr["person_id"] == p["person_id"]})
        persons.append({"person_id": p["person_id"], "track_ids": p["track_ids"], "clips": clips, "picks_show": dict(shown)})
    people = sorted({p[0] for p in PLAN})
    clip_persons = {c: sorted({tr["person_id"] for tr in tracks if tr["majority"] == c}) for c in people}
    return {
        "plan": [[name, first, n, list(t) if isinstance(t, tuple) else t] for name, first, n, t in PLAN],
        "frames": manifest["stats"]["frames_processed"],
        "people_in_clip": len(people),
        "persons": len(manifest["persons"]),
        "tracks": len(manifest["tracks"]),
        "rejected": [{"track_id": r["track_id"], "reason": r["reason"]} for r in manifest["rejected"]],
        "mixed_tracks": sum(1 for tr in tracks if tr["purity"] is not None and tr["purity"] < 1),
        "min_track_purity": min((tr["purity"] for tr in tracks if tr["purity"] is not None), default=None),
        "persons_holding_two_people": sum(1 for p in persons if len(p["clips"]) > 1),
        "people_split_over_persons": {c: ps for c, ps in clip_persons.items() if len(ps) > 1},
        "ms_per_frame": stage_ms(manifest),
        "track_rows": tracks,
        "person_rows": persons,
    }


def dlib_embed(crops: list[np.ndarray]) -> np.ndarray:
    from vidfiqa.align import template
    from vidfiqa.embed import make_embedder
    from vidfiqa.faces import Faces

    if not crops:
        return np.zeros((0, 128))
    n = len(crops)
    points = np.broadcast_to(template(112), (n, 5, 2))
    faces = Faces.create(np.tile([0.0, 0, 112, 112], (n, 1)), points, np.ones(n), frame_index=np.arange(n))
    return make_embedder("dlib")(faces, dict(enumerate(crops))).embeddings.astype(np.float64)


def real_report(rel: str, models, work: Path, truth: dict) -> dict:
    manifest, series, recorder = run_clip(DATA / rel, work / Path(rel).stem, models)
    judged: dict[int, np.ndarray] = {}
    tracks = []
    for t in manifest["tracks"]:
        rows = series[t["track_id"]]
        good = rows[np.isfinite(rows["quality"]) & (rows["quality"] >= JUDGE_QUALITY)]
        pick = good[np.unique(np.linspace(0, len(good) - 1, min(PER_TRACK, len(good))).round().astype(int))] if len(good) else good
        crops = [c for r in pick if (c := recorder.crop_at(int(r["frame_index"]), np.array([r["x1"], r["y1"], r["x2"], r["y2"]]))) is not None]
        e = dlib_embed(crops)
        row = {"track_id": t["track_id"], "person_id": t["person_id"], "detections": t["num_detections"], "judged": len(e)}
        if len(e) >= 2:
            d = np.linalg.norm(e[:, None] - e[None], axis=-1)
            medoid = int(np.argmin(d.sum(1)))
            far = d[medoid] > SAME_DISTANCE
            row.update({"far_from_medoid": int(far.sum()), "max_from_medoid": round(float(d[medoid].max()), 3)})
        if len(e) >= 3:
            judged[t["track_id"]] = e.mean(0)
        tracks.append(row)
    entries = {t["track_id"]: t for t in manifest["tracks"]}
    merges, splits = [], []
    ids = sorted(judged)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            ta, tb = entries[a], entries[b]
            d = float(np.linalg.norm(judged[a] - judged[b]))
            if ta["person_id"] == tb["person_id"] and d > SAME_DISTANCE:
                merges.append({"tracks": [a, b], "distance": round(d, 3)})
            together = ta["first_pts"] <= tb["last_pts"] and tb["first_pts"] <= ta["last_pts"]
            if ta["person_id"] != tb["person_id"] and not together and d < SPLIT_DISTANCE:
                splits.append({"tracks": [a, b], "persons": [ta["person_id"], tb["person_id"]], "distance": round(d, 3)})
    eye = truth.get(rel, {})
    return {
        "frames": manifest["stats"]["frames_processed"],
        "tracks": len(manifest["tracks"]),
        "rejected": [{"track_id": r["track_id"], "reason": r["reason"]} for r in manifest["rejected"]],
        "persons": len(manifest["persons"]),
        "by_eye": eye,
        "tracks_judged": sum(1 for r in tracks if r["judged"] >= 2),
        "dlib_mixed_tracks": [r["track_id"] for r in tracks if r.get("far_from_medoid", 0) > 0],
        "dlib_suspect_merges": merges,
        "dlib_suspect_splits": splits,
        "ms_per_frame": stage_ms(manifest),
        "track_rows": tracks,
    }


def markdown(data: dict) -> str:
    lines = ["| clip | frames | tracks | rejected | persons | people | mixed tracks | persons with two people | people split | dlib flags (mixed / merge / split) | identity + persons ms/frame | detection ms/frame |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    e = data["edited"]
    lines.append(f"| edited (built here; exact) | {e['frames']} | {e['tracks']} | {len(e['rejected'])} | {e['persons']} | {e['people_in_clip']} | "
                 f"{e['mixed_tracks']} (min purity {e['min_track_purity']}) | {e['persons_holding_two_people']} | {len(e['people_split_over_persons'])} | - | "
                 f"{e['ms_per_frame']['identity_and_persons']} | {e['ms_per_frame']['detection']} |")
    for rel, r in data["real"].items():
        eye = r["by_eye"]
        lines.append(f"| {Path(rel).name} (by eye) | {r['frames']} | {r['tracks']} | {len(r['rejected'])} | {r['persons']} | {eye.get('people', '?')} | "
                     f"{eye.get('mixed_tracks', '?')} | {eye.get('persons_with_two_people', '?')} | {eye.get('people_split', '?')} | "
                     f"{len(r['dlib_mixed_tracks'])} of {r['tracks_judged']} / {len(r['dlib_suspect_merges'])} / {len(r['dlib_suspect_splits'])} | "
                     f"{r['ms_per_frame']['identity_and_persons']} | {r['ms_per_frame']['detection']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    import tempfile

    from vidfiqa.pipeline import make_settings
    from vidfiqa.pipeline.models import Models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep the galleries in this folder (to look at them)")
    args = parser.parse_args()
    run = Run("people.py", sys.argv[1:], timed=False)
    models = Models.build(make_settings())
    truth = json.loads(TRUTH.read_text())["clips"] if TRUTH.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        data = {"edited": edited_report(models, work)}
        print("edited:", {k: v for k, v in data["edited"].items() if not k.endswith("_rows")})
        data["real"] = {}
        for rel in REAL:
            data["real"][rel] = real_report(rel, models, work, truth)
            print(rel, {k: v for k, v in data["real"][rel].items() if not k.endswith("_rows")})
    data["settings"] = {"per_track": PER_TRACK, "judge_quality": JUDGE_QUALITY, "same_distance": SAME_DISTANCE, "split_distance": SPLIT_DISTANCE}
    out = run.write(HERE / "results" / "people_vm.json", data)
    (HERE / "results" / "people_vm.md").write_text(markdown(out))
    print(markdown(out))


if __name__ == "__main__":
    main()
