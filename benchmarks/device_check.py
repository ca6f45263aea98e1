"""The GPU check: how many 1080p30 streams one GPU analyses, and the student's faces/s at batch 256.

    benchmarks/device_check.sh            # on the GPU machine (it installs what travels with it)
    python benchmarks/device_check.py --device cpu --seconds 3 --streams 1 2   # a dry run anywhere

Written for a machine with PyTorch and CUDA and no network, where onnxruntime has no CUDA
provider: the detector and the student run through PyTorch there (vidfiqa/onnx_torch.py; on the
CPU here they are checked against onnxruntime, tests/backbones/test_onnx_torch.py), and frames are
decoded by OpenCV (PyAV need not be installed).  Measured, into one JSON file:

* ``student``: faces/s of the student at batch 256 on real aligned crops, the model alone (crops
  already on the GPU) in float32 and float16, and through ``EDifFIQA`` (uint8 crops from host
  memory, as the pipeline gives them);
* ``streams``: N streams at once, each a thread running vidfiqa's own per-frame loop
  (``TrackProcessor``: detection, tracking, alignment, scoring, selection) over the 1080p clip's
  frames (decoded once, replayed from memory), every frame analysed, their detector and scorer calls
  batched across streams (``BatchedModels``, as `vidfiqa watch` does on a GPU); analysed frames/s in
  total, and so 1080p30 streams per GPU with every frame analysed and at the default 5 analysed
  frames a second;
* ``decode``: OpenCV's 1080p decoding rate per CPU thread, to say how many streams the CPUs
  could decode for it.

The figures are the machine's: the JSON names the GPU, the CPU count and the versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))


def decode_clip(path: Path, limit: int) -> tuple[list[np.ndarray], float, float]:
    """The clip's frames (RGB), its frame rate, and OpenCV's decoding rate in frames/s (one thread)."""
    import cv2

    cv2.setNumThreads(1)
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SystemExit(f"device_check: cannot open {path} with OpenCV")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames, started = [], time.perf_counter()
    while len(frames) < limit:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    rate = len(frames) / (time.perf_counter() - started)
    capture.release()
    return frames, float(fps), rate


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def student_rates(crops: np.ndarray, device: str, seconds: float) -> dict:
    """Faces/s of the student at batch 256 (module docstring)."""
    import torch

    from vidfiqa.onnx_torch import OnnxTorch
    from vidfiqa.quality.ediffiqa import BUNDLED_ONNX, EDifFIQA

    batch = np.resize(crops, (256, *crops.shape[1:]))  # real crops, repeated to 256
    out: dict = {}
    student = EDifFIQA(device=device, batch_size=256)
    x = student.preprocessing(batch)
    for name, half in (("model_float32", False), ("model_float16", True)):
        if half and not device.startswith("cuda"):
            continue
        graph = OnnxTorch(BUNDLED_ONNX, device=device, half=half)
        tensor = torch.from_numpy(x).to(device, torch.float16 if half else torch.float32)
        graph(tensor)
        synchronize(device)
        runs, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            graph(tensor)
            runs += 1
        synchronize(device)
        out[name] = round(runs * 256 / (time.perf_counter() - started), 1)
    student.score_and_embed(batch)
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        student.score_and_embed(batch)
        runs += 1
    out["through_EDifFIQA_uint8_from_host"] = round(runs * 256 / (time.perf_counter() - started), 1)
    out["session"] = student.session.get_providers()[0]
    return out


def stream_rate(frames: list[np.ndarray], fps: float, streams: int, seconds: float, device: str) -> dict:
    """``streams`` threads, each vidfiqa's per-frame loop over the frames, models shared and batched."""
    from vidfiqa.pipeline import make_settings
    from vidfiqa.pipeline.batching import BatchedModels
    from vidfiqa.pipeline.models import Models
    from vidfiqa.pipeline.processor import TrackProcessor
    from vidfiqa.video.source import Frame

    settings = make_settings(None, device=device, fps_cap=0, batch_size=64)
    models = Models.build(settings)
    batched = BatchedModels.wrap(models, max_wait_s=0.005, max_frames=max(1, min(32, streams)), max_faces=256)
    counts = [0] * streams
    tracks = [0] * streams
    stop = threading.Event()
    errors: list[str] = []

    def one(k: int) -> None:
        batched.register()
        try:
            def on_track(result) -> None:
                tracks[k] += 1

            processor = TrackProcessor(batched.models, settings, on_track, step_s=1 / fps, fps=fps)
            index = 0
            while not stop.is_set():
                image = frames[index % len(frames)]
                processor.process(Frame(index=index, pts=index / fps, image=image))
                index += 1
                counts[k] = index
            processor.finish("end_of_input")
        except Exception as err:  # reported in the JSON, not lost in a thread
            errors.append(f"{type(err).__name__}: {err}")
        finally:
            batched.unregister()

    threads = [threading.Thread(target=one, args=(k,), daemon=True) for k in range(streams)]
    for thread in threads:
        thread.start()
    time.sleep(min(5.0, seconds / 3))  # warm-up: kernels chosen, first batches formed
    first, started = sum(counts), time.perf_counter()
    time.sleep(seconds)
    done, elapsed = sum(counts) - first, time.perf_counter() - started
    stop.set()
    for thread in threads:
        thread.join(60)
    batched.close()
    rate = done / elapsed
    return {"streams": streams, "analysed_frames_per_s": round(rate, 1), "per_stream": round(rate / streams, 1),
            "tracks_emitted": sum(tracks), "errors": errors[:3],
            "streams_at_30_fps_every_frame": round(rate / 30.0, 1), "streams_at_5_analysed_per_s": round(rate / 5.0, 1),
            "detector_session": detector_session(models)}


def detector_session(models) -> str | None:
    """What runs the detector: onnxruntime's provider, or PyTorch on a device."""
    detector = getattr(models.detector, "_model", models.detector)  # Serialized
    detector = getattr(detector, "first", detector)  # SmallFaceSearch: its whole-frame detector
    session = getattr(detector, "session", None)
    return session.get_providers()[0] if session is not None else None


def machine(device: str) -> dict:
    info: dict = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    try:
        import torch

        info["torch"] = torch.__version__
        if device.startswith("cuda") and torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            info["gpu"] = props.name
            info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
    except ImportError:
        pass
    for name in ("onnxruntime", "cv2", "numpy"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = None
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=REPO.parent / "shared" / "data" / "videos" / "facenetpytorch_street_crowd.mp4",
                        help="A 1080p multi-person clip (default: ../shared's street crowd, 1920x1080).")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    parser.add_argument("--seconds", type=float, default=20.0, help="Measured seconds per stream count (after a warm-up).")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "device_check.json")
    args = parser.parse_args()
    started = time.perf_counter()
    result: dict = {"script": "benchmarks/device_check.py", "command": " ".join(sys.argv), "machine": machine(args.device)}
    frames, fps, decode_rate = decode_clip(args.clip, limit=150)
    height, width = frames[0].shape[:2]
    result["clip"] = {"path": args.clip.name, "size": [width, height], "fps": fps, "frames": len(frames)}
    result["decode"] = {"opencv_frames_per_s_one_thread": round(decode_rate, 1),
                        "streams_at_30_fps_decodable_by_all_cpus": round(decode_rate * (os.cpu_count() or 1) / 30.0, 1)}

    from vidfiqa.align import Aligner
    from vidfiqa.detect import RetinaFaceDetector

    detector = RetinaFaceDetector(device=args.device)
    faces = detector.detect(frames[:10])
    crops = Aligner()(faces, frames[:10]).crops
    assert crops is not None and len(crops), "no face found in the clip"
    result["student"] = student_rates(crops, args.device, seconds=min(10.0, args.seconds))
    print(json.dumps(result["student"]), flush=True)
    result["streams"] = []
    for n in args.streams:
        row = stream_rate(frames, fps, n, args.seconds, args.device)
        result["streams"].append(row)
        print(json.dumps(row), flush=True)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
