"""Cameras per box: how many live 720p multi-person cameras one `vidfiqa watch` keeps up with.

    python benchmarks/cameras.py [--cameras 1 2 4 6 8] [--seconds 30]   # -> results/cameras_vm.json

The camera: the street crowd at 1280x720, 25 fps, about ten people (bench_run.py's ``--crowd720``
clip), replayed live (a stream file with ``loop = true`` is paced at the clip's own frame rate)
and analysed at the default 5 frames a second (``fps_cap``).  For each camera count a fresh
`vidfiqa watch` process runs all of them for ``--seconds``; reported per count: analysed
frames/s per camera (the slowest and the median), frames dropped because the analysis fell behind,
the median event latency (seconds from a person's last detection to the event being written,
which includes ``lost_after_s``), and steady and peak memory (watch_memory.py's ``measure``).

Also reported: what decoding alone allows, the clip's decode-only frames/s in this process
(the pipeline's own frame source) divided by 25, i.e. how many such cameras this box could
decode at all if it did nothing else.  Results: benchmarks/results/cameras_vm.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_run import crowd_720p, decode_only  # noqa: E402
from benchinfo import Run  # noqa: E402
from watch_memory import measure  # noqa: E402


def event_latency(out: Path) -> float | None:
    path = out / "events.jsonl"
    latencies = [json.loads(line)["latency_s"] for line in path.read_text().splitlines()] if path.exists() else []
    return round(statistics.median(latencies), 2) if latencies else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4, 6, 8])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "cameras_vm.json")
    args = parser.parse_args()
    run = Run("cameras.py", sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = crowd_720p(work / "street_crowd_720p_x3.mp4")
        decodes = [decode_only(clip)["frames_per_s"] for _ in range(3)]
        rows = []
        for cameras in args.cameras:
            result = measure(cameras, clip, args.seconds, work)
            rates = sorted(result["frames_processed_per_s"].values())
            row = {"cameras": cameras, "analysed_per_s_slowest": rates[0], "analysed_per_s_median": statistics.median(rates),
                   "dropped_overload_total": sum(result["frames_dropped_overload"].values()),
                   "event_latency_s_median": event_latency(work / f"cams{cameras}" / "out"),
                   "rss_steady_mib": result["rss_steady_mib"], "rss_peak_mib": result["rss_peak_mib"], "exit_code": result["exit_code"]}
            rows.append(row)
            print(row, flush=True)
    decode = statistics.median(decodes)
    run.write(args.out, {"clip": "street crowd, 1280x720, 25 fps, replayed live; analysed at fps_cap 5", "seconds": args.seconds,
                         "decode_only_frames_per_s": decode, "decode_only_runs": decodes,
                         "cameras_decodable_at_25_fps": round(decode / 25.0, 1), "runs": rows})


if __name__ == "__main__":
    main()
