"""Frames per second of `vidfiqa rescore` with each quality method on this machine, on the
YouTube Faces subset (face found inside the labelled box, aligned, scored, embedded by the
student).

    python benchmarks/bench_rescore.py [--frames-per-video 3] [--diffiqa-frames-per-video 1]

Each method runs in-process on the same frames (evenly spaced in each of the 8 videos) after a
warm-up on one video; the time includes reading the JPEGs and detection, as a real re-scoring
run does.  Results: benchmarks/results/rescore_<host>.json.  A run with ``--methods`` replaces
only those methods' entries of an existing results file; each entry keeps the machine and load
average (at its start and end) of the run that measured it, and DifFIQA's names the diffusion
model file (and its sha256) it used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
YTF = REPO.parent / "shared" / "data" / "ytf_subset"

METHODS = {
    "ediffiqa": {},
    "froq": {"calibration": str(REPO / "training" / "froq_mobilefacenet.json")},
    "faceqan": {},
    "diffiqa": {},  # the bundled small diffusion model
    "sharpness": {},
}


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames-per-video", type=int, default=3)
    parser.add_argument("--diffiqa-frames-per-video", type=int, default=1, help="DifFIQA takes ~20 s a face on 2 CPU cores")
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--videos", type=int, default=0, help="time only the first N videos (0: all 8)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / f"rescore_{platform.node() or 'host'}.json")
    args = parser.parse_args()
    os.environ.setdefault("VIDFIQA_WEIGHTS", str(REPO.parent / "shared" / "models"))
    from benchinfo import BUSY_LOAD, Run

    from vidfiqa.rescore import RescoreSettings, RescoreWorker, find_items

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    run = Run("bench_rescore.py", sys.argv[1:])
    items, _ = find_items(YTF)
    warm, items = items[0], items[: args.videos] if args.videos else items
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    measured = {}
    for method in args.methods:
        per_video = args.diffiqa_frames_per_video if method == "diffiqa" else args.frames_per_video
        settings = RescoreSettings(method=method, method_options=METHODS[method], max_frames=per_video)
        worker = RescoreWorker(settings)
        load_start = [round(x, 2) for x in os.getloadavg()]
        worker.process(warm)  # warm-up: first-call costs are not per-frame costs
        start = time.perf_counter()
        frames = sum(len(worker.process(item)["video"]) for item in items)
        seconds = time.perf_counter() - start
        entry = {"frames": frames, "videos": len(items), "frames_per_video": per_video, "torch_threads": torch_threads(), "seconds": round(seconds, 2), "frames_per_s": round(frames / seconds, 3),
                 "options": {k: Path(v).name if "/" in str(v) else v for k, v in METHODS[method].items()},
                 "load_average": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]}}
        if method == "diffiqa":
            from vidfiqa.backbones.registry import sha256_file
            from vidfiqa.quality.diffiqa import _find_checkpoint

            path = _find_checkpoint(METHODS[method].get("diffusion"), "small")
            entry["options"]["diffusion"] = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)
            entry["diffusion_sha256"] = sha256_file(path)
            entry["repeats"], entry["t"] = worker.scorer.repeats, worker.scorer.t
        measured[method] = entry
        print(f"{method:10s} {frames:4d} frames in {seconds:7.1f} s: {frames / seconds:8.3f} frames/s", flush=True)
    header = run.header()
    methods = dict(previous.get("methods", {}))
    for entry in methods.values():
        if "run" not in entry:  # measured by an earlier version of this script, which recorded less
            entry["run"] = {"machine": previous.get("machine"), "load_average": None,
                            "note": "measured before this script recorded the load average and versions"}
    for method, entry in measured.items():
        entry["load_average"]["busy"] = max(entry["load_average"]["start"][0], entry["load_average"]["end"][0]) > BUSY_LOAD
        methods[method] = {**entry, "run": {k: header[k] for k in ("command", "started_utc", "machine")}}
    run.write(args.out, {"methods": methods})

if __name__ == "__main__":
    main()
