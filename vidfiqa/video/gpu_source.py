"""Decoding on the GPU (NVDEC) through torchcodec, for local files.

Decoding high-resolution video is often the slowest step of the pipeline on a CPU; NVDEC takes it
off the CPU.  The pipeline consumes numpy frames, so each decoded batch is copied back to host
memory: the gain is the decoding, not the transfer.  Files are validated and described by PyAV
first, like every file backend, so errors read the same whichever decoder is used.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
from typing import Iterator

from ..errors import InputError
from .pyav_source import probe
from .source import Frame, FrameSource, error_text, rotate_upright, shortfall_reason

# Frames per decoding call are chosen to keep one batch under this many bytes of GPU memory.
BATCH_BYTES = 256 * 1024 * 1024
MAX_BATCH = 32
TORCHCODEC_ERRORS = (RuntimeError, ValueError, IndexError)


@functools.lru_cache(maxsize=1)
def gpu_unavailable_reason() -> str | None:
    """None when NVDEC decoding can be used, else why not (one line)."""
    if importlib.util.find_spec("torchcodec") is None:
        return "torchcodec is not installed"
    try:
        importlib.import_module("torchcodec.decoders")
    except Exception as err:  # ImportError, or OSError/RuntimeError when its FFmpeg libs are missing
        return f"torchcodec is not usable ({error_text(err)})"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device is available to torch"
    return None


def gpu_available() -> bool:
    """True when torchcodec imports and torch sees a CUDA device."""
    return gpu_unavailable_reason() is None


class GpuSource(FrameSource):
    """Frames of a local video file, decoded by NVDEC via ``torchcodec.decoders.VideoDecoder``."""

    def __init__(self, path: str, stride: int = 1, fps: float | None = None):
        super().__init__(stride)
        probed, self._header_frames = probe(path, fps)
        from torchcodec.decoders import VideoDecoder

        try:
            self._decoder = VideoDecoder(path, device="cuda", dimension_order="NHWC")
        except TORCHCODEC_ERRORS as err:
            raise InputError(f"{path}: the GPU decoder cannot read this file ({error_text(err)}); "
                             f"try the pyav decoder", path=path) from None
        metadata = self._decoder.metadata
        # torchcodec >= 0.11 applies the display rotation itself and reports it as
        # metadata.rotation; older versions deliver the stored (unrotated) pixels.
        self._rotation = 0 if hasattr(metadata, "rotation") else probed.rotation
        # Same zero as PyAV and decord: the stream's start time from the container header.
        self._origin = getattr(metadata, "begin_stream_seconds_from_header", None) or 0.0
        self.info = dataclasses.replace(probed, decoder="gpu", frame_count=len(self._decoder))

    def _frames(self) -> Iterator[Frame]:
        count, stride = len(self._decoder), self.stride
        batch = max(1, min(MAX_BATCH, BATCH_BYTES // (self.info.width * self.info.height * 3)))
        for start in range(0, count, batch * stride):
            try:
                frames = self._decoder.get_frames_in_range(start, min(count, start + batch * stride), step=stride)
                images = frames.data.cpu().numpy()
                times = frames.pts_seconds.tolist()
            except TORCHCODEC_ERRORS as err:
                self.stopped_early = f"decode error at frame {start}: {error_text(err)}"
                return
            for k, (image, pts) in enumerate(zip(images, times)):
                yield Frame(index=start + k * stride, pts=pts - self._origin,
                            image=rotate_upright(image, self._rotation))
        self.stopped_early = shortfall_reason(count, self._header_frames)

    def close(self) -> None:
        self._decoder = None  # torchcodec frees the decoder and its GPU memory with the object
