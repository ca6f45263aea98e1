"""Reading video: files, network streams and frame folders, as upright RGB frames with timestamps.

    with open_source("clip.mp4", stride=2) as source:
        print(source.info.to_dict())
        for frame in source:
            ...  # frame.index, frame.pts (seconds), frame.image (H, W, 3) RGB uint8
        if source.stopped_early:
            print("incomplete:", source.stopped_early)
"""

from __future__ import annotations

import os
from numbers import Integral, Real
from pathlib import Path

from ..errors import ConfigError, InputError
from .imageseq_source import ImageSequenceSource
from .source import Frame, FrameSource, VideoInfo, as_uri, is_url

# The decoders are imported when a source is opened: what analyses frames (the processor, the
# models) imports this package without needing PyAV, so a machine without it (a GPU box that
# decodes otherwise: benchmarks/device_check.py) can still run them.


def gpu_available() -> bool:
    """True when torchcodec imports and torch sees a CUDA device (NVDEC decoding)."""
    from .gpu_source import gpu_available as available

    return available()


def gpu_unavailable_reason() -> str | None:
    from .gpu_source import gpu_unavailable_reason as reason

    return reason()

__all__ = ["Frame", "FrameSource", "VideoInfo", "DECODERS", "gpu_available", "open_source"]

DECODERS = ("auto", "pyav", "decord", "gpu")


def open_source(uri: str | os.PathLike, decoder: str = "auto", stride: int = 1, fps: float | None = None,
                threads: int = 0, options: dict[str, str] | None = None, video_stream: int | None = None) -> FrameSource:
    """Open a video file, a stream URL (rtsp://, http(s)://, udp://...) or a folder of frames.

    ``decoder``: "auto" picks the GPU for files when torchcodec and CUDA are usable, else PyAV;
    a folder is always read as an image sequence, whatever ``decoder`` says.  ``stride`` keeps
    every stride-th frame.  ``fps`` is the frame rate of a folder of frames (None: timestamps are
    NaN); for a video it is only used when the container does not state a rate.  ``threads`` is
    the decoding thread count (0: automatic).  ``options`` go to FFmpeg (``av.open``) unchanged.

    ``video_stream``: which video stream of a file holding several (the container's stream
    index; PyAV only); default: the largest.

    Raises InputError for inputs that cannot be read and ConfigError for invalid arguments.
    """
    from .gpu_source import GpuSource
    from .pyav_source import PyAVSource

    _check_arguments(decoder, stride, fps, threads)
    stride, threads = int(stride), int(threads)
    uri = as_uri(uri)
    if not is_url(uri) and Path(uri).is_dir():
        return ImageSequenceSource(uri, stride=stride, fps=fps)
    if video_stream is not None:
        if decoder not in ("auto", "pyav"):
            raise ConfigError(f"video_stream needs the pyav decoder, not {decoder!r}")
        return PyAVSource(uri, stride=stride, fps=fps, threads=threads, options=options, video_stream=int(video_stream))
    if decoder == "auto":
        return _open_auto(uri, stride, fps, threads, options)
    if decoder != "pyav" and is_url(uri):
        raise ConfigError(f"decoder {decoder!r} reads local files only; use decoder 'pyav' for {uri}")
    if decoder == "decord":
        try:
            from .decord_source import DecordSource  # imported on demand: decord is optional
        except ImportError as err:
            raise ConfigError(f"decoder 'decord' is not usable ({err}); use decoder 'pyav'") from None
        return DecordSource(uri, stride=stride, fps=fps, threads=threads)
    if decoder == "gpu":
        reason = gpu_unavailable_reason()
        if reason:
            raise ConfigError(f"GPU decoding is not available: {reason}; use decoder 'auto' or 'pyav'")
        return GpuSource(uri, stride=stride, fps=fps)
    return PyAVSource(uri, stride=stride, fps=fps, threads=threads, options=options)


def _open_auto(uri: str, stride: int, fps: float | None, threads: int,
               options: dict[str, str] | None) -> FrameSource:
    """GPU for local files when usable, PyAV otherwise, and PyAV again when NVDEC refuses a file
    (codecs such as MJPEG or 4:4:4 H.264 that the hardware does not support).  FFmpeg
    ``options`` only mean something to PyAV, so passing them selects it."""
    from .gpu_source import GpuSource
    from .pyav_source import PyAVSource

    if not is_url(uri) and not options and gpu_available():
        try:
            return GpuSource(uri, stride=stride, fps=fps)
        except InputError:
            pass  # PyAV reopens it: it either decodes it or raises the clearer error
    return PyAVSource(uri, stride=stride, fps=fps, threads=threads, options=options)


def _check_arguments(decoder: str, stride: int, fps: float | None, threads: int) -> None:
    if decoder not in DECODERS:
        raise ConfigError(f"unknown decoder {decoder!r}; choose one of {', '.join(DECODERS)}")
    if isinstance(stride, bool) or not isinstance(stride, Integral) or stride < 1:
        raise ConfigError(f"stride must be a whole number >= 1, got {stride!r}")
    if fps is not None and not (isinstance(fps, Real) and 0 < fps < float("inf")):
        raise ConfigError(f"fps must be a positive number, got {fps!r}")
    if isinstance(threads, bool) or not isinstance(threads, Integral) or threads < 0:
        raise ConfigError(f"threads must be a whole number >= 0 (0: automatic), got {threads!r}")
