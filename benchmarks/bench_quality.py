"""Time per face of every quality method on this machine.

    python benchmarks/bench_quality.py [--diffusion PATH] [--threads N]

Real aligned crops (glint24).  The bundled student runs in onnxruntime at batch 1, 16 and 64;
FaceQAN, FROQ and DifFIQA run in PyTorch with their defaults.  DifFIQA needs a diffusion
checkpoint (``--diffusion``; ours is not shipped until it converges) and is skipped without one.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared"))


def crops(n: int) -> np.ndarray:
    paths = sorted((SHARED / "data" / "glint24_aligned").glob("*/*.png"))[:n]
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])


def per_face(fn, x: np.ndarray, repeats: int = 5) -> float:
    fn(x)  # warm-up: sessions, arenas, thread pools
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / len(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--diffusion", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    os.environ.setdefault("VIDFIQA_WEIGHTS", str(SHARED / "models"))
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from vidfiqa.quality import make_scorer

    x = crops(64)
    rows = []
    student = make_scorer("ediffiqa")
    for batch in (1, 16, 64):
        student.batch_size = batch
        rows.append((f"eDifFIQA-T student (onnxruntime), batch {batch}", per_face(student.score, x[:batch] if batch > 1 else x[:1], repeats=20 if batch == 1 else 5) * 1e3))
    for name in ("sharpness", "embedding_norm"):
        rows.append((f"baseline {name}", per_face(make_scorer(name).score, x) * 1e3))
    froq = make_scorer("froq", calibration=REPO / "training" / "froq_mobilefacenet.json")
    rows.append(("FROQ (1 hooked forward, torch)", per_face(froq.score, x) * 1e3))
    faceqan = make_scorer("faceqan")
    rows.append(("FaceQAN (eps 1e-3, l 5, k 10, torch)", per_face(faceqan.score, x[:4], repeats=2) * 1e3))
    if args.diffusion and args.diffusion.is_file():
        diffiqa = make_scorer("diffiqa", diffusion=str(args.diffusion))
        rows.append(("DifFIQA (small UNet, t 5, 10 repeats, flips, torch)", per_face(diffiqa.score, x[:1], repeats=1) * 1e3))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), load {os.getloadavg()[0]:.1f}")
    print("\n| method | ms/face |\n|---|---|")
    for name, ms in rows:
        print(f"| {name} | {ms:.2f} |")


if __name__ == "__main__":
    main()
