"""Make the tiny sample media in this folder from public-domain sources.

astronaut.jpg   scikit-image's astronaut photo (Eileen Collins, NASA, public domain), 512x512.
astronaut.mp4   an 8-second, 480x360, 15 fps H.264 clip made from that photo: the face moves,
                turns, blurs and darkens over time, then holds still and sharp.  Its timeline is
                written next to it (astronaut.json) so tests can check which frames are good.

Run: python samples/make_samples.py   (needs scikit-image, a test dependency, and PyAV)
The output is deterministic for a given numpy/OpenCV/FFmpeg: the noise is seeded.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT, FPS, SECONDS = 480, 360, 15, 8

# (start s, end s, what happens).  Only "clean" segments show the face undegraded.
TIMELINE = [
    (0.0, 2.0, "clean", "moves left to right and grows"),
    (2.0, 4.0, "turn", "turns left and right (perspective yaw) and rolls"),
    (4.0, 5.5, "blur", "defocus and motion blur, increasing"),
    (5.5, 7.0, "dark", "darkens to 15 % brightness with sensor noise, then brightens again"),
    (7.0, 8.0, "clean", "holds still, frontal and sharp"),
]


def make_astronaut() -> Path:
    from skimage import data

    path = HERE / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(path, quality=90)
    return path


def _segment(t: float) -> tuple[str, float]:
    """The segment at time t and how far into it we are (0..1)."""
    for start, end, kind, _ in TIMELINE:
        if start <= t < end:
            return kind, (t - start) / (end - start)
    return TIMELINE[-1][2], 1.0


def _placement(t: float) -> np.ndarray:
    """3x3 homography from the photo to the canvas at time t: scale, pan, roll and a fake yaw."""
    kind, u = _segment(t)
    # The photo's face is around (215, 115); keep it in view while the camera "moves".
    if t < 2.0:
        scale, cx, cy, roll, yaw = 0.8 + 0.3 * u, 170 + 140 * u, 150, 0.0, 0.0
    elif kind == "turn":
        scale, cx, cy = 1.1, 310 - 70 * u, 150
        roll = 15.0 * np.sin(2 * np.pi * u)
        yaw = 0.5 * np.sin(2 * np.pi * u)  # from and back to frontal: no jump a shot detector would call a cut
    else:
        scale, cx, cy, roll, yaw = 1.1, 240, 150, 0.0, 0.0
    face = np.array([215.0, 115.0])
    rotation = cv2.getRotationMatrix2D(tuple(face), roll, scale)
    affine = np.vstack([rotation, [0, 0, 1]])
    affine[:2, 2] += np.array([cx, cy]) - face
    # Yaw: compress one side of the face horizontally with a perspective term, the way a head
    # turning away from the camera foreshortens.
    yaw_h = np.array([[1, 0, 0], [0, 1, 0], [yaw / 400.0, 0, 1]])
    to_face = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    back = np.linalg.inv(to_face)
    return back @ yaw_h @ to_face @ affine


def _degrade(frame: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
    kind, u = _segment(t)
    if kind == "blur":
        sigma = 1.0 + 5.0 * u
        frame = cv2.GaussianBlur(frame, (0, 0), sigma)
        length = int(3 + 12 * u)
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        frame = cv2.filter2D(frame, -1, kernel)
    elif kind == "dark":
        gain = 1.0 - 0.85 * min(1.0, 2 * u, 4 * (1 - u))  # down to 15 %, held, then back up (no snap)
        noisy = frame.astype(np.float32) * gain + rng.normal(0, 6, frame.shape)
        frame = np.clip(noisy, 0, 255).astype(np.uint8)
    return frame


def make_clip(photo: np.ndarray | None = None, path: Path | None = None) -> Path:
    """Encode the clip with PyAV (H.264, CRF 26, yuv420p) and write its timeline next to it."""
    import av

    if photo is None:
        from skimage import data

        photo = data.astronaut()
    path = Path(path or HERE / "astronaut.mp4")
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(cv2.resize(photo, (WIDTH, HEIGHT)), (0, 0), 40)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"crf": "26", "preset": "medium"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(FPS * SECONDS):
            t = i / FPS
            # Paste onto a featureless background: a reflected border would mirror the face
            # into extra (upside-down) faces.
            frame = cv2.warpPerspective(photo, _placement(t), (WIDTH, HEIGHT), dst=background.copy(),
                                        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
            frame = _degrade(frame, t, rng)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    timeline = [{"start_s": s, "end_s": e, "kind": k, "what": w} for s, e, k, w in TIMELINE]
    path.with_suffix(".json").write_text(json.dumps({"fps": FPS, "width": WIDTH, "height": HEIGHT, "frames": FPS * SECONDS,
                                                     "source": "scikit-image astronaut (NASA, public domain)",
                                                     "timeline": timeline}, indent=2) + "\n")
    return path


if __name__ == "__main__":
    print(make_astronaut())
    print(make_clip())
