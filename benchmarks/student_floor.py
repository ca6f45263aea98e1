"""The bundled student's own cost per face on this CPU, and where it goes (issue 12, part 3).

    python benchmarks/student_floor.py       # -> benchmarks/results/student_floor_vm.json

The pipeline's ms/face (``stats.stage_seconds["score"]`` over the faces scored,
benchmarks/bench_run.py) cannot be lower than what the model itself costs on the cores it gets.
This measures that floor with nothing else running in the process:

* ms per face of the int8 and float students, micro-batches of 8 (what the pipeline uses), with
  one and with two onnxruntime threads, best and median of ``--repeats`` passes over 64 real
  crops (frames of ../shared/data/ytf_aligned_dev resized to 112x112: the content does not change
  the cost of a convolutional network, only the shape does);
* onnxruntime's own per-operator profile of the int8 student on one thread, with its
  convolutions split into depthwise and dense (1x1 and full) ones.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchinfo import Run

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared"))
FRAMES = SHARED / "data" / "ytf_aligned_dev" / "aligned_images_DB"


def real_crops(count: int = 64) -> np.ndarray:
    from PIL import Image

    files = sorted(FRAMES.glob("*/*/*.jpg"))[:count]
    if len(files) < count:
        raise SystemExit(f"student_floor.py: needs {count} frames under {FRAMES}")
    return np.stack([np.asarray(Image.open(f).convert("RGB").resize((112, 112))) for f in files])


def ms_per_face(scorer, crops: np.ndarray, repeats: int) -> dict:
    scorer.score_and_embed(crops[:8])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        scorer.score_and_embed(crops)
        times.append((time.perf_counter() - start) / len(crops) * 1e3)
    return {"best": round(min(times), 3), "median": round(float(np.median(times)), 3)}


def operator_profile(model: Path, crops: np.ndarray, repeats: int) -> dict:
    """ms per face by operator (one thread, batches of 8), convolutions split by kind."""
    import onnx
    import onnxruntime as ort

    from vidfiqa.quality.ediffiqa import EDifFIQA

    x = EDifFIQA(onnx=model, threads=1).preprocessing(crops[:8])
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        options.optimized_model_filepath = str(Path(tmp) / "optimised.onnx")
        options.log_severity_level = 3
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        for _ in range(repeats):
            session.run(None, {"input": x})
        events = json.loads(Path(session.end_profiling()).read_text())
        groups = {}
        for node in onnx.load(options.optimized_model_filepath).graph.node:
            group = [a.i for a in node.attribute if a.name == "group"]
            groups[node.name] = group[0] if group else 1
    by_op: collections.Counter = collections.Counter()
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        op = event["args"].get("op_name", "?")
        if op in ("QLinearConv", "Conv"):
            op += " (depthwise)" if groups.get(event["name"][: -len("_kernel_time")], 1) > 1 else " (dense)"
        by_op[op] += event["dur"]  # microseconds
    faces = repeats * len(x)
    total = sum(by_op.values())
    return {"ms_per_face_total": round(total / faces / 1e3, 3),
            "by_operator_ms_per_face": {op: round(us / faces / 1e3, 3) for op, us in by_op.most_common()},
            "share": {op: round(us / total, 3) for op, us in by_op.most_common()}}


def main() -> None:
    from vidfiqa.quality.ediffiqa import BUNDLED_INT8, BUNDLED_ONNX, EDifFIQA

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "student_floor_vm.json")
    args = parser.parse_args()
    run = Run("student_floor.py", sys.argv[1:], timed=False)
    crops = real_crops()
    speed = {}
    for name, path in (("int8 (the pipeline's)", BUNDLED_INT8), ("fp32", BUNDLED_ONNX)):
        for threads in (1, 2):
            label = f"{name}, {threads} thread{'s' if threads > 1 else ''}"
            speed[label] = ms_per_face(EDifFIQA(onnx=path, threads=threads), crops, args.repeats)
            print(label, speed[label], flush=True)
    profile = operator_profile(BUNDLED_INT8, crops, 4 * args.repeats)
    print(json.dumps(profile, indent=1))
    run.write(args.out, {"crops": len(crops), "micro_batch": 8, "ms_per_face": speed, "int8_profile_1_thread": profile,
                         "target_in_pipeline_ms_per_face": 2.5})


if __name__ == "__main__":
    main()
