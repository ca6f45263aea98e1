"""Where RetinaFace's time goes on this CPU, and what the cheaper variants cost in faces.

    python benchmarks/detector_cost.py        # -> results/detector_cost_vm.json (a quiet machine: load <= 0.5)

The frames: every 5th frame of the street crowd at 1280x720 (about ten people, small faces) and of
the Friends excerpt (640x360, a camera substream's size), decoded once.  For each variant, per
frame: the time to prepare the input (resize, mean, layout), to run the network and to decode its
output (anchors, NMS), median of 3 passes; and against the float model at input 640 on the same
frames: the faces it finds (recall of the float model's faces at IoU 0.5, and faces the float model
did not find), and the landmark error of the faces both find (mean distance over the box width).

Variants: the float model as shipped (opset 11) and converted to opset 13 (what quantisation
needs); static int8 quantisation (QDQ, per-channel weights, activations calibrated with MinMax on
frames of other clips: data/videos minus the two measured), at 1 and 2 onnxruntime threads; and
the float model at input 512 and 480 (720p only: the substream is searched at its own size).
onnxruntime's own profile (one pass, 2 threads) says which operators the time goes to.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchinfo import Run  # noqa: E402

SHARED = HERE.parent.parent / "shared" / "data"
CROWD = SHARED / "videos" / "facenetpytorch_street_crowd.mp4"
FRIENDS = SHARED / "edited_videos" / "azurevi_friends_cuts.mp4"


def frames_of(path: Path, every: int, size: tuple[int, int] | None, limit: int) -> list[np.ndarray]:
    import av

    out = []
    with av.open(str(path)) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k % every == 0:
                out.append(frame.to_ndarray(format="rgb24") if size is None else frame.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray())
            if len(out) >= limit:
                break
    return out


def quantised(work: Path, calibration: list[np.ndarray], prepare) -> Path:
    """The detector as static int8 (QDQ, per-channel), calibrated on ``calibration`` frames."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from retinaface.weights import WEIGHTS

    opset13 = work / "retinaface_opset13.onnx"
    onnx.save(version_converter.convert_version(onnx.load_from_string(WEIGHTS), 13), opset13)
    pre = work / "retinaface_pre.onnx"
    quant_pre_process(str(opset13), str(pre))
    canvases = [prepare(f)[0] for f in calibration]

    class Frames(CalibrationDataReader):
        def __init__(self):
            self.items = iter(canvases)

        def get_next(self):
            canvas = next(self.items, None)
            return None if canvas is None else {"input": canvas[None]}

    out = work / "retinaface_int8.onnx"
    quantize_static(str(pre), str(out), Frames(), quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
                    activation_type=QuantType.QUInt8, calibrate_method=CalibrationMethod.MinMax)
    return out


def timed(detector, frames: list[np.ndarray]) -> dict:
    """Median over 3 passes of the per-frame milliseconds of each step, and the faces found."""
    from vidfiqa.detect.retinaface import anchors_for

    passes = []
    found = []
    for _ in range(3):
        steps = {"prepare": 0.0, "network": 0.0, "decode": 0.0}
        found = []
        for frame in frames:
            a = time.perf_counter()
            canvas, factor = detector._prepare(frame)
            b = time.perf_counter()
            loc, conf, landm = detector.session.run(None, {detector.input_name: canvas[None]})
            c = time.perf_counter()
            found.append(detector._postprocess(loc[0], conf[0, :, 1], landm[0], anchors_for(*canvas.shape[1:]), (canvas.shape[2], canvas.shape[1]),
                                               factor, frame.shape))
            d = time.perf_counter()
            steps["prepare"] += b - a
            steps["network"] += c - b
            steps["decode"] += d - c
        passes.append({k: v / len(frames) * 1000 for k, v in steps.items()})
    median = {k: round(statistics.median(p[k] for p in passes), 2) for k in passes[0]}
    median["total"] = round(sum(median.values()), 2)
    return {"ms_per_frame": median, "found": found}


def agreement(reference: list, found: list) -> dict:
    """Recall of the reference's faces (IoU >= 0.5), faces the reference lacks, landmark error."""
    from vidfiqa.boxes import iou_matrix

    matched = total = extra = 0
    errors = []
    for (ref_boxes, ref_points, _), (boxes, points, _) in zip(reference, found):
        total += len(ref_boxes)
        if not len(ref_boxes) or not len(boxes):
            extra += len(boxes)
            continue
        iou = iou_matrix(ref_boxes, boxes)
        used = set()
        for i in np.argsort(-iou.max(axis=1)):
            j = int(np.argmax(iou[i]))
            if iou[i, j] >= 0.5 and j not in used:
                used.add(j)
                matched += 1
                width = max(float(ref_boxes[i, 2] - ref_boxes[i, 0]), 1.0)
                errors.append(float(np.linalg.norm(points[j] - ref_points[i], axis=1).mean() / width))
        extra += len(boxes) - len(used)
    return {"reference_faces": total, "recall": round(matched / total, 4) if total else None, "faces_not_in_reference": extra,
            "landmark_error_mean": round(float(np.mean(errors)), 4) if errors else None,
            "landmark_error_p95": round(float(np.quantile(errors, 0.95)), 4) if errors else None}


def op_profile(model_path: Path | bytes, frames: list[np.ndarray], prepare, work: Path) -> dict[str, float]:
    """Share of the network's time per operator type (onnxruntime's profiler, 2 threads)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(work / "profile")
    options.intra_op_num_threads = 2
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(model_path if isinstance(model_path, bytes) else str(model_path), options, providers=["CPUExecutionProvider"])
    for frame in frames:
        session.run(None, {session.get_inputs()[0].name: prepare(frame)[0][None]})
    events = json.loads(Path(session.end_profiling()).read_text())
    by_op: dict[str, float] = {}
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            op = event.get("args", {}).get("op_name", "?")
            by_op[op] = by_op.get(op, 0.0) + event.get("dur", 0)
    total = sum(by_op.values()) or 1.0
    return {op: round(us / total, 3) for op, us in sorted(by_op.items(), key=lambda kv: -kv[1])[:8]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20, help="Frames per clip.")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "detector_cost_vm.json")
    args = parser.parse_args()
    run = Run("detector_cost.py", sys.argv[1:])

    from retinaface.weights import WEIGHTS

    from vidfiqa.detect import RetinaFaceDetector
    from vidfiqa.onnx_session import make_session

    clips = {"street_crowd_720p": frames_of(CROWD, 5, (1280, 720), args.frames), "friends_640x360": frames_of(FRIENDS, 5, None, args.frames)}
    others = [p for p in sorted(glob.glob(str(SHARED / "videos" / "*.mp4"))) if Path(p) != CROWD]
    calibration = [f for p in others for f in frames_of(Path(p), 15, None, 8)]
    results: dict = {"clips": {name: {"frames": len(f), "size": [f[0].shape[1], f[0].shape[0]]} for name, f in clips.items()},
                     "calibration_frames": len(calibration), "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = RetinaFaceDetector(threads=2)
        int8 = quantised(work, calibration, base._prepare)
        opset13 = work / "retinaface_opset13.onnx"
        variants = {"float, opset 11 (shipped), 2 threads": (WEIGHTS, 2, 640), "float, opset 11, 1 thread": (WEIGHTS, 1, 640),
                    "float, opset 13, 2 threads": (opset13, 2, 640), "int8 QDQ, 2 threads": (int8, 2, 640), "int8 QDQ, 1 thread": (int8, 1, 640),
                    "float, input 512, 2 threads": (WEIGHTS, 2, 512), "float, input 480, 2 threads": (WEIGHTS, 2, 480)}
        reference: dict[str, list] = {}
        for name, (model, threads, size) in variants.items():
            detector = RetinaFaceDetector(threads=threads, input_size=size)
            detector.session = make_session(model, threads=threads)
            row: dict = {}
            for clip, frames in clips.items():
                if size != 640 and frames[0].shape[1] <= 640:
                    continue  # a substream is searched at its own size
                measured = timed(detector, frames)
                reference.setdefault(clip, measured["found"])
                row[clip] = {"ms_per_frame": measured["ms_per_frame"], "against_float_640": agreement(reference[clip], measured["found"])}
            results["variants"][name] = row
            print(name, json.dumps({c: v["ms_per_frame"]["total"] for c, v in row.items()}), flush=True)
        results["operators_float_share_of_network_time"] = op_profile(WEIGHTS, clips["street_crowd_720p"], base._prepare, work)
        results["operators_int8_share_of_network_time"] = op_profile(int8, clips["street_crowd_720p"], base._prepare, work)
    run.write(args.out, results)


if __name__ == "__main__":
    main()
