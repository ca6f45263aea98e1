"""Memory of `vidfiqa watch` against the number of cameras: what one more camera costs.

    python benchmarks/watch_memory.py [--cameras 1 4] [--seconds 30] [--repeats 3] [--clip ../shared/data/videos/liveportrait_s18.mp4]

For each camera count a fresh `vidfiqa watch` process replays the clip (1280x720, 30 fps) as that
many live cameras (stream files with ``loop = true``: each paced at the clip's own frame rate,
default pipeline settings).  Its resident memory (RSS) is sampled every second; reported are the
median over the second half of the run (steady state) and the peak (VmHWM).  The cost per added
camera is (steady RSS with the most cameras - with the fewest) / (difference in cameras), from
``--repeats`` pairs of runs made one after the other; the median pair is the figure, with the
range beside it (on a shared 2-core machine one pair varied from 35 to 41 MiB).
Cameras whose model settings agree share one set of models (vidfiqa/pipeline/models.py), so what
a camera adds is its reader, decoder, frame queue and tracker.  Results:
benchmarks/results/watch_memory_<host>.json with the machine and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared"))


def status_kib(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    return float("nan")


def measure(cameras: int, clip: Path, seconds: float, work: Path, extra_args: tuple[str, ...] = (), tag: str = "",
            stream_lines: str = "") -> dict:
    folder = work / f"cams{cameras}{tag}"
    (folder / "streams").mkdir(parents=True)
    files = []
    for i in range(cameras):
        path = folder / "streams" / f"cam{i}.toml"
        path.write_text(f'[stream]\nname = "cam{i}"\nurl = "{clip}"\nloop = true\n{stream_lines}')
        files.append(str(path))
    log = open(folder / "watch.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "vidfiqa", "watch", *files, "-o", str(folder / "out"), "--duration", str(seconds), "--no-metrics", *extra_args],
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    peak = float("nan")
    try:
        while proc.poll() is None:
            try:
                samples.append((time.monotonic() - started, status_kib(proc.pid, "VmRSS") / 1024))
                peak = status_kib(proc.pid, "VmHWM") / 1024
            except (OSError, ValueError):
                break
            time.sleep(1.0)
        proc.wait(timeout=seconds + 120)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        log.close()
    steady = [rss for t, rss in samples if t >= seconds / 2]
    summary = json.loads((folder / "out" / "watch_summary.json").read_text())
    return {
        "cameras": cameras,
        "exit_code": proc.returncode,
        "rss_steady_mib": round(statistics.median(steady), 1) if steady else None,
        "rss_peak_mib": round(peak, 1),
        "samples": len(samples),
        "rss_trace_mib": [round(rss, 1) for _, rss in samples[::5]],
        "frames_processed_per_s": {name: round(s["frames_processed"] / seconds, 1) for name, s in summary["streams"].items()},
        "frames_dropped_overload": {name: s["frames_dropped_overload"] for name, s in summary["streams"].items()},
        "frames_decoded": {name: s["frames_decoded"] for name, s in summary["streams"].items()},
        "frame_latency_s": {name: s.get("frame_latency_s") for name, s in summary["streams"].items()},
        "batching": summary.get("batching"),
        "folder": str(folder),
    }


def machine() -> dict:
    import onnxruntime

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    return {"host": socket.gethostname(), "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clip", type=Path, default=SHARED / "data" / "videos" / "liveportrait_s18.mp4")
    parser.add_argument("--fps-cap", type=float, default=None, help="fps_cap in every stream file (default: the pipeline's, 5)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "watch_memory_vm.json")
    args = parser.parse_args()
    load_start = os.getloadavg()
    runs, pairs = [], []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            lines = f"fps_cap = {args.fps_cap}\n" if args.fps_cap else ""
            these = [measure(n, args.clip.resolve(), args.seconds, Path(tmp), stream_lines=lines) for n in args.cameras]
        for r in these:
            r["repeat"] = repeat
        runs += these
        few, most = these[0], these[-1]
        if most["cameras"] > few["cameras"] and few["rss_steady_mib"] and most["rss_steady_mib"]:
            pairs.append(round((most["rss_steady_mib"] - few["rss_steady_mib"]) / (most["cameras"] - few["cameras"]), 1))
        print(f"repeat {repeat + 1}: {[(r['cameras'], r['rss_steady_mib']) for r in these]} -> {pairs[-1] if pairs else None} MiB per added camera")
    report = {
        "benchmark": "watch_memory",
        "clip": str(args.clip.name),
        "fps_cap": args.fps_cap,
        "seconds": args.seconds,
        "runs": runs,
        "rss_per_added_camera_mib": statistics.median(pairs) if pairs else None,
        "rss_per_added_camera_each_mib": pairs,
        "machine": machine(),
        "load_average_start": [round(v, 2) for v in load_start],
        "load_average_end": [round(v, 2) for v in os.getloadavg()],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("rss_per_added_camera_mib", "rss_per_added_camera_each_mib", "load_average_start")}, indent=1))


if __name__ == "__main__":
    main()
