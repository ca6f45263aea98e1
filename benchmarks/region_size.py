"""Region re-detection: how its cost and what it re-finds depend on the size regions are
resized to (``roi_input_size``), on a real 720p multi-person clip.

    python benchmarks/region_size.py        # -> benchmarks/results/region_size_vm.json

Every 5th frame of the street crowd resized to 1280x720 (about six faces a frame).  "Tracked
faces": RetinaFace on the whole frame at 640 px; each face's box, shifted by 4 px (a prediction
is never exact), is what the region re-detector looks around (a square of twice its side).
Reported per region size: ms per frame (one onnxruntime thread), how many faces were re-found
(IoU > 0.5 with the whole-frame box), and the mean distance of the 5 landmarks from the
whole-frame ones in eye distances (agreement, not accuracy: neither is ground truth).  "native":
each region keeps about its own pixel size (rounded up to a multiple of 32, 64-192), so small
faces are not enlarged; regions of different sizes need separate network calls.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

from benchinfo import Run

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
from small_faces import CLIP, crowd_frames  # noqa: E402


def measure(frames, truth, detector, size_of) -> dict:
    from vidfiqa.boxes import iou_matrix, square_regions

    seconds, found, total, errors = 0.0, 0, 0, []
    for frame, faces in zip(frames, truth):
        regions = square_regions(faces.boxes + 4, 2.0)
        sizes = [size_of(side) for side in regions[:, 2]]
        start = time.perf_counter()
        patches = []
        for (x, y, side), size in zip(regions, sizes):
            k = size / side
            patches.append(cv2.warpAffine(frame, np.array([[k, 0, -x * k], [0, k, -y * k]]), (size, size), flags=cv2.INTER_LINEAR,
                                          borderMode=cv2.BORDER_REPLICATE))
        hits = detector.detect(patches)
        seconds += time.perf_counter() - start
        for r in range(len(regions)):
            total += 1
            mine = hits.in_frame(r)
            if len(mine) == 0:
                continue
            k = regions[r, 2] / sizes[r]
            boxes = mine.boxes * k + np.tile(regions[r, :2], 2)
            overlap = iou_matrix(faces.boxes[[r]], boxes)[0]
            j = int(np.argmax(overlap))
            if overlap[j] > 0.5:
                found += 1
                eye = np.linalg.norm(faces.landmarks[r, 0] - faces.landmarks[r, 1])
                errors.append(float(np.linalg.norm(mine.landmarks[j] * k + regions[r, :2] - faces.landmarks[r], axis=1).mean() / eye))
    return {"ms_per_frame": round(seconds / len(frames) * 1e3, 1), "re_found": found, "tracked": total,
            "landmark_distance_eye_units": round(float(np.mean(errors)), 4)}


def main() -> None:
    from vidfiqa.detect import make_detector

    run = Run("region_size.py", sys.argv[1:])
    frames = crowd_frames(5, (1280, 720))
    truth = [make_detector("retinaface", input_size=640, threads=1).detect([f]) for f in frames]
    detector = make_detector("retinaface", input_size=192, threads=1)
    detector.detect([np.zeros((192, 192, 3), np.uint8)])  # warm up
    policies = {"192 (default)": lambda s: 192, "160": lambda s: 160, "128 (fast preset)": lambda s: 128, "96": lambda s: 96,
                "native, 64-192": lambda s: int(min(192, max(64, 32 * np.ceil(s / 32))))}
    rows = {}
    for name, size_of in policies.items():
        rows[name] = measure(frames, truth, detector, size_of)
        print(name, rows[name], flush=True)
    run.write(HERE / "results" / "region_size_vm.json", {"clip": f"{CLIP.name} at 1280x720, every 5th frame", "frames": len(frames),
                                                         "faces_per_frame": round(float(np.mean([len(t) for t in truth])), 2),
                                                         "region_sizes": rows})


if __name__ == "__main__":
    main()
