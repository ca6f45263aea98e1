"""Time per face of every quality method on this machine (milliseconds per face).

    python benchmarks/bench_quality.py [--threads N] [--diffusion PATH] [--no-diffiqa]

Input: the first 64 aligned glint24 crops (real 112x112 faces).  Each method scores the same
crops through ``make_scorer`` with its defaults, as ``vidfiqa score`` would; a row is the median
over several calls after one warm-up call (sessions, arenas and thread pools are set up there),
divided by the faces per call:

* the bundled eDifFIQA-T student (onnxruntime) with 1, 8, 16 and 64 faces per call;
* the sharpness and embedding-norm (MobileFaceNet, onnxruntime) baselines, 64 faces per call;
* FROQ with the committed calibration (one hooked MobileFaceNet forward pass, PyTorch);
* FaceQAN with its defaults (eps 1e-3, l 5, k 10; PyTorch), 4 faces per call;
* DifFIQA with the shipped small diffusion model (``vidfiqa/models/diffiqa_small.pt``, or
  ``--diffusion``), t 5, flips, with the paper's 10 noise repeats (1 face per call) and with the
  2 repeats the development-set EDC used (2 faces per call).

Results: benchmarks/results/quality_<host>.json (machine, load average at start and end, the
diffusion model's file and sha256) and the markdown table README shows, printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
SHARED = Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared"))


def crops(n: int) -> np.ndarray:
    paths = sorted((SHARED / "data" / "glint24_aligned").glob("*/*.png"))[:n]
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])


def per_face(fn, x: np.ndarray, repeats: int = 5) -> tuple[float, list[float]]:
    """(median seconds per face, every call's seconds) after one warm-up call."""
    fn(x)  # warm-up: sessions, arenas, thread pools
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / len(x), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--diffusion", type=Path, default=None, help="diffusion checkpoint (default: the shipped small model)")
    parser.add_argument("--no-diffiqa", action="store_true", help="skip DifFIQA (about a minute)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / f"quality_{platform.node() or 'host'}.json")
    args = parser.parse_args()
    from benchinfo import Run, load_note

    run = Run("bench_quality.py", sys.argv[1:])
    os.environ.setdefault("VIDFIQA_WEIGHTS", str(SHARED / "models"))
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from vidfiqa.quality import make_scorer

    x = crops(64)
    rows = []

    def add(label: str, method: str, fn, faces: np.ndarray, calls: int, **options) -> None:
        sec, times = per_face(fn, faces, calls)
        rows.append({"method": label, "scorer": method, "options": options, "faces_per_call": len(faces), "calls": calls,
                     "ms_per_face": round(sec * 1e3, 3), "call_seconds": [round(t, 4) for t in times]})
        print(f"  {label}: {sec * 1e3:.2f} ms/face", flush=True)

    student = make_scorer("ediffiqa")
    for batch in (1, 8, 16, 64):
        student.batch_size = batch
        add(f"eDifFIQA-T student (onnxruntime), batch {batch}", "ediffiqa", student.score, x[:batch], 20 if batch == 1 else 5, batch_size=batch)
    add("sharpness baseline", "sharpness", make_scorer("sharpness").score, x, 5)
    add("embedding norm baseline (onnxruntime)", "embedding_norm", make_scorer("embedding_norm").score, x, 5)
    calibration = REPO / "training" / "froq_mobilefacenet.json"
    add("FROQ (one hooked forward pass, PyTorch)", "froq", make_scorer("froq", calibration=calibration).score, x, 5,
        calibration=str(calibration.relative_to(REPO)))
    add("FaceQAN (ε 1e-3, l 5, k 10; PyTorch)", "faceqan", make_scorer("faceqan").score, x[:4], 2)
    diffusion = None
    if not args.no_diffiqa:
        from vidfiqa.backbones.registry import sha256_file
        from vidfiqa.quality.diffiqa import _find_checkpoint

        path = _find_checkpoint(args.diffusion, "small")
        shown = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)
        diffusion = {"file": shown, "bytes": path.stat().st_size, "sha256": sha256_file(path)}
        for repeats, faces, calls in ((10, x[:1], 1), (2, x[:2], 1)):  # seconds per call: one timed call each
            scorer = make_scorer("diffiqa", diffusion=str(path), repeats=repeats)
            add(f"DifFIQA (shipped small UNet, t 5, {repeats} repeats, flips; PyTorch)", "diffiqa", scorer.score, faces, calls,
                diffusion=path.name, repeats=repeats)

    data = run.write(args.out, {"crops": "first 64 files of glint24_aligned/*/*.png (sorted)", "diffusion_model": diffusion, "rows": rows})
    m = data["machine"]
    print(f"\nmachine: {m['cpu_model']}, {m['cpu_count']} cores, torch {m.get('torch')} ({m.get('torch_threads')} threads), "
          f"onnxruntime {m.get('onnxruntime')}; {load_note(data)}")
    print("\n| method | ms/face |\n|---|---|")
    for r in rows:
        ms = r["ms_per_face"]
        print(f"| {r['method']} | {ms:,.0f} |" if ms >= 100 else f"| {r['method']} | {ms:.2f} |")


if __name__ == "__main__":
    main()
