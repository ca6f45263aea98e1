"""How far apart the student's face embeddings are within a track and across people: the basis
of the identity-split threshold (vidfiqa/select/identity.py).

    python benchmarks/identity_split.py

Every 3rd frame of the first 180 of each single-person clip in ../shared/data/videos (the crowd
clip excluded): largest face, aligned, the bundled student's quality and embedding.  "Within":
each frame's cosine to the mean of its clip's previous 10 frames (a track's running template).
"Across": each frame's cosine to the template (first 10 frames) of every other clip.  Writes
benchmarks/results/identity_split_vm.json with percentiles, per quality floor.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from benchinfo import Run

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("VIDFIQA_SHARED", HERE.parent.parent / "shared"))


def embed_clip(path: Path, detector, aligner, student, frames: int = 60, stride: int = 3):
    from vidfiqa.video import open_source

    embeddings, quality = [], []
    with open_source(str(path), stride=stride) as source:
        for i, frame in enumerate(source):
            if i >= frames:
                break
            faces = detector.detect([frame.image], [frame.index], [frame.pts]).largest_per_frame()
            if len(faces) == 0:
                continue
            aligned = aligner(faces, {frame.index: frame.image})
            q, e = student.score_and_embed(aligned.crops)
            embeddings.append(e[0])
            quality.append(float(q[0]))
    return np.asarray(embeddings, np.float64), np.asarray(quality)


def main() -> None:
    from vidfiqa.align import Aligner
    from vidfiqa.boxes import l2_normalize
    from vidfiqa.detect import make_detector
    from vidfiqa.quality import make_scorer

    run = Run("identity_split", timed=False)
    detector, aligner, student = make_detector("retinaface", input_size=640), Aligner(), make_scorer("ediffiqa")
    clips = sorted(p for p in (SHARED / "data" / "videos").iterdir() if "crowd" not in p.name)
    data = {p.name: embed_clip(p, detector, aligner, student) for p in clips}
    units = {name: (l2_normalize(e), q) for name, (e, q) in data.items() if len(e) >= 11}
    within, across = [], []
    for name, (e, q) in units.items():
        for i in range(5, len(e)):
            within.append((float(e[i] @ l2_normalize(e[max(0, i - 10):i].mean(0))), q[i]))
        for other, (f, _) in units.items():
            if other != name:
                template = l2_normalize(f[:10].mean(0))
                across.extend((float(v), qq) for v, qq in zip(e @ template, q))
    w, a = np.array(within), np.array(across)
    report = {"clips": {name: len(e) for name, (e, _) in units.items()}, "by_quality_floor": {}}
    for floor in (-1.0, 0.0, 0.1, 0.2):
        ww, aa = w[w[:, 1] >= floor, 0], a[a[:, 1] >= floor, 0]
        report["by_quality_floor"][str(floor)] = {
            "within_n": len(ww), "within_min": round(float(ww.min()), 3), "within_p1": round(float(np.percentile(ww, 1)), 3),
            "within_p5": round(float(np.percentile(ww, 5)), 3), "within_median": round(float(np.median(ww)), 3),
            "across_n": len(aa), "across_max": round(float(aa.max()), 3), "across_p99": round(float(np.percentile(aa, 99)), 3),
            "across_median": round(float(np.median(aa)), 3),
        }
    run.write(HERE / "results" / "identity_split_vm.json", report)
    print(json.dumps(report["by_quality_floor"], indent=1))


if __name__ == "__main__":
    main()
