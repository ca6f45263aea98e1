"""What eDifFIQA(S) would cost per face here, before it is trained (issue 25, part 5).

    python benchmarks/student_s_cost.py       # -> benchmarks/results/student_s_cost_vm.json

The S variant (iresnet18 backbone, 512-d embedding, the same MLP head) against the shipped T
(MobileFaceNet, 128-d): both exported to ONNX the way `vidfiqa train ediffiqa` exports a student
and run by the same scorer the pipeline uses, float, micro-batches of 8, one and two onnxruntime
threads, best and median of ``--repeats`` passes over 64 real crops.  Untrained weights: the cost
of a convolutional network depends on its shapes, not on its weights.  A timing benchmark: it
refuses to start on a busy machine (benchinfo.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchinfo import Run
from student_floor import ms_per_face, real_crops

HERE = Path(__file__).resolve().parent


def main() -> None:
    import torch

    from vidfiqa.quality.ediffiqa import BUNDLED_ONNX, EDifFIQA, build_model, export_onnx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "student_s_cost_vm.json")
    args = parser.parse_args()
    run = Run("student_s_cost.py", sys.argv[1:])
    crops = real_crops()
    torch.manual_seed(0)
    speed, size = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        s_onnx = export_onnx(build_model("S").eval(), Path(tmp) / "ediffiqa_s.onnx")
        for name, path in (("T (shipped, MobileFaceNet), fp32", BUNDLED_ONNX), ("S (iresnet18, untrained), fp32", s_onnx)):
            size[name] = round(Path(path).stat().st_size / 1e6, 1)
            for threads in (1, 2):
                label = f"{name}, {threads} thread{'s' if threads > 1 else ''}"
                speed[label] = ms_per_face(EDifFIQA(onnx=path, threads=threads), crops, args.repeats)
                print(label, speed[label], flush=True)
    run.write(args.out, {"crops": len(crops), "micro_batch": 8, "ms_per_face": speed, "onnx_mb": size})


if __name__ == "__main__":
    main()
