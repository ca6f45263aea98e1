"""Detector ms/frame and embedding ms/face on this machine.

    python benchmarks/bench_faces.py [--video ../shared/data/videos/liveportrait_s18.mp4]

Frames come from a real 1280x720 clip (and the same frames resized to 640x360); embeddings are
timed on real aligned crops from those frames.  Weights: MobileFaceNet from $VIDFIQA_WEIGHTS
(default ../shared/models).  Results: benchmarks/results/faces_<host>.json (machine, load average
at start and end, every row) and the markdown tables README shows, printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
SHARED = Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared"))


def read_frames(path: Path, count: int) -> list[np.ndarray]:
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= count:
                break
    return frames


def timed(fn, repeats: int) -> float:
    """Median seconds per call after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SHARED / "data/videos/liveportrait_s18.mp4")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "results" / f"faces_{platform.node() or 'host'}.json")
    args = parser.parse_args()
    from benchinfo import Run, load_note

    run = Run("bench_faces.py", sys.argv[1:])
    os.environ.setdefault("VIDFIQA_WEIGHTS", str(SHARED / "models"))

    from vidfiqa.align import Aligner
    from vidfiqa.detect import RetinaFaceDetector, YuNetDetector
    from vidfiqa.embed import make_embedder

    frames720 = read_frames(args.video, args.frames)
    assert frames720[0].shape[:2] == (720, 1280), f"{args.video} is not 1280x720"
    frames360 = [cv2.resize(f, (640, 360), interpolation=cv2.INTER_AREA) for f in frames720]
    rows = []
    retina = RetinaFaceDetector(input_size=640)
    for _ in range(3):  # onnxruntime sizes its arenas and thread pool on the first calls
        retina.detect(frames360)
    for label, frames in (("640x360", frames360), ("1280x720", frames720)):
        per_frame = timed(lambda frames=frames: [retina.detect([f]) for f in frames], args.repeats) / len(frames)
        batched = timed(lambda frames=frames: retina.detect(frames), args.repeats) / len(frames)
        rows.append(("RetinaFace-MNet0.25 (input 640), 1 frame/call", label, per_frame * 1e3))
        rows.append((f"RetinaFace-MNet0.25 (input 640), {len(frames)} frames/call", label, batched * 1e3))
        yunet_path = SHARED / "models/face_detection_yunet_2026may.onnx"
        if yunet_path.exists():
            yunet = YuNetDetector(yunet_path, input_size=640)
            rows.append(("YuNet (input 640)", label, timed(lambda frames=frames, yunet=yunet: [yunet.detect([f]) for f in frames], args.repeats) / len(frames) * 1e3))

    faces = retina.detect(frames720)
    crops = Aligner()(faces, dict(enumerate(frames720))).crops
    crops = np.concatenate([crops] * (64 // len(crops) + 1))[:64]
    emb_rows = []
    for backend in ("torch", "onnx"):
        embedder = make_embedder("mobilefacenet", backend=backend, batch_size=64)
        for batch in (1, 8, 64):
            sec = timed(lambda embedder=embedder, batch=batch: embedder.embed(crops[:batch]), args.repeats) / batch
            emb_rows.append((f"MobileFaceNet ({backend})", batch, sec * 1e3))

    data = run.write(args.out, {
        "clip": args.video.name, "frames": len(frames720), "repeats": args.repeats,
        "timing": "median over --repeats calls after one warm-up call (RetinaFace: 3 more warm-up calls first)",
        "detectors": [{"detector": name, "frame_size": size, "ms_per_frame": round(ms, 3)} for name, size, ms in rows],
        "embedders": [{"embedder": name, "batch": batch, "ms_per_face": round(ms, 3)} for name, batch, ms in emb_rows],
    })
    m = data["machine"]
    print(f"machine: {m['cpu_model']}, {m['cpu_count']} cores; torch {m.get('torch')} ({m.get('torch_threads')} threads), "
          f"onnxruntime {m.get('onnxruntime')}; clip {args.video.name}; {load_note(data)}")
    print("\n| detector | frame size | ms/frame |\n|---|---|---|")
    for name, size, ms in rows:
        print(f"| {name} | {size} | {ms:.1f} |")
    print("\n| embedder | batch | ms/face |\n|---|---|---|")
    for name, batch, ms in emb_rows:
        print(f"| {name} | {batch} | {ms:.2f} |")


if __name__ == "__main__":
    main()
