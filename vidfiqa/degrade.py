"""Seeded image degradations of aligned face crops.

The quality student must see the range of faces it will rank in video: blur from focus and
motion, sensor noise, compression, small faces (downscaling), dark scenes and occluders.  Every
degradation is a small frozen record (name + parameters) so that a degraded copy can be named in a
labels file and recreated exactly from its clean crop: ``apply(crop, spec)`` is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

KINDS = ("blur", "motion_blur", "noise", "jpeg", "downscale", "low_light", "occlusion")
# What cameras add (benchmarks/ytf_cctv.py): video compression at a low bitrate, sensor noise of a
# dark scene amplified by the camera's gain, a face out of the focal plane, a bright background
# or a face in the sun.  Kept apart from KINDS so that ``sample()``'s default, which the training
# crop set draws from, changes only when a training run asks for them.
CAMERA_KINDS = ("h264", "sensor_noise", "defocus", "overexposure")
ALL_KINDS = KINDS + CAMERA_KINDS


@dataclass(frozen=True)
class Degradation:
    """One degradation; ``params`` are plain numbers so the spec round-trips through text."""

    kind: str
    params: tuple[tuple[str, float], ...] = field(default=())

    def __str__(self) -> str:
        return self.kind + "".join(f";{k}={v:.12g}" for k, v in self.params)  # no exponents: "+" joins chains

    @classmethod
    def parse(cls, text: str) -> "Degradation":
        kind, *pairs = text.split(";")
        if kind not in ALL_KINDS:
            raise ValueError(f"unknown degradation {kind!r}")
        return cls(kind, tuple((k, float(v)) for k, v in (p.split("=") for p in pairs)))

    def get(self, name: str) -> float:
        return dict(self.params)[name]


def sample(rng: np.random.Generator, kinds: tuple[str, ...] = KINDS, severity: float | None = None) -> list[Degradation]:
    """A random chain of one or two degradations; ``severity`` in [0, 1] (random when None)."""
    count = 1 if rng.random() < 0.7 else 2
    chosen = rng.choice(len(kinds), size=count, replace=False)
    return [_sample_one(kinds[i], rng, rng.uniform(0.15, 1.0) if severity is None else severity) for i in sorted(chosen)]


def _sample_one(kind: str, rng: np.random.Generator, s: float) -> Degradation:
    # Ranges go from barely visible (s -> 0) to faces that FR models fail on (s = 1).
    if kind == "blur":
        return Degradation(kind, (("sigma", round(0.5 + 4.5 * s, 2)),))
    if kind == "motion_blur":
        return Degradation(kind, (("length", float(int(3 + 20 * s))), ("angle", float(int(rng.uniform(0, 180))))))
    if kind == "noise":
        return Degradation(kind, (("sigma", round(3 + 40 * s, 1)), ("seed", float(rng.integers(1 << 30)))))
    if kind == "jpeg":
        return Degradation(kind, (("quality", float(int(60 - 55 * s))),))
    if kind == "downscale":
        return Degradation(kind, (("size", float(int(round(90 - 76 * s)))),))  # 112 -> 90 .. 14 px
    if kind == "low_light":
        return Degradation(kind, (("gain", round(0.6 - 0.5 * s, 3)), ("gamma", round(1.0 + 1.2 * s, 2)), ("seed", float(rng.integers(1 << 30)))))
    if kind == "occlusion":
        area = 0.08 + 0.35 * s
        aspect = rng.uniform(0.5, 2.0)
        w = min(1.0, np.sqrt(area * aspect))
        h = min(1.0, area / w)
        return Degradation(kind, (("x", round(rng.uniform(0, 1 - w), 3)), ("y", round(rng.uniform(0, 1 - h), 3)), ("w", round(w, 3)), ("h", round(h, 3)), ("shade", float(int(rng.integers(0, 256))))))
    if kind == "h264":
        return Degradation(kind, (("qp", float(int(round(30 + 21 * s)))),))  # x264's quantiser: 30 (mild) .. 51 (its worst)
    if kind == "sensor_noise":
        # Photons a white pixel collects: a few dozen in a dim scene, a handful in the dark.
        return Degradation(kind, (("photons", round(60 * (1 - s) + 4 * s, 1)), ("read", round(1.0 + 2.0 * s, 2)), ("seed", float(rng.integers(1 << 30)))))
    if kind == "defocus":
        return Degradation(kind, (("radius", round(1.0 + 5.0 * s, 2)),))
    if kind == "overexposure":
        return Degradation(kind, (("gain", round(1.3 + 3.2 * s, 2)),))
    raise ValueError(f"unknown degradation {kind!r}")


def _linear(img: np.ndarray) -> np.ndarray:
    """uint8 sRGB-like pixels -> linear light in 0..1 (gamma 2.2: what a sensor counts)."""
    return (img / 255.0) ** 2.2


def _encoded(linear: np.ndarray) -> np.ndarray:
    return (np.clip(linear, 0.0, 1.0) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)


def h264_round_trip(img: np.ndarray, qp: int) -> np.ndarray:
    """One frame through x264 (intra, constant quantiser ``qp``) and back: the 4x4/8x8 blocking,
    ringing and halved colour resolution of a camera stream at a low bitrate.  One encoder
    thread, so the result is the same on every machine for the same input."""
    import av

    h, w = img.shape[:2]
    padded = np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")  # 4:2:0 needs even sides
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = padded.shape[1], padded.shape[0], "yuv420p"
    encoder.thread_count = 1
    encoder.options = {"qp": str(int(qp)), "preset": "veryfast", "tune": "zerolatency"}
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(padded), format="rgb24").reformat(format="yuv420p")
    packets = list(encoder.encode(frame)) + list(encoder.encode(None))
    decoder = av.CodecContext.create("h264", "r")
    decoder.thread_count = 1
    pictures = [f for packet in packets for f in decoder.decode(packet)] + list(decoder.decode(None))
    if not pictures:
        raise RuntimeError(f"x264 gave no picture for a {img.shape} crop")
    return pictures[0].to_ndarray(format="rgb24")[:h, :w].copy()


def apply(crop: np.ndarray, spec: Degradation | str | list) -> np.ndarray:
    """Degrade a uint8 RGB crop; a list applies the chain in order."""
    if isinstance(spec, (list, tuple)):
        for s in spec:
            crop = apply(crop, s)
        return crop
    if isinstance(spec, str):
        return apply(crop, [Degradation.parse(p) for p in spec.split("+") if p])
    img = crop
    k = spec.kind
    if k == "blur":
        return cv2.GaussianBlur(img, (0, 0), spec.get("sigma"), borderType=cv2.BORDER_REPLICATE)
    if k == "motion_blur":
        length = max(1, int(spec.get("length")))
        kernel: np.ndarray = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), spec.get("angle"), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (length, length))
        kernel = kernel / max(kernel.sum(), 1e-6)
        return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REPLICATE)
    if k == "noise":
        rng = np.random.default_rng(int(spec.get("seed")))
        return np.clip(img + rng.normal(0, spec.get("sigma"), img.shape), 0, 255).astype(np.uint8)
    if k == "jpeg":
        ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(spec.get("quality"))])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        if decoded is None:
            raise RuntimeError(f"OpenCV could not JPEG-encode and decode a {img.shape} {img.dtype} crop")
        return decoded[..., ::-1].copy()
    if k == "downscale":
        size = max(4, int(spec.get("size")))
        h, w = img.shape[:2]
        small = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if k == "low_light":
        rng = np.random.default_rng(int(spec.get("seed")))
        x = (img / 255.0) ** spec.get("gamma") * spec.get("gain")
        # Dark frames come with amplified sensor noise: more noise, relatively, the darker it is.
        x = x + rng.normal(0, 0.02 * (1.0 - spec.get("gain")), img.shape)
        return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)
    if k == "occlusion":
        h, w = img.shape[:2]
        out = img.copy()
        x0, y0 = int(spec.get("x") * w), int(spec.get("y") * h)
        x1, y1 = int(x0 + spec.get("w") * w), int(y0 + spec.get("h") * h)
        out[y0:y1, x0:x1] = int(spec.get("shade"))
        return out
    if k == "h264":
        return h264_round_trip(img, int(spec.get("qp")))
    if k == "sensor_noise":
        # Shot noise (Poisson in the photons counted), read noise (Gaussian, in photons), then the
        # camera's gain brings the picture back to its brightness: noise that is coarse and
        # coloured (each channel counts its own photons), as in a dark scene at night.
        rng = np.random.default_rng(int(spec.get("seed")))
        photons = spec.get("photons")
        counted = rng.poisson(_linear(img) * photons) + rng.normal(0, spec.get("read"), img.shape)
        return _encoded(counted / photons)
    if k == "defocus":
        radius = spec.get("radius")
        size = 2 * int(np.ceil(radius)) + 1
        yy, xx = np.mgrid[:size, :size] - size // 2
        disk = (np.hypot(xx, yy) <= radius).astype(np.float32)
        return cv2.filter2D(img, -1, disk / disk.sum(), borderType=cv2.BORDER_REPLICATE)
    if k == "overexposure":
        # Too much light: linear intensities scaled up and clipped, so skin and highlights burn
        # to white and the face loses its shading.
        return _encoded(_linear(img) * spec.get("gain"))
    raise ValueError(f"unknown degradation {k!r}")


def chain_to_text(chain: list[Degradation]) -> str:
    return "+".join(str(d) for d in chain)
