"""Do two versions of vidfiqa give the same galleries and events?  For refactors that promise no change.

    python benchmarks/manifest_equivalence.py [--baseline 9c041fc] [--against COMMIT] [--inputs samples/astronaut.mp4 ...]
                                              [--all-shared] [--configs default fast] [--events]

Checks out ``--baseline`` (a commit) into a temporary git worktree, runs `vidfiqa run` of that
version and of this working tree (or of ``--against``, another commit) on every input with every preset, and compares the manifests
field by field - apart from what must differ (creation time, version, elapsed times, speeds,
stage times, settings that the newer version added) - and every crop, context image and series
file byte for byte.  ``--all-shared``: every clip of ../shared/data/videos and
../shared/data/edited_videos, and the bundled sample.

``--events`` also compares `vidfiqa watch`'s events of each input, made deterministic: each
version's own watch path (its stream worker's end of track, its event sinks) is fed the tracks of
the file as `vidfiqa run` analyses it (video time, not arrival time: a live camera's frames and
batches depend on the machine's speed), with the wall clock frozen, so ``events.jsonl``, every
``event.json`` and every event image must be byte-identical.

Writes benchmarks/results/manifest_equivalence.json; exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared"))
DEFAULT_INPUTS = [REPO / "samples" / "astronaut.mp4", SHARED / "data" / "videos" / "liveportrait_s18.mp4",
                  SHARED / "data" / "edited_videos" / "azurevi_friends_cuts.mp4"]
VOLATILE_STATS = ("elapsed_s", "frames_per_s", "input_frames_per_s", "stage_seconds")

# Run inside a version's tree (python -c DRIVER SOURCE OUT CONFIG): that version's watch path
# turns the file's tracks into events.  Written against both the old API (EventWriter, a worker
# with its own outbox) and the new one (sinks, SinkOutbox), whichever the tree has.
EVENTS_DRIVER = r"""
import sys, threading, time
time.time = lambda: 1.8e9  # every wall clock of the event path: ids, wall times, latencies
source, out, config = sys.argv[1:4]
from pathlib import Path
from vidfiqa.live.config import StreamConfig
from vidfiqa.live.metrics import Metrics
from vidfiqa.live.stream import FrameQueue, StreamWorker
from vidfiqa.pipeline import make_settings
from vidfiqa.pipeline.models import Models
from vidfiqa.pipeline.processor import TrackProcessor
from vidfiqa.video import open_source

s = make_settings(config)
cfg = StreamConfig(name="cam", url=source, settings=s)
metrics, log, stop = Metrics(), (lambda *a, **k: None), threading.Event()
models = Models.build(s)
try:
    from vidfiqa.sinks import WatchOutputs, close_all, watch_sinks
    from vidfiqa.sinks.outbox import EventNamer, SinkOutbox
    sinks = watch_sinks(out, WatchOutputs(), metrics, log)
    outbox = SinkOutbox("cam", sinks, metrics, log, EventNamer(out))
    worker = StreamWorker(cfg, FrameQueue(1), models, outbox, metrics, stop, log)
    def done():
        outbox.close()
        close_all(sinks)
except ImportError:
    from vidfiqa.live.events import EventWriter, Retention
    worker = StreamWorker(cfg, FrameQueue(1), models, EventWriter(Path(out), Retention(), metrics), metrics, stop, log)
    def done():
        worker.outbox.close()
video = open_source(source, decoder=s.decoder, stride=s.stride, fps=s.fps, threads=s.decode_threads, video_stream=s.video_stream)
fps = video.info.fps or s.fps or 25.0
stride = video.stride = s.stride_for(video.info.fps or s.fps)
if stride > 1 and s.scene_cut > 0 and hasattr(video, "thumbnails"):
    video.thumbnails = True
processor = TrackProcessor(models, s, worker._on_track, step_s=stride / fps, fps=fps, video_clock=True)
for frame in video:
    processor.process(frame)
processor.finish("shutdown")
video.close()
done()
"""


def comparable(manifest: dict[str, Any], settings_known: set[str]) -> dict[str, Any]:
    m = dict(manifest)
    for key in ("created", "vidfiqa_version"):
        m.pop(key, None)
    m["stats"] = {k: v for k, v in m.get("stats", {}).items() if k not in VOLATILE_STATS}
    m["settings"] = {k: v for k, v in m.get("settings", {}).items() if k in settings_known}
    return m


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    if type(a) is not type(b):
        return [f"{path}: {a!r} vs {b!r}"]
    if isinstance(a, dict):
        out = [f"{path}.{k}: only in one" for k in sorted(set(a) ^ set(b))]
        for k in sorted(set(a) & set(b)):
            out += differences(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def run(python_path: Path, source: Path, out: Path, config: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(python_path)}
    subprocess.run([sys.executable, "-m", "vidfiqa", "run", str(source), "-o", str(out), "--config", config],
                   cwd=python_path, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return json.loads((out / "manifest.json").read_text())


def run_events(python_path: Path, source: Path, out: Path, config: str) -> list[dict[str, Any]]:
    """The events this tree's watch path makes of ``source`` (see EVENTS_DRIVER)."""
    env = {**os.environ, "PYTHONPATH": str(python_path)}
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", EVENTS_DRIVER, str(source), str(out), config], cwd=python_path, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = out / "events.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []


def file_differences(a: Path, b: Path) -> list[str]:
    out = []
    names = {p.relative_to(a) for p in a.rglob("*") if p.is_file()} | {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    for name in sorted(names):
        if name.name in ("manifest.json", "index.html", "track.json", "events.jsonl"):
            continue  # compared as data above (they hold times and versions)
        pa, pb = a / name, b / name
        if not (pa.is_file() and pb.is_file()):
            out.append(f"{name}: only in one")
        elif pa.read_bytes() != pb.read_bytes():
            out.append(f"{name}: contents differ")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="9c041fc", help="commit to compare with (default: before the reshape)")
    parser.add_argument("--inputs", type=Path, nargs="+", default=DEFAULT_INPUTS)
    parser.add_argument("--against", default=None, help="commit to compare (default: this working tree)")
    parser.add_argument("--all-shared", action="store_true", help="every shared clip (videos and edited_videos) and the sample")
    parser.add_argument("--configs", nargs="+", default=["default", "fast"])
    parser.add_argument("--events", action="store_true", help="compare the events of `vidfiqa watch`'s path too (see the docstring)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "manifest_equivalence.json")
    args = parser.parse_args()
    if args.all_shared:
        args.inputs = [REPO / "samples" / "astronaut.mp4", *sorted((SHARED / "data" / "videos").glob("*.*")),
                       *sorted((SHARED / "data" / "edited_videos").glob("*.mp4"))]
    commit = subprocess.run(["git", "rev-parse", "--short", args.baseline], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", args.against or "HEAD"], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()
    report: dict[str, Any] = {"baseline": commit, "against": head if args.against else f"working tree at {head}", "cases": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        old = work / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), commit], cwd=REPO, check=True, capture_output=True)
        new = REPO
        if args.against:
            new = work / "against"
            subprocess.run(["git", "worktree", "add", "--detach", str(new), head], cwd=REPO, check=True, capture_output=True)
        try:
            for source in args.inputs:
                for config in args.configs:
                    name = f"{source.stem}-{config}"
                    before = run(old, source.resolve(), work / f"{name}-before", config)
                    after = run(new, source.resolve(), work / f"{name}-after", config)
                    known = set(before.get("settings", {}))
                    found = differences(comparable(before, known), comparable(after, known))
                    found += file_differences(work / f"{name}-before", work / f"{name}-after")
                    case = {"input": source.name, "config": config, "tracks": len(after["tracks"]), "persons": len(after["persons"]),
                            "selected": sum(len(t["selected"]) for t in after["tracks"]), "differences": found[:50]}
                    if args.events:
                        events_before = run_events(old, source.resolve(), work / f"{name}-events-before", config)
                        events_after = run_events(new, source.resolve(), work / f"{name}-events-after", config)
                        event_diffs = differences(events_before, events_after, "events")
                        event_diffs += file_differences(work / f"{name}-events-before", work / f"{name}-events-after")
                        case.update(events=len(events_after), event_differences=event_diffs[:50])
                        found += event_diffs
                    report["cases"].append(case)
                    print(f"{name}: {len(after['tracks'])} tracks, {case.get('events', '-')} events, {len(found)} differences", flush=True)
        finally:
            for tree in {old, new} - {REPO}:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False, capture_output=True)
    report["identical"] = all(not case["differences"] and not case.get("event_differences") for case in report["cases"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if report["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
