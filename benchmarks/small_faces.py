"""Small faces in large frames: what the default detector front end finds on the 1080p street
crowd, against searching every frame at its own size, and what it costs.

    python benchmarks/small_faces.py        # -> benchmarks/results/small_faces_vm.json

Every 5th frame of ../shared/data/videos/facenetpytorch_street_crowd.mp4 (1920x1080).  "Truth":
RetinaFace on the whole frame at 1920 px (nothing shrunk).  Compared: the whole frame at 640 px
alone; the default (``make_detector(small_faces=True)``: 640 px, then a closer look at the unsure
candidates, detect/small_faces.py); the whole frame at 960 and 1280 px.  A truth face counts as
found when a detection overlaps it with IoU > 0.3.  Times: one onnxruntime thread.

Then the same frames at 1280x720 (truth: RetinaFace at 1280 px, faces of at least 24 px, the
smallest the pipeline scores): 640 px alone (the default at 720p) against 640 px with the closer
look forced on (it is given only frames at least 2.5x ``input_size``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from benchinfo import Run

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
CLIP = REPO.parent / "shared" / "data" / "videos" / "facenetpytorch_street_crowd.mp4"


def crowd_frames(every: int = 5, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Every ``every``-th RGB frame of the street crowd clip, resized to ``size`` (w, h) if given."""
    import av

    frames = []
    with av.open(str(CLIP)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % every == 0:
                if size is not None:
                    frame = frame.reformat(width=size[0], height=size[1])
                frames.append(frame.to_ndarray(format="rgb24"))
    return frames


def measure(frames: list[np.ndarray], truth: list, front_ends: dict, min_side: float = 0.0) -> dict:
    """Per front end: truth faces found (those with a shorter side >= ``min_side``), the small
    ones (< 48 px) among them, detections not in the truth, and ms per frame."""
    from vidfiqa.boxes import iou_matrix

    rows = {}
    for name, detector in front_ends.items():
        detector.detect(frames[:1])  # warm up
        found, extra, small_truth, small_found, counted, seconds = 0, 0, 0, 0, 0, 0.0
        for frame, t in zip(frames, truth):
            start = time.perf_counter()
            faces = detector.detect([frame])
            seconds += time.perf_counter() - start
            hit = iou_matrix(t.boxes, faces.boxes).max(axis=1) > 0.3 if len(t) and len(faces) else np.zeros(len(t), bool)
            side = np.minimum(t.widths, t.heights)
            big_enough = side >= min_side
            counted += int(big_enough.sum())
            found += int((hit & big_enough).sum())
            small = (side < 48) & big_enough
            small_truth += int(small.sum())
            small_found += int((hit & small).sum())
            extra += int(len(faces) - (iou_matrix(faces.boxes, t.boxes).max(axis=1) > 0.3).sum()) if len(faces) and len(t) else len(faces)
        rows[name] = {"found": found, "truth": counted, "small_found": small_found, "small_truth": small_truth,
                      "not_in_truth": extra, "ms_per_frame": round(seconds / len(frames) * 1e3, 1)}
        print(name, rows[name], flush=True)
    return rows


def main() -> None:
    from vidfiqa.detect import REGION_SIZE, make_detector
    from vidfiqa.detect.region import RegionRedetector
    from vidfiqa.detect.small_faces import UNSURE_SCORE, SmallFaceSearch

    run = Run("small_faces.py", sys.argv[1:])
    frames = crowd_frames()
    truth_detector = make_detector("retinaface", input_size=1920, threads=1)
    truth = [truth_detector.detect([f]) for f in frames]
    sides = np.concatenate([np.minimum(t.widths, t.heights) for t in truth])
    front_ends = {
        "640 px only": make_detector("retinaface", input_size=640, threads=1),
        "640 px + closer look (default)": make_detector("retinaface", input_size=640, threads=1, small_faces=True),
        "960 px": make_detector("retinaface", input_size=960, threads=1),
        "1280 px": make_detector("retinaface", input_size=1280, threads=1),
    }
    rows = measure(frames, truth, front_ends)
    # The same crowd at 720p: would the closer look pay there?  (The default gives it only frames
    # at least 2.5x input_size, so it is forced here with a shrink bound of 2.)  Faces under 24 px
    # are not scored by the pipeline (min_face_size) and are not counted.
    frames_720 = crowd_frames(size=(1280, 720))
    truth_720 = [make_detector("retinaface", input_size=1280, threads=1).detect([f]) for f in frames_720]
    first = make_detector("retinaface", input_size=640, threads=1, score_threshold=UNSURE_SCORE)
    forced = SmallFaceSearch(first, RegionRedetector(make_detector("retinaface", input_size=REGION_SIZE, threads=1), size=REGION_SIZE),
                             score_threshold=0.6, min_shrink=2.0)
    rows_720 = measure(frames_720, truth_720, {"640 px only (default at 720p)": make_detector("retinaface", input_size=640, threads=1),
                                               "640 px + closer look": forced}, min_side=24.0)
    run.write(HERE / "results" / "small_faces_vm.json", {"clip": CLIP.name, "frames": len(frames), "truth": "RetinaFace at 1920 px",
                                                         "truth_face_side_px": {"min": float(sides.min()), "median": float(np.median(sides))},
                                                         "small": "truth faces with a shorter side under 48 px", "front_ends": rows,
                                                         "crowd_720p": {"frames": len(frames_720), "truth": "RetinaFace at 1280 px, faces >= 24 px",
                                                                        "front_ends": rows_720}})


if __name__ == "__main__":
    main()
