"""The bundled student in int8, for the video pipeline: ``vidfiqa/models/ediffiqa_t_mfn_int8.onnx``.

    python training/quantise_student.py          # about a minute; needs ../shared/data

onnxruntime's static QDQ quantisation of ``ediffiqa_t_mfn.onnx``: int8 weights per channel,
uint8 activations, calibrated (min/max) on 256 crops of *training* identities of
glint24_aligned (``split == train`` in training/labels/candidates_v1.csv).  The first
convolution, which sees the raw pixels, and everything from the last block's output on (the
embedding layers and the quality head) stay in float: quantised too, they cost the ranking a
measurable 0.034 of pAUC; kept in float, the difference to the float model is within
+-0.0025 with either comparator, at the int8 speed (benchmarks/student_int8.py,
benchmarks/results/student_int8_vm.json).
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
LABELS = REPO / "training" / "labels" / "candidates_v1.csv"
OUT = REPO / "vidfiqa" / "models" / "ediffiqa_t_mfn_int8.onnx"

# Node-name prefixes kept in float (the first convolution; the embedding layers and the head).
FLOAT_ENDS = ("/base_model/conv1/", "/base_model/conv2/", "/base_model/gdconv/", "/base_model/conv3/", "/mlp/")
CALIBRATION_CROPS = 256


def calibration_crops(n: int = CALIBRATION_CROPS) -> np.ndarray:
    """``n`` aligned training crops (never development identities), chosen with seed 0."""
    from PIL import Image

    paths = []
    with open(LABELS, newline="") as handle:
        for row in csv.DictReader(handle):
            if row["split"] == "train" and row["key"].startswith("glint24_aligned/") and row["key"].endswith("#0"):
                paths.append(DATA / row["key"].split("#")[0])
    rng = np.random.default_rng(0)
    chosen = [paths[i] for i in sorted(rng.choice(len(paths), size=min(n, len(paths)), replace=False))]
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((112, 112))) for p in chosen])


def quantise(out: Path, keep_float: tuple[str, ...] = FLOAT_ENDS) -> Path:
    """Write the int8 student to ``out`` (with its metadata beside it); returns ``out``."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from vidfiqa.quality.ediffiqa import BUNDLED_META, BUNDLED_ONNX, EDifFIQA

    x = EDifFIQA().preprocessing(calibration_crops())

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"input": x[i:i + 8]} for i in range(0, len(x), 8)])

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(BUNDLED_ONNX), str(pre))
        excluded = [n.name for n in onnx.load(str(pre)).graph.node if n.name.startswith(keep_float)] if keep_float else []
        quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QUInt8, nodes_to_exclude=excluded)
    meta = json.loads(BUNDLED_META.read_text())
    meta["quantised"] = {"from": BUNDLED_ONNX.name, "from_sha256": hashlib.sha256(BUNDLED_ONNX.read_bytes()).hexdigest(),
                         "method": "onnxruntime quantize_static, QDQ, per-channel int8 weights, uint8 activations, min/max calibration",
                         "calibration": f"{CALIBRATION_CROPS} training crops of glint24_aligned (seed 0)",
                         "kept_in_float": list(keep_float), "script": "training/quantise_student.py"}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return out


def main() -> None:
    if not LABELS.is_file() or not (DATA / "glint24_aligned").is_dir():
        sys.exit(f"needs {LABELS} and {DATA / 'glint24_aligned'}")
    with tempfile.TemporaryDirectory() as tmp:
        made = quantise(Path(tmp) / OUT.name)
        shutil.copy(made, OUT)
        shutil.copy(made.with_suffix(".json"), OUT.with_suffix(".json"))
    print(f"-> {OUT} ({OUT.stat().st_size / 1e6:.1f} MB, sha256 {hashlib.sha256(OUT.read_bytes()).hexdigest()})")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
