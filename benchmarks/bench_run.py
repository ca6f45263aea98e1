"""`vidfiqa run` speed, time per stage and peak memory on a real 720p clip.

    python benchmarks/bench_run.py [--clip ../shared/data/videos/liveportrait_s18.mp4] [--repeat 10]
    python benchmarks/bench_run.py --crowd720 --out benchmarks/results/run_crowd720_vm.json

``--crowd720`` builds a real 720p multi-person clip instead: the 1080p street crowd
(facenetpytorch_street_crowd.mp4, about ten people) resized to 1280x720 and played three times in
a row (315 frames, 25 fps, x264 CRF 20), so that decoding and analysis see what a 720p camera on
a street gives.

Measures, in one process and on the same file:
  * decode-only frames/s: the pipeline's own frame source (PyAV, frame threading, RGB frames);
  * end-to-end frames/s of `vidfiqa run` for the presets and variants of the default, each framed
    by two decode-only runs (its ratio is to their mean), with the time spent per stage, the
    student's ms per face as the pipeline calls it, and the quality of the picks against a run
    that analyses every frame and scores every face with the float student (``pick_quality``);
  * peak memory (max RSS, each run in a fresh subprocess) for the clip and for the clip repeated
    ``--repeat`` times (stream-copied, so decoding cost per frame is identical): it must not grow
    with the input's length.
Results go to benchmarks/results/run_<host>.json and are printed as a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_CLIP = REPO.parent / "shared" / "data" / "videos" / "liveportrait_s18.mp4"


def decode_only(clip: Path) -> dict:
    from vidfiqa.video import open_source

    start = time.perf_counter()
    n = 0
    with open_source(clip, decoder="pyav") as source:
        for _ in source:
            n += 1
    seconds = time.perf_counter() - start
    return {"frames": n, "seconds": round(seconds, 3), "frames_per_s": round(n / seconds, 1)}


def end_to_end(clip: Path, config: str | None, keep: Path | None = None, **overrides) -> dict:
    """One `vidfiqa run` of ``clip``; the gallery is kept at ``keep`` (for pick_quality)."""
    import numpy as np

    from vidfiqa.pipeline import make_settings
    from vidfiqa.pipeline.run import VideoPipeline

    pipeline = VideoPipeline(make_settings(config, **overrides))
    # One untimed pass over a few frames warms onnxruntime and numba up, as a long run would be.
    with tempfile.TemporaryDirectory() as tmp:
        pipeline.run(REPO / "samples" / "astronaut.mp4", Path(tmp) / "warm")
        manifest = pipeline.run(clip, keep or Path(tmp) / "g")
    stats = manifest["stats"]
    selected = [s for t in manifest["tracks"] for s in t["selected"]]
    seconds = stats["stage_seconds"]
    return {
        "config": config or "default",
        "overrides": overrides,
        "stride": stats["stride"],
        "frames": stats["frames_processed"],
        "seconds": stats["elapsed_s"],
        "frames_per_s": stats["frames_per_s"],  # frames analysed per second
        "input_frames_per_s": stats["input_frames_per_s"],  # frames of the video per second (differs with stride)
        "stage_ms_per_frame": {k: round(1000 * v / max(1, stats["frames_processed"]), 2) for k, v in seconds.items()},
        # The student as the pipeline calls it: the score stage's time over the faces it scored.
        "score_ms_per_face": round(1000 * seconds.get("score", 0.0) / stats["faces_scored"], 2) if stats["faces_scored"] else None,
        "faces_scored": stats["faces_scored"],
        "tracks": len(manifest["tracks"]),
        "detections": stats["detections"],
        "full_detections": stats["full_detections"],
        "selected_quality_mean": round(float(np.mean([s["quality"] for s in selected])), 4) if selected else None,
    }


def pick_quality(reference: Path, test: Path, scorer, min_detections: int = 10) -> dict:
    """How good a run's picks are, person by person, against a reference run's.

    Every reference track with at least ``min_detections`` detections is a person.  A test pick
    belongs to it when the pick's box overlaps the reference track's box in the same frame
    (IoU >= 0.5; the reference searches every frame, so it has a box wherever the person was
    seen).  Every pick's saved crop is re-scored by one scorer (the float student), so runs
    that score with another model or at another rate are compared on one scale.  Returns the
    share of people with at least one pick and, over those, the mean ratio of the best pick's
    quality to the reference's best pick."""
    import csv

    import cv2
    import numpy as np

    from vidfiqa.boxes import iou_matrix

    def load(folder: Path) -> dict:
        return json.loads((folder / "manifest.json").read_text())

    def quality_of(folder: Path, picks: list[dict]) -> np.ndarray:
        crops = np.stack([cv2.imread(str(folder / p["crop"]))[..., ::-1] for p in picks])
        return scorer.score(crops)

    ref, run = load(reference), load(test)
    picks = [p for t in run["tracks"] for p in t["selected"]]
    pick_boxes = np.array([p["bbox"] for p in picks], np.float64).reshape(-1, 4)
    pick_q = quality_of(test, picks) if picks else np.zeros(0)
    found, ratios = 0, []
    people = [t for t in ref["tracks"] if t["num_detections"] >= min_detections and t["selected"]]
    for track in people:
        with open(reference / track["series"], newline="") as handle:
            boxes = {int(r["frame_index"]): [float(r[k]) for k in ("x1", "y1", "x2", "y2")] for r in csv.DictReader(handle)}
        mine = [i for i, p in enumerate(picks) if p["frame_index"] in boxes
                and iou_matrix(pick_boxes[[i]], np.array([boxes[p["frame_index"]]]))[0, 0] >= 0.5]
        if not mine:
            continue
        found += 1
        ratios.append(float(pick_q[mine].max() / quality_of(reference, track["selected"]).max()))
    return {"people": len(people), "people_with_a_pick": found,
            "best_pick_quality_ratio_mean": round(float(np.mean(ratios)), 3) if ratios else None}


def crowd_720p(out: Path, times: int = 3) -> Path:
    """The street crowd clip at 1280x720, ``times`` times in a row (see the module docstring)."""
    import av

    source = REPO.parent / "shared" / "data" / "videos" / "facenetpytorch_street_crowd.mp4"
    with av.open(str(source)) as src:
        frames = [f.reformat(width=1280, height=720, format="yuv420p").to_ndarray() for f in src.decode(video=0)]
    with av.open(str(out), "w") as dst:
        stream = dst.add_stream("libx264", rate=25, options={"crf": "20", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        for _ in range(times):
            for planes in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(planes, format="yuv420p")):
                    dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out


def repeated_clip(clip: Path, times: int, out: Path) -> Path:
    """The clip ``times`` times in a row, stream-copied (no re-encoding), timestamps shifted."""
    import av

    with av.open(str(clip)) as src:
        pts = [p.pts + (p.duration or 0) for p in src.demux(src.streams.video[0]) if p.pts is not None]
        span = max(pts)
    with av.open(str(clip)) as template, av.open(str(out), "w") as dst:
        ostream = dst.add_stream_from_template(template.streams.video[0])
        for k in range(times):
            # Reopened each time: muxing rescales a packet's timestamps in place.
            with av.open(str(clip)) as src:
                for p in src.demux(src.streams.video[0]):
                    if p.dts is None:
                        continue
                    p.pts, p.dts = p.pts + k * span, p.dts + k * span
                    p.stream = ostream
                    dst.mux(p)
    return out


def peak_memory(clip: Path, config: str | None) -> dict:
    """Run the pipeline in a fresh interpreter and read its max RSS."""
    code = (
        "import resource, sys, tempfile, vidfiqa;"
        "d = tempfile.mkdtemp();"
        f"m = vidfiqa.run({str(clip)!r}, d + '/g', config={config!r});"
        "print(m['stats']['frames_processed'], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return {"frames": int(out[0]), "max_rss_mib": round(int(out[1]) / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--crowd720", action="store_true", help="build and measure a 720p multi-person clip (the street crowd) instead of --clip")
    parser.add_argument("--out", type=Path, default=HERE / "results" / f"run_{platform.node() or 'host'}.json")
    args = parser.parse_args()
    work = tempfile.TemporaryDirectory()
    if args.crowd720:
        args.clip = crowd_720p(Path(work.name) / "street_crowd_720p_x3.mp4")
    if not args.clip.is_file():
        sys.exit(f"clip not found: {args.clip} (needs ../shared/data/videos)")

    from benchinfo import Run

    run = Run("bench_run.py", sys.argv[1:])  # the machine and the load average at start and end
    results: dict = {"clip": str(args.clip.name)}
    # Decode speed on this shared machine drifts by tens of percent from minute to minute: each
    # run is framed by two decode-only runs, and its ratio is to their mean.
    from vidfiqa.quality.ediffiqa import EDifFIQA

    reference = ("default", {"fps_cap": 0.0, "score_every": 1, "student_int8": False})  # every frame, every face, float student
    # The default is run three times (first, middle, last): on this shared machine a single
    # ratio moves by +-0.1 when the host is busy for a while; its median and range are reported.
    runs = [("default", {}), ("default", {"fps_cap": 10.0}), ("default", {"score_every": 2}), ("default", {}), ("default", {"student_int8": False}),
            reference, ("fast", {}), ("accurate", {}), ("default", {})]
    galleries = Path(work.name) / "galleries"
    results["end_to_end"], decodes = [], []
    for k, (config, overrides) in enumerate(runs):
        before = decode_only(args.clip)
        run_result = end_to_end(args.clip, config, keep=galleries / str(k), **overrides)
        after = decode_only(args.clip)
        decode = (before["frames_per_s"] + after["frames_per_s"]) / 2
        run_result["decode_only_frames_per_s"] = round(decode, 1)
        run_result["x_decode_only"] = round(run_result["input_frames_per_s"] / decode, 3)
        decodes += [before["frames_per_s"], after["frames_per_s"]]
        results["end_to_end"].append(run_result)
    scorer = EDifFIQA()
    for k, run_result in enumerate(results["end_to_end"]):
        run_result["picks_against_every_frame"] = pick_quality(galleries / str(runs.index(reference)), galleries / str(k), scorer)
    rates = sorted(decodes)
    results["decode_only"] = {"frames": before["frames"], "frames_per_s": rates[len(rates) // 2], "runs_frames_per_s": decodes}
    defaults = sorted(r["x_decode_only"] for r in results["end_to_end"] if r["config"] == "default" and not r["overrides"])
    results["default_x_decode_only"] = {"median": defaults[len(defaults) // 2], "runs": defaults}
    with tempfile.TemporaryDirectory() as tmp:
        long_clip = repeated_clip(args.clip, args.repeat, Path(tmp) / f"x{args.repeat}{args.clip.suffix}")
        results["memory"] = {"short": peak_memory(args.clip, "fast"), f"x{args.repeat}": peak_memory(long_clip, "fast")}
    run.write(args.out, results)

    decode = results["decode_only"]["frames_per_s"]
    print(f"clip {args.clip.name}: decode-only {decode} frames/s (median; runs {results['decode_only']['runs_frames_per_s']}); "
          f"default {results['default_x_decode_only']}")
    for r in results["end_to_end"]:
        print(f"  {r['config']:8s} {json.dumps(r['overrides']):22s} {r['input_frames_per_s']:7.1f} input frames/s "
              f"({r['x_decode_only']:.2f} x decode)  {r['tracks']} tracks, picks {r['picks_against_every_frame']}, "
              f"{r['score_ms_per_face']} ms/face  ms/frame {r['stage_ms_per_frame']}")
    for name, m in results["memory"].items():
        print(f"  memory {name}: {m['frames']} frames, max RSS {m['max_rss_mib']} MiB")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
