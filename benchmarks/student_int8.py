"""The int8 student: how much faster, and does it rank as well as the float one?  (Issue 12:
the student's cost per face inside the pipeline.)

    python benchmarks/student_int8.py        # -> benchmarks/results/student_int8_vm.json

* Quantisation: onnxruntime's static QDQ quantisation of the bundled student
  (training/quantise_student.py: int8 weights per channel, uint8 activations, calibrated on 256
  crops of *training* identities).  Two variants: every layer in int8 (written to a temporary
  folder), and the shipped ``ediffiqa_t_mfn_int8.onnx``, whose first convolution, embedding
  layers and head stay in float.
* Speed: ms per face, micro-batches of 8 (what the pipeline uses), one onnxruntime thread.
* Ranking: the development photos and degraded copies of benchmarks/front_end.py through the
  native front end; the fp32 and int8 students' quality on the same crops, their Spearman
  correlation, and EDC (normalised pAUC@0.3 at FMR 1e-2) with MobileFaceNet and dlib as
  comparators, with the paired difference over 100 draws of 80 % of the people.
"""

from __future__ import annotations

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
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "training"))
from quantise_student import quantise  # noqa: E402
from front_end import MODELS, bootstrap_pauc, degrade_photo, dev_photos, normalised_pauc, people_draws, run_front_end  # noqa: E402


def ms_per_face(scorer, crops: np.ndarray, repeats: int = 3) -> float:
    scorer.score_and_embed(crops[:8])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        scorer.score_and_embed(crops)
        best = min(best, (time.perf_counter() - start) / len(crops) * 1e3)
    return round(best, 2)


def main() -> None:
    from scipy.stats import spearmanr

    from vidfiqa.backbones.dlib_model import DlibEmbedder
    from vidfiqa.detect import make_detector
    from vidfiqa.embed import make_embedder
    from vidfiqa.eval.verification import all_pairs, comparison_scores
    from vidfiqa.imageio import load_image
    from vidfiqa.quality.ediffiqa import EDifFIQA

    run = Run("student_int8.py", sys.argv[1:])
    os.environ.setdefault("VIDFIQA_WEIGHTS", str(MODELS))
    with tempfile.TemporaryDirectory() as tmp:
        int8_path = quantise(Path(tmp) / "student_int8_all.onnx", keep_float=())
        students = {"fp32 (bundled)": EDifFIQA(threads=1), "int8": EDifFIQA(onnx=int8_path, threads=1),
                    "int8, float ends": EDifFIQA(int8=True, threads=1)}  # the shipped file
        images, person = [], []
        rng = np.random.default_rng(1)
        for path, who in dev_photos(8):
            image = load_image(path).pixels
            images += [image] + [degrade_photo(image, rng)[0] for _ in range(2)]
            person += [who] * 3
        found, crops, _, _ = run_front_end(make_detector("retinaface"), images)
        idx = np.flatnonzero(found)
        crops, people = crops[idx], np.array(person)[idx]
        ids = np.unique(people, return_inverse=True)[1]
        pairs = all_pairs(ids, max_impostors=200_000)
        speed = {name: ms_per_face(s, crops[:256]) for name, s in students.items()}
        print("ms/face", speed, flush=True)
        quality = {name: s.score(crops) for name, s in students.items()}
        embeddings = {name: s.score_and_embed(crops)[1] for name, s in students.items()}
    unit = {n: e / np.linalg.norm(e, axis=1, keepdims=True) for n, e in embeddings.items()}
    base = "fp32 (bundled)"
    agreement = {name: {"quality_spearman": round(float(spearmanr(quality[base], quality[name]).statistic), 4),
                        "embedding_cosine_mean": round(float((unit[base] * unit[name]).sum(1).mean()), 4)}
                 for name in students if name != base}
    print(agreement, flush=True)
    subsets = people_draws(ids, 100)
    mfn = make_embedder("mobilefacenet", backend="onnx")
    comparators = {"mobilefacenet": comparison_scores(mfn.embed(crops), pairs), "dlib": comparison_scores(DlibEmbedder().embed(crops), pairs, metric="euclidean")}
    edc: dict = {}
    for comparator, comparison in comparators.items():
        values, boots = {}, {}
        for name, q in quality.items():
            values[name] = normalised_pauc(comparison, pairs, q)
            boots[name] = bootstrap_pauc(comparison, pairs, ids, q, subsets)
        edc[comparator] = {n: round(v, 4) for n, v in values.items()}
        for name in students:
            if name != base:
                diff = np.array(boots[name]) - np.array(boots[base])
                edc[comparator][f"{name} minus fp32"] = {"difference": round(values[name] - values[base], 4),
                                                         "interval": [round(float(v), 4) for v in np.percentile(diff, [2.5, 97.5])]}
        print(comparator, edc[comparator], flush=True)
    run.write(HERE / "results" / "student_int8_vm.json", {"images": int(len(idx)), "people": int(len(np.unique(ids))), "ms_per_face_1_thread_batch_8": speed,
                                                          "agreement": agreement, "edc_normalised_pauc_0.3_fmr_1e-2": edc})


if __name__ == "__main__":
    main()
