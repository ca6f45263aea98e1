"""Cameras per box: how many live 720p multi-person cameras one `vidfiqa watch` keeps up with.

    python benchmarks/cameras.py [--cameras 2 4 6 8 12] [--seconds 30]   # -> results/cameras_vm.json

The camera: the street crowd at 1280x720, 25 fps, about ten people (bench_run.py's ``--crowd720``
clip), replayed live (a stream file with ``loop = true`` is paced at the clip's own frame rate)
and analysed at the default 5 frames a second (``fps_cap``).  Two encodings of it:

- ``bframes``: x264 ``veryfast`` with its default B-frames, as most files are encoded; the reader
  skips decoding the unreferenced B-frames (``skip_nonreference``, streams/README.md);
- ``camera``: the same pictures with no B-frames and a 2 s keyframe interval, as most IP cameras
  send them: every frame must be decoded.

Two more modes measure cameras as they are deployed (streams/README.md, "Two streams per
camera"): ``substream``, each camera a 640x360 substream of the same pictures (camera encode),
and ``two_streams``, the same substream analysed with the 1280x720 camera encode as its main
stream (``main_url``): the share of picks cut from the main stream and why the others were not
are reported too.  ``python benchmarks/cameras.py --modes substream two_streams --cameras 4 6 8
12 --seconds 45 --skip-decode-only --out benchmarks/results/cameras_two_streams_vm.json``.

Modes (``--modes``), each a fresh `vidfiqa watch` process running every camera for ``--seconds``
per camera count: ``unbatched`` (``--no-batch``, the default on CPUs) and ``batched`` (``--batch``:
the cameras' detector and scorer calls combined, pipeline/batching.py) on the B-frame encode,
and the same two on the camera encode (by default only ``unbatched_camera_encode``).  Reported per run: analysed frames/s per camera (the slowest and the median),
frames dropped because the analysis fell behind, the slowest camera's frame latency (arrival to
analysed; median and 95th percentile), the median event latency (a person's last detection to
the event being written, which includes ``lost_after_s``), streams per batched detector call,
and steady and peak memory (watch_memory.py's ``measure``).

Also reported: what decoding alone allows, each encode's decode-only speed as a camera reader
decodes it (one thread, frames left in YUV; B-frames skipped or not) divided by 25, i.e. how many
such cameras this box could decode at all if it did nothing else.  Results: benchmarks/results/cameras_vm.json.
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

from bench_run import crowd_720p  # noqa: E402
from benchinfo import Run  # noqa: E402
from watch_memory import measure  # noqa: E402


def event_latency(out: Path) -> float | None:
    path = out / "events.jsonl"
    latencies = [json.loads(line)["latency_s"] for line in path.read_text().splitlines()] if path.exists() else []
    return round(statistics.median(latencies), 2) if latencies else None


def camera_encode(clip: Path, out: Path) -> Path:
    """``clip``'s pictures as an IP camera sends them: no B-frames, a keyframe every 2 s."""
    import av

    with av.open(str(clip)) as src, av.open(str(out), "w") as dst:
        stream = dst.add_stream("libx264", rate=25, options={"crf": "20", "preset": "veryfast", "x264-params": "bframes=0:keyint=50"})
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        for frame in src.decode(video=0):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="yuv420p"), format="yuv420p")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out


def reader_decode(clip: Path, skip_nonreference: bool) -> float:
    """How fast a camera reader decodes the clip: one decoding thread, frames left in YUV (the
    reader's own way), unreferenced frames skipped or not; in clip frames (25 a second) per
    second of work, so that both ways compare with a camera's 25 frames a second."""
    import time

    from vidfiqa.video.pyav_source import PyAVSource

    source = PyAVSource(str(clip), threads=1)
    source.skip_nonreference(skip_nonreference)
    start, last = time.perf_counter(), 0.0
    for frame in source.pending():
        last = frame.pts
    seconds = time.perf_counter() - start
    source.close()
    return round((last + 1 / 25.0) * 25.0 / seconds, 1)


MODES = {"batched": ("bframes", ("--batch",)), "unbatched": ("bframes", ("--no-batch",)), "batched_camera_encode": ("camera", ("--batch",)),
         "unbatched_camera_encode": ("camera", ("--no-batch",)),
         # a camera's 640x360 substream alone, and the same with its 1280x720 main stream (main_url):
         # picks cut from the main stream (streams/README.md, "Two streams per camera")
         "substream": ("substream", ("--no-batch",)), "two_streams": ("substream", ("--no-batch",))}


def substream_encode(clip: Path, out: Path) -> Path:
    """``clip``'s pictures as a camera's substream: 640x360, no B-frames, a keyframe every 2 s."""
    import av

    with av.open(str(clip)) as src, av.open(str(out), "w") as dst:
        stream = dst.add_stream("libx264", rate=25, options={"crf": "23", "preset": "veryfast", "x264-params": "bframes=0:keyint=50"})
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for frame in src.decode(video=0):
            for packet in stream.encode(frame.reformat(width=640, height=360, format="yuv420p")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out


def main_stream_share(out: Path) -> dict | None:
    """Over every camera of a two-stream run: picks, those cut from the main stream, the fallbacks."""
    summary = json.loads((out / "watch_summary.json").read_text())
    cuts = [s["main_stream"] for s in summary["streams"].values() if s.get("main_stream")]
    if not cuts:
        return None
    fallbacks: dict[str, int] = {}
    for cut in cuts:
        for kind, n in cut["fallbacks"].items():
            fallbacks[kind] = fallbacks.get(kind, 0) + n
    picks, main = sum(c["picks"] for c in cuts), sum(c["from_main"] for c in cuts)
    return {"picks": picks, "from_main": main, "share": round(main / picks, 3) if picks else None, "fallbacks": fallbacks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, nargs="+", default=[2, 4, 6, 8, 12])
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=["unbatched", "batched", "unbatched_camera_encode"])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "cameras_vm.json")
    parser.add_argument("--skip-decode-only", action="store_true", help="Do not measure decode-only speeds (they take a minute).")
    args = parser.parse_args()
    run = Run("cameras.py", sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clips = {"bframes": crowd_720p(work / "street_crowd_720p_x3.mp4")}
        clips["camera"] = camera_encode(clips["bframes"], work / "street_crowd_720p_x3_camera.mp4")
        clips["substream"] = substream_encode(clips["bframes"], work / "street_crowd_360p_x3_camera.mp4")
        ways = {"bframes": (clips["bframes"], False), "bframes_skipping_nonreference": (clips["bframes"], True),
                "camera": (clips["camera"], False)}
        ways["substream"] = (clips["substream"], False)
        decodes = {} if args.skip_decode_only else {name: [reader_decode(clip, skip) for _ in range(3)] for name, (clip, skip) in ways.items()}
        rows = []
        for cameras in args.cameras:
            for mode in args.modes:
                encode, extra = MODES[mode]
                main = f'main_url = "{clips["camera"]}"\n' if mode == "two_streams" else ""
                result = measure(cameras, clips[encode], args.seconds, work, extra, tag=mode, stream_lines=main)
                rates = sorted(result["frames_processed_per_s"].values())
                latencies = [v for v in result["frame_latency_s"].values() if v and v["p50"] is not None]
                detect = (result["batching"] or {}).get("detect")
                row = {"cameras": cameras, "mode": mode, "analysed_per_s_slowest": rates[0], "analysed_per_s_median": statistics.median(rates),
                       "dropped_overload_total": sum(result["frames_dropped_overload"].values()),
                       "decoded_per_s_median": round(statistics.median(result["frames_decoded"].values()) / args.seconds, 1),
                       "frame_latency_s_slowest_camera": max(latencies, key=lambda v: v["p95"]) if latencies else None,
                       "event_latency_s_median": event_latency(Path(result["folder"]) / "out"),
                       "streams_per_detect_call": round(detect["requests"] / detect["calls"], 2) if detect else None,
                       "rss_steady_mib": result["rss_steady_mib"], "rss_peak_mib": result["rss_peak_mib"], "exit_code": result["exit_code"],
                       "rss_steady_mib_per_camera": round(result["rss_steady_mib"] / cameras, 1) if result["rss_steady_mib"] else None,
                       "main_stream": main_stream_share(Path(result["folder"]) / "out")}
                rows.append(row)
                print(row, flush=True)
    decode = {name: statistics.median(runs) for name, runs in decodes.items()}
    run.write(args.out, {"clip": "street crowd, 1280x720, 25 fps, replayed live; analysed at fps_cap 5", "seconds": args.seconds,
                         "decode_only_frames_per_s": decode, "decode_only_runs": decodes,
                         "cameras_decodable_at_25_fps": {name: round(v / 25.0, 1) for name, v in decode.items()}, "runs": rows})


if __name__ == "__main__":
    main()
