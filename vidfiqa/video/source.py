"""What every frame source delivers, whatever decodes it.

The pipeline only sees :class:`FrameSource`: it iterates :class:`Frame` objects (RGB uint8, upright,
with an exact presentation time) and reads :class:`VideoInfo`.  Backends differ in speed and in
what they can open (PyAV: files and network streams; decord: files; GPU: files via NVDEC; images:
frame folders), not in what they deliver.

Damaged input is a fact of life for video (files cut off by a full disk, cameras that drop off the
network), so a source never raises in the middle of iteration: it ends cleanly and says why in
:attr:`FrameSource.stopped_early`.  Everything that can be checked up front (missing file, not a
video, no video stream) raises :class:`~vidfiqa.errors.InputError` when the source is opened.
"""

from __future__ import annotations

import dataclasses
import math
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Iterator, TypeVar
from urllib.parse import urlsplit

import cv2
import numpy as np

# URL schemes whose streams have no end and no known length.
LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "rtp", "udp", "srt", "tcp"})
# Decoders often drop or hide a frame or two at the ends (edit lists, B-frame delay), so a stream
# is only called truncated when it falls short of the container's frame count by more than this.
SHORTFALL_TOLERANCE = 0.01

_SourceT = TypeVar("_SourceT", bound="FrameSource")


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a source once it is open; sizes are those of the delivered frames."""

    uri: str  # path or URL as given
    decoder: str  # "pyav" | "decord" | "gpu" | "images"
    width: int  # after rotation
    height: int
    fps: float | None  # nominal/average frame rate; None if unknown
    frame_count: int | None  # expected frames before stride; None if unknown or live
    duration_s: float | None
    rotation: int  # degrees clockwise applied to upright the frames: 0, 90, 180 or 270
    codec: str | None
    is_live: bool
    stream_index: int | None = None  # the container's stream that is read (files with several video streams)
    video_streams: int = 1  # video streams in the container (cover art aside)

    def to_dict(self) -> dict:
        """JSON-ready: plain types only, and no NaN/inf (JSON has no spelling for them)."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
        return out


@dataclass(frozen=True)
class Frame:
    """One decoded frame."""

    index: int  # 0-based position among all frames of the source (before stride)
    pts: float  # seconds from the stream start, from container timestamps; NaN if unknown
    image: np.ndarray  # (H, W, 3) RGB uint8, C-contiguous, upright
    # Shot-cut thumbnails (video/shots.py) of every frame decoded since the previous frame given,
    # this one last, when the source makes them (PyAVSource.thumbnails); None: it does not.
    thumbnails: tuple[np.ndarray, ...] | None = None


class FrameSource(ABC):
    """An open video: iterate it once for every ``stride``-th frame, then close it.

    Iterating a second time raises ``RuntimeError``: live streams cannot be rewound, so no source
    promises it (open the input again instead).
    """

    info: VideoInfo
    stopped_early: str | None  # after iteration: None if the input ended normally, else why not
    skipped: int  # frames (packets, image files) passed over because they could not be decoded
    skipped_files: list[str]  # for image sequences: "name: reason" of each file passed over
    frames_read: int  # frames decoded so far, those skipped by the stride included (where known)

    def __init__(self, stride: int):
        self.stride = stride
        self.stopped_early = None
        self.skipped = 0
        self.skipped_files = []
        self.frames_read = 0
        self._iterated = False

    def __iter__(self) -> Iterator[Frame]:
        if self._iterated:
            raise RuntimeError("a FrameSource is iterated only once; open the input again to re-read it")
        self._iterated = True
        return self._frames()

    @abstractmethod
    def _frames(self) -> Iterator[Frame]:
        """Yield the frames whose index is a multiple of ``self.stride``."""

    @abstractmethod
    def close(self) -> None:
        """Release the decoder and file handles; safe to call more than once."""

    def __enter__(self: _SourceT) -> _SourceT:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        info = self.info
        return f"<{type(self).__name__} {info.uri!r} {info.width}x{info.height} decoder={info.decoder}>"


def is_url(uri: str) -> bool:
    """True for ``scheme://...`` inputs (but not Windows drive letters such as ``C:\\``)."""
    scheme = urlsplit(uri).scheme
    return len(scheme) > 1 and "://" in uri


def is_live_url(uri: str) -> bool:
    return is_url(uri) and urlsplit(uri).scheme.lower() in LIVE_SCHEMES


def as_uri(uri: str | os.PathLike) -> str:
    return os.fspath(uri) if not isinstance(uri, str) else uri


def clockwise_from_display(ccw_degrees: float) -> int:
    """FFmpeg's display-matrix angle (counter-clockwise, -180..180) -> clockwise 0/90/180/270.

    Phones store portrait video as landscape pixels plus "rotate -90 (ccw)" for display, so the
    frames need a 90 degree clockwise turn to be upright.  Angles that are not multiples of 90 do
    not occur in practice; they are rounded to the nearest quarter turn.
    """
    return int(round(-ccw_degrees / 90.0)) % 4 * 90


def rotate_upright(image: np.ndarray, rotation_cw: int) -> np.ndarray:
    """Turn ``image`` clockwise by ``rotation_cw`` degrees; the result is C-contiguous."""
    if rotation_cw % 360 == 0:
        return np.ascontiguousarray(image)
    return np.ascontiguousarray(np.rot90(image, k=-(rotation_cw // 90)))


def fit_size(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize ``image`` to ``width`` x ``height`` if it differs.

    Downstream, the boxes and tracks of one source share one coordinate system, so a frame of
    another size (a camera that switches resolution mid-stream, a stray image in a frame folder)
    is brought to the size announced in ``VideoInfo`` instead of being passed on as it is.
    """
    if image.shape[:2] == (height, width):
        return image
    shrink = image.shape[0] * image.shape[1] > height * width
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def rotated_size(width: int, height: int, rotation_cw: int) -> tuple[int, int]:
    return (height, width) if rotation_cw in (90, 270) else (width, height)


def shortfall_reason(delivered: int, expected: int | None) -> str | None:
    """Why a stream that ended without an error is nonetheless incomplete, or None.

    Demuxers end a file cut off mid-way silently (as if it were complete), so the only sign is
    that fewer frames came out than the container's header announced.
    """
    if not expected or delivered >= expected * (1.0 - SHORTFALL_TOLERANCE) - 2:
        return None
    return f"input ended after {delivered} of {expected} frames (file truncated or damaged?)"


def error_text(err: BaseException) -> str:
    """One short line for a library error (FFmpeg errors repeat the file name; drop it)."""
    return one_line(getattr(err, "strerror", None) or str(err) or type(err).__name__)


def one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
