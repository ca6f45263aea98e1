"""Soak test of `vidfiqa watch`: two live RTSP cameras for several minutes.

    python benchmarks/soak_watch.py [--minutes 5] [--clip ../shared/data/videos/liveportrait_s18.mp4]

Two GStreamer RTSP servers (tests/support/rtsp_server.py, run by /usr/bin/python3 with
python3-gi and gir1.2-gst-rtsp-server-1.0) play a "visit": the clip (a person) followed by 2 s
without anyone, over and over, at live speed.  The watcher runs in this process with the default
pipeline settings.  Reported: frames decoded / analysed / dropped per second per stream,
reconnects, events, event latency (seconds from a person's last detection to the event being
written: the track must first be missing for lost_after_s), and this process's memory (RSS) at
the start (after 30 s) and end, and its peak.  Results: benchmarks/results/soak_<host>.json, with
the machine (CPU model, versions) and the load average at start and end.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_visits(clip: Path, out: Path, minutes: float) -> Path:
    """clip + 2 s of empty background, encoded once, then stream-copied enough times."""
    import av
    import cv2

    from bench_run import repeated_clip

    unit = out.with_name("visit.mp4")
    with av.open(str(clip)) as src:
        rate = src.streams.video[0].average_rate
        frames = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
    empty = cv2.GaussianBlur(frames[0], (0, 0), 60)
    fps = int(round(float(rate)))
    with av.open(str(unit), "w") as dst:
        stream = dst.add_stream("libx264", rate=fps, options={"preset": "veryfast", "crf": "23", "g": str(fps)})
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for image in frames + [empty] * (2 * fps):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    unit_s = (len(frames) + 2 * fps) / fps
    return repeated_clip(unit, int(minutes * 60 / unit_s) + 3, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--clip", type=Path, default=REPO.parent / "shared" / "data" / "videos" / "liveportrait_s18.mp4")
    parser.add_argument("--config", default=None, help="pipeline preset for both streams")
    parser.add_argument("--out", type=Path, default=HERE / "results" / f"soak_{platform.node() or 'host'}.json")
    args = parser.parse_args()
    from benchinfo import Run

    run = Run("soak_watch.py", sys.argv[1:])

    from vidfiqa.live.config import load_stream
    from vidfiqa.sinks import WatchOutputs
    from vidfiqa.live.watch import Logger, Watcher

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        visits = make_visits(args.clip, tmp / "visits.mp4", args.minutes)
        servers, configs = [], []
        for name in ("cam1", "cam2"):
            port = free_port()
            process = subprocess.Popen(["/usr/bin/python3", str(REPO / "tests" / "support" / "rtsp_server.py"), str(visits), str(port)],
                                       stdout=subprocess.PIPE, text=True)
            assert process.stdout.readline().strip() == "ready"
            servers.append(process)
            toml = tmp / f"{name}.toml"
            toml.write_text(f'[stream]\nname = "{name}"\nurl = "rtsp://127.0.0.1:{port}/cam"\n')
            configs.append(load_stream(toml, args.config))
        log_file = open(tmp / "watch.log", "w")
        watcher = Watcher(configs, tmp / "out", WatchOutputs(), log=Logger("json", stream=log_file))
        memory: list[tuple[float, float]] = []
        started = time.monotonic()

        def sample_memory():
            while not watcher.stop.is_set():
                memory.append((time.monotonic() - started, rss_mib()))
                watcher.stop.wait(5)

        threading.Thread(target=sample_memory, daemon=True).start()
        try:
            summary = watcher.run(args.minutes * 60)
        finally:
            for process in servers:
                process.kill()
            log_file.close()
        seconds = time.monotonic() - started
        events = [json.loads(line) for line in (tmp / "out" / "events.jsonl").read_text().splitlines()]

    latencies = sorted(e["latency_s"] for e in events if e["ended"] == "lost")
    start_rss = next((r for t, r in memory if t >= 30), memory[0][1])
    result = {
        "clip": args.clip.name, "config": args.config or "default", "seconds": round(seconds, 1),
        "streams": {
            name: {**s, "decoded_per_s": round(s["frames_decoded"] / seconds, 2), "analysed_per_s": round(s["frames_processed"] / seconds, 2)}
            for name, s in summary["streams"].items()
        },
        "events": len(events),
        "event_latency_s": {"median": latencies[len(latencies) // 2], "max": latencies[-1], "n": len(latencies)} if latencies else None,
        "rss_mib": {"at_30s": round(start_rss, 1), "end": round(memory[-1][1], 1), "peak": round(max(r for _, r in memory), 1),
                    "samples": [(round(t), round(r, 1)) for t, r in memory]},
    }
    run.write(args.out, result)
    for name, s in result["streams"].items():
        print(f"{name}: decoded {s['decoded_per_s']}/s, analysed {s['analysed_per_s']}/s, dropped {s['frames_dropped_overload']}, "
              f"reconnects {s['reconnects']}, events {s['events']}")
    print(f"event latency after a person leaves: {result['event_latency_s']}")
    print(f"RSS MiB: at 30 s {result['rss_mib']['at_30s']}, end {result['rss_mib']['end']}, peak {result['rss_mib']['peak']}")


if __name__ == "__main__":
    main()
