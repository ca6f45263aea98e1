"""Shot-boundary detection (vidfiqa.video.shots): recall, false cuts and cost per frame.

    python benchmarks/shots.py                      # -> benchmarks/results/shots_vm.json and .md

* Recall and precision of hard cuts on the two edited azurevi excerpts and on the clips of
  ../shared/data/videos/ that turned out to hold cuts (ground truth, and how it was made:
  benchmarks/shots_ground_truth.json).
* Recall of hard cuts and cross-dissolves on an edited clip built here from shared clips of
  different people (640 x 360, cuts and dissolves at known frames: ``PLAN``).
* False boundaries per minute on the continuous shots of ../shared/data/videos/.
* Milliseconds per frame at 720p and 1080p.

Each for the new detector (defaults), the same detector fed every 5th frame only (what the
default `vidfiqa run` analyses at 25 fps; its detections may come up to 4 frames later), the same
with the YUV thumbnail of every frame (what `vidfiqa run` now feeds it under a stride), the old
fixed histogram threshold (0.55, and lower values for comparison) and the new detector without
dissolves.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from benchinfo import Run, load_note

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
from vidfiqa.video.shots import SceneCutDetector  # noqa: E402

DATA = REPO.parent / "shared" / "data"
GROUND_TRUTH = HERE / "shots_ground_truth.json"
CUT_TOLERANCE, DISSOLVE_TOLERANCE = 2, 10  # frames after a boundary's last frame a detection may come

#: The edited clip: (clip, frames, transition into the next segment).  A dissolve of L frames
#: blends the last L frames of a segment with the first L of the next.
PLAN: list[tuple[str, int, tuple | None]] = [
    ("liveportrait_d6.mp4", 60, ("cut",)),
    ("liveportrait_d9.mp4", 60, ("cut",)),
    ("liveportrait_s18.mp4", 60, ("dissolve", 20)),
    ("videoretalking_2.mp4", 70, ("cut",)),
    ("tpsmm_driving.mp4", 60, ("dissolve", 12)),
    ("liveportrait_d12.mp4", 70, ("cut",)),
    ("ytf_Agbani_Darego_0.avi", 60, ("dissolve", 30)),
    ("liveportrait_d13.mp4", 70, ("dissolve", 16)),
    ("ytf_Aaron_Guiel_5.avi", 60, ("cut",)),
    ("ytf_Aishwarya_Rai_0.avi", 60, ("dissolve", 24)),
    ("facenetpytorch_street_crowd.mp4", 60, None),
]
EDIT_SIZE = (640, 360)


class FixedHistogram:
    """The detector before issue 11: Bhattacharyya distance of hue-saturation histograms of
    consecutive frames above a fixed threshold."""

    def __init__(self, threshold: float = 0.55):
        self.threshold = threshold
        self.previous: np.ndarray | None = None
        self.last_kind = "cut"

    def __call__(self, frame: np.ndarray) -> bool:
        k = max(1, min(frame.shape[:2]) // 128)
        thumb = cv2.resize(frame[::k, ::k], (64, 64), interpolation=cv2.INTER_LINEAR)
        hist = cv2.calcHist([cv2.cvtColor(thumb, cv2.COLOR_RGB2HSV)], [0, 1], None, [16, 8], [0, 180, 0, 256])
        hist = cv2.normalize(hist, hist).astype(np.float32)
        previous, self.previous = self.previous, hist
        return previous is not None and cv2.compareHist(previous, hist, cv2.HISTCMP_BHATTACHARYYA) > self.threshold


class EveryNth:
    """A detector that sees every ``stride``-th frame only, as `vidfiqa run` feeds it at its default
    5 analysed frames a second (stride 5 at 25 fps, 6 at 30).  A boundary it finds is reported on
    the first analysed frame after it, so it may come up to ``stride - 1`` frames later."""

    def __init__(self, make, stride: int):
        self.detector, self.stride, self.seen = make(), stride, -1

    @property
    def last_kind(self) -> str:
        return self.detector.last_kind

    def __call__(self, frame: np.ndarray) -> bool:
        self.seen += 1
        return self.seen % self.stride == 0 and self.detector(frame)


DETECTORS = {
    "new (defaults)": lambda: SceneCutDetector(),
    "new, every 5th frame only (the default run before every frame gave a thumbnail)": lambda: EveryNth(SceneCutDetector, 5),
    "new, every 5th frame analysed, every frame's YUV thumbnail (the default run since they were added)": lambda: EveryFrameThumbnails(5),
    "new, cuts only (dissolve=False)": lambda: SceneCutDetector(dissolve=False),
    "old fixed histogram 0.55": lambda: FixedHistogram(0.55),
    "old fixed histogram 0.30": lambda: FixedHistogram(0.30),
    "old fixed histogram 0.20": lambda: FixedHistogram(0.20),
}


class EveryFrameThumbnails:
    """What `vidfiqa run` does under a stride: every ``stride``-th frame is analysed, but the cut
    detector is fed the thumbnail of every decoded frame, taken from its YUV 4:2:0 planes
    (``yuv_thumbnail``; here the RGB frame is converted to YUV first, as a decoder would give
    it).  A boundary is reported on the first analysed frame from it on."""

    def __init__(self, stride: int):
        self.detector, self.stride, self.seen, self.pending, self.last_kind = SceneCutDetector(), stride, -1, "", ""

    def __call__(self, frame: np.ndarray) -> bool:
        import av

        from vidfiqa.video.shots import yuv_thumbnail

        self.seen += 1
        yuv = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2]),
                                         format="rgb24").reformat(format="yuv420p")
        if self.detector.observe(yuv_thumbnail(yuv)):
            self.pending = self.detector.last_kind
        if self.seen % self.stride or not self.pending:
            return False
        self.last_kind, self.pending = self.pending, ""
        return True


def read(path: Path, limit: int | None = None, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """RGB frames of a clip (at most ``limit``), centre-cropped and resized to ``size`` if given."""
    cap = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    while limit is None or len(frames) < limit:
        ok, frame = cap.read()
        if not ok:
            break
        if size is not None:
            w, h = size
            scale = max(w / frame.shape[1], h / frame.shape[0])
            frame = cv2.resize(frame, (round(frame.shape[1] * scale), round(frame.shape[0] * scale)), interpolation=cv2.INTER_AREA)
            y, x = (frame.shape[0] - h) // 2, (frame.shape[1] - w) // 2
            frame = frame[y:y + h, x:x + w]
        frames.append(np.ascontiguousarray(frame[:, :, ::-1]))
    return frames


def edited_clip(plan=PLAN, folder: Path = DATA / "videos", size=EDIT_SIZE) -> tuple[list[np.ndarray], list[dict]]:
    """Frames of the edited clip and its boundaries ({kind, first, last})."""
    frames: list[np.ndarray] = []
    events: list[dict] = []
    pending = 0  # dissolve length into the segment being added
    for i, (name, n, transition) in enumerate(plan):
        segment = read(folder / name, n + (pending or 0), size)
        if pending:
            start = len(frames) - pending
            for j in range(pending):
                a = (j + 1) / (pending + 1)
                frames[start + j] = cv2.addWeighted(frames[start + j], 1 - a, segment[j], a, 0)
            events.append({"kind": "dissolve", "first": start, "last": start + pending - 1, "note": f"{plan[i - 1][0]} -> {name}"})
            segment = segment[pending:]
        elif i:
            events.append({"kind": "cut", "first": len(frames), "last": len(frames), "note": f"{plan[i - 1][0]} -> {name}"})
        frames.extend(segment)
        pending = transition[1] if transition and transition[0] == "dissolve" else 0
    return frames, events


def detect(make, frames: list[np.ndarray]) -> list[tuple[int, str]]:
    detector = make()
    return [(i, detector.last_kind) for i, frame in enumerate(frames) if detector(frame)]


def match(detections: list[tuple[int, str]], events: list[dict], late: int = 0) -> tuple[list[bool], list[int]]:
    """Which boundaries were found, and the detections that match none (false boundaries);
    ``late``: extra frames a detection may come after a boundary (a strided detector's)."""
    found = [False] * len(events)
    false = []
    for frame, _kind in detections:
        for j, event in enumerate(events):
            tolerance = (CUT_TOLERANCE if event["kind"] == "cut" else DISSOLVE_TOLERANCE) + late
            if not found[j] and event["first"] <= frame <= event["last"] + tolerance:
                found[j] = True
                break
        else:
            false.append(frame)
    return found, false


def cost_ms(make, frames: list[np.ndarray], repeats: int = 4) -> float:
    detector = make()
    for frame in frames:
        detector(frame)
    t0 = time.perf_counter()
    for _ in range(repeats):
        for frame in frames:
            detector(frame)
    return (time.perf_counter() - t0) / (repeats * len(frames)) * 1e3


def main() -> None:
    run = Run("shots.py", sys.argv[1:], timed=False)
    truth = json.loads(GROUND_TRUTH.read_text())["clips"]
    clips: dict[str, tuple[list[np.ndarray], list[dict], float]] = {}
    for rel, info in truth.items():
        clips[rel] = (read(DATA / rel), info["boundaries"], info["fps"])
    edited, edited_events = edited_clip()
    clips["edited (built here)"] = (edited, edited_events, 30.0)
    print(f"{sum(len(f) for f, _, _ in clips.values())} frames in {len(clips)} clips")

    rows = {}
    for label, make in DETECTORS.items():
        per_clip = {}
        totals = {"cut": [0, 0], "dissolve": [0, 0]}
        false_continuous, minutes_continuous, false_all, detections_all = 0, 0.0, 0, 0
        for name, (frames, events, fps) in clips.items():
            detections = detect(make, frames)
            found, false = match(detections, events, late=4 if "every 5th" in label else 0)
            for event, hit in zip(events, found):
                totals[event["kind"]][0] += hit
                totals[event["kind"]][1] += 1
            false_all += len(false)
            detections_all += len(detections)
            if name.startswith("videos/"):
                false_continuous += len(false)
                minutes_continuous += len(frames) / fps / 60
            per_clip[name] = {"boundaries": len(events), "found": int(sum(found)), "detections": detections, "false": false}
        rows[label] = {
            "cut_recall": [totals["cut"][0], totals["cut"][1]],
            "dissolve_recall": [totals["dissolve"][0], totals["dissolve"][1]],
            "precision": [detections_all - false_all, detections_all],
            "false_per_min_continuous": round(false_continuous / minutes_continuous, 3),
            "continuous_minutes": round(minutes_continuous, 2),
            "clips": per_clip,
        }
        print(f"{label:34s} cuts {totals['cut'][0]}/{totals['cut'][1]}  dissolves {totals['dissolve'][0]}/{totals['dissolve'][1]}  "
              f"false {false_all} ({rows[label]['false_per_min_continuous']}/min on continuous shots)")

    # Cost per frame: real frames (liveportrait_s18, 720p) at 720p and resized to 1080p.
    source = read(DATA / "videos" / "liveportrait_s18.mp4", 60)
    cost = {}
    for name, (w, h) in {"720p": (1280, 720), "1080p": (1920, 1080)}.items():
        frames = [np.ascontiguousarray(cv2.resize(f, (w, h))) for f in source]
        cost[name] = {label: round(cost_ms(make, frames), 3) for label, make in DETECTORS.items() if not label.endswith(("0.30", "0.20")) and "every" not in label}
        print(name, cost[name])

    data = run.write(HERE / "results" / "shots_vm.json", {
        "ground_truth": "benchmarks/shots_ground_truth.json",
        "edited_clip": {"size": list(EDIT_SIZE), "plan": [list(p[:2]) + [list(p[2]) if p[2] else None] for p in PLAN], "boundaries": edited_events},
        "tolerance_frames": {"cut": CUT_TOLERANCE, "dissolve": DISSOLVE_TOLERANCE},
        "detectors": rows,
        "ms_per_frame": cost,
        "defaults": {k: v for k, v in vars(SceneCutDetector()).items() if not k.startswith("_") and not k.startswith("last_")},
    })
    write_markdown(data, HERE / "results" / "shots_vm.md")


def write_markdown(data: dict, path: Path) -> None:
    lines = [
        "# Shot boundaries (benchmarks/shots.py)",
        "",
        f"{data['machine']['cpu_model']}, {data['machine']['cpu_count']} CPUs, {load_note(data)}. "
        f"Ground truth: {data['ground_truth']}; a detection counts within {data['tolerance_frames']['cut']} frames after a cut, "
        f"{data['tolerance_frames']['dissolve']} after a dissolve's last frame.",
        "",
        "| detector | hard cuts found | dissolves found | precision | false / min (continuous shots) | ms/frame 720p | ms/frame 1080p |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, row in data["detectors"].items():
        c720 = data["ms_per_frame"]["720p"].get(label, "")
        c1080 = data["ms_per_frame"]["1080p"].get(label, "")
        prec = row["precision"]
        lines.append(f"| {label} | {row['cut_recall'][0]}/{row['cut_recall'][1]} | {row['dissolve_recall'][0]}/{row['dissolve_recall'][1]} | "
                     f"{prec[0]}/{prec[1]} | {row['false_per_min_continuous']} ({row['continuous_minutes']} min) | {c720} | {c1080} |")
    lines += ["", "Per clip, new detector (defaults): boundaries found / present, false detections (frames).", "",
              "| clip | found | false |", "|---|---|---|"]
    for name, clip in data["detectors"]["new (defaults)"]["clips"].items():
        lines.append(f"| {name} | {clip['found']}/{clip['boundaries']} | {clip['false'] or ''} |")
    path.write_text("\n".join(lines) + "\n")
    print(f"-> {path}")


if __name__ == "__main__":
    main()
