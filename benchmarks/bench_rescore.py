"""Frames per second of `vidfiqa rescore` with each quality method on this machine, on the
YouTube Faces subset (face found inside the labelled box, aligned, scored, embedded by the
student).

    python benchmarks/bench_rescore.py [--frames-per-video 3] [--diffiqa-frames-per-video 1]

Each method runs in-process on the same frames (evenly spaced in each of the 8 videos) after a
warm-up on one video; the time includes reading the JPEGs and detection, as a real re-scoring
run does.  Results: benchmarks/results/rescore_<host>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
YTF = REPO.parent / "shared" / "data" / "ytf_subset"

METHODS = {
    "ediffiqa": {},
    "froq": {"calibration": str(REPO / "training" / "froq_mobilefacenet.json")},
    "faceqan": {},
    "diffiqa": {},  # the bundled small diffusion model
    "sharpness": {},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames-per-video", type=int, default=3)
    parser.add_argument("--diffiqa-frames-per-video", type=int, default=1, help="DifFIQA takes ~20 s a face on 2 CPU cores")
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--out", type=Path, default=HERE / "results" / f"rescore_{platform.node() or 'host'}.json")
    args = parser.parse_args()
    os.environ.setdefault("VIDFIQA_WEIGHTS", str(REPO.parent / "shared" / "models"))

    from vidfiqa.rescore import RescoreSettings, RescoreWorker, find_items

    items, _ = find_items(YTF)
    results = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()}, "methods": {}}
    for method in args.methods:
        per_video = args.diffiqa_frames_per_video if method == "diffiqa" else args.frames_per_video
        settings = RescoreSettings(method=method, method_options=METHODS[method], max_frames=per_video)
        worker = RescoreWorker(settings)
        worker.process(items[0])  # warm-up: first-call costs are not per-frame costs
        start = time.perf_counter()
        frames = sum(len(worker.process(item)["video"]) for item in items)
        seconds = time.perf_counter() - start
        results["methods"][method] = {"frames": frames, "seconds": round(seconds, 2), "frames_per_s": round(frames / seconds, 3),
                                      "options": {k: Path(v).name if "/" in str(v) else v for k, v in METHODS[method].items()}}
        print(f"{method:10s} {frames:4d} frames in {seconds:7.1f} s: {frames / seconds:8.3f} frames/s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
