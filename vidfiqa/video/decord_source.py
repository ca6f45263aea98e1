"""Decoding with decord: local files, read in batches of frame indices.

decord indexes the whole file when it opens it and returns RGB directly, which makes strided and
batched reading simple.  It accepts some non-videos (it opens a text file as a one-frame video), so
the file is first validated and described by PyAV.  decord (>= 0.4) applies the display rotation
itself, in the same direction as the PyAV backend; on some rotated clips (small widths) it returns
frames of the wrong shape or fails, which is why the first frame is checked when opening.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Iterator

import decord
import numpy as np

from ..errors import InputError
from .pyav_source import probe
from .source import Frame, FrameSource, one_line, shortfall_reason

# Frames per get_batch call are chosen to keep one batch under this many bytes of RGB.
BATCH_BYTES = 128 * 1024 * 1024
MAX_BATCH = 64
DECORD_ERRORS = (decord.DECORDError, RuntimeError)
# decord prefixes its messages with "[hh:mm:ss] /path/of/its/source.cc:123: ", sometimes nested;
# users need the rest.
_DECORD_LOG_PREFIX = re.compile(r"^(\[[\d:]+\] \S+:\d+: )+(Error: )?")


class DecordSource(FrameSource):
    """Frames of a local video file, decoded by decord."""

    def __init__(self, path: str, stride: int = 1, fps: float | None = None, threads: int = 0):
        super().__init__(stride)
        probed, self._header_frames = probe(path, fps)
        try:
            self._reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=threads)
        except DECORD_ERRORS as err:
            raise InputError(f"{path}: decord cannot read this file ({_decord_error_text(err)}); "
                             f"try the pyav decoder", path=path) from None
        self.info = dataclasses.replace(probed, decoder="decord", frame_count=len(self._reader))
        self._check_first_frame()

    def _check_first_frame(self) -> None:
        """Refuse files decord decodes to frames of the wrong size (it has bugs with rotation)."""
        path, expected = self.info.uri, (self.info.height, self.info.width, 3)
        try:
            shape = self._reader.get_batch([0]).shape
        except DECORD_ERRORS as err:
            raise InputError(f"{path}: decord cannot decode this file ({_decord_error_text(err)}); "
                             f"try the pyav decoder", path=path) from None
        if tuple(shape[1:]) != expected:
            raise InputError(f"{path}: decord decodes this file to {shape[2]}x{shape[1]}x{shape[3]} frames "
                             f"instead of {expected[1]}x{expected[0]} RGB; try the pyav decoder", path=path)

    def _frames(self) -> Iterator[Frame]:
        reader, info = self._reader, self.info
        wanted = range(0, len(reader), self.stride)
        batch = max(1, min(MAX_BATCH, BATCH_BYTES // (info.width * info.height * 3)))
        for start in range(0, len(wanted), batch):
            indices = list(wanted[start:start + batch])
            images, error = self._read(indices)
            times = reader.get_frame_timestamp(indices[:len(images)])[:, 0] if len(images) else []
            # Each image is a view into its batch: no copy, at the price of the batch staying in
            # memory while any of its frames is referenced.
            for index, image, pts in zip(indices, images, times):
                pts = float(pts) if math.isfinite(pts) else math.nan
                self.frames_read = index + 1
                yield Frame(index=index, pts=pts, image=image)
            if error:
                self.stopped_early = error
                return
        self.frames_read = len(reader)  # the stride's skipped frames at the end count as read
        self.stopped_early = shortfall_reason(len(reader), self._header_frames)

    def _read(self, indices: list[int]) -> tuple[np.ndarray | list[np.ndarray], str | None]:
        """The frames at ``indices``, or those before the first undecodable one and the reason.

        A damaged frame fails the whole batch, and decord decodes nothing after it, so the batch
        is read again frame by frame to keep the frames before the damage.
        """
        try:
            return self._reader.get_batch(indices).asnumpy(), None
        except DECORD_ERRORS:
            pass
        images = []
        for index in indices:
            try:
                images.append(self._reader.get_batch([index]).asnumpy()[0])
            except DECORD_ERRORS as err:
                return images, f"decode error at frame {index}: {_decord_error_text(err)}"
        return images, None

    def close(self) -> None:
        # decord has no close(); dropping the reader releases the file and decoder threads.
        self._reader = None


def _decord_error_text(err: BaseException) -> str:
    return one_line(_DECORD_LOG_PREFIX.sub("", " ".join(str(err).split())))
