"""Decoding with PyAV (FFmpeg): files of any container/codec FFmpeg knows, and network streams.

This is the default backend because it opens everything (RTSP cameras, HTTP, odd containers),
exposes exact per-frame timestamps (right for variable-frame-rate phone video) and the display
rotation, and lets us convert to RGB only the frames we keep: with ``stride > 1`` every frame must
still be decoded (inter-coded video references its neighbours), but the RGB conversion, which costs
about as much as the decoding, is skipped for frames that are dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from itertools import chain
from pathlib import Path
from typing import Generator, Iterator

import av
import cv2
import numpy as np

from ..errors import InputError
from .shots import THUMB_H, THUMB_W, SceneCutDetector, yuv_thumbnail
from .source import (
    Frame,
    FrameSource,
    VideoInfo,
    clockwise_from_display,
    error_text,
    fit_size,
    is_live_url,
    is_url,
    rotate_upright,
    rotated_size,
    shortfall_reason,
)

# Give up on a network source that sends nothing for this long (a dead camera must not hang us).
NETWORK_TIMEOUT_S = 10.0
# RTSP over TCP: UDP loses packets (smeared frames) on busy networks and is blocked by many NATs.
# FFmpeg >= 5 calls the socket I/O timeout "timeout" (microseconds); "stimeout" no longer exists.
RTSP_DEFAULT_OPTIONS = {"rtsp_transport": "tcp", "timeout": str(int(NETWORK_TIMEOUT_S * 1e6))}
# This many rejected packets in a row means the rest of the input is not video any more.
MAX_CONSECUTIVE_BAD_PACKETS = 25


@dataclass
class PendingFrame:
    """A decoded frame before RGB conversion; :meth:`convert` gives the upright RGB ``Frame``
    (None when FFmpeg cannot convert it, with the reason in ``error``)."""

    index: int
    pts: float
    decoded: av.VideoFrame
    stored_size: tuple[int, int]  # width, height as stored (before rotation)
    rotation: int
    error: str | None = None
    thumbnails: tuple | None = None  # see Frame.thumbnails

    @property
    def size(self) -> tuple[int, int]:
        """Width, height of the converted (upright) image."""
        return rotated_size(*self.stored_size, self.rotation)

    def convert(self) -> Frame | None:
        try:
            image = self.decoded.to_ndarray(format="rgb24")
        except (av.FFmpegError, ValueError) as err:
            self.error = f"cannot convert frame {self.index} to RGB: {error_text(err)}"
            return None
        image = rotate_upright(fit_size(image, *self.stored_size), self.rotation)
        return Frame(index=self.index, pts=self.pts, image=image, thumbnails=self.thumbnails)


class PyAVSource(FrameSource):
    """Frames of one video stream, decoded by FFmpeg through PyAV."""

    def __init__(self, uri: str, stride: int = 1, fps: float | None = None, threads: int = 0,
                 options: dict[str, str] | None = None, timeout: float | tuple[float, float] | None = None,
                 video_stream: int | None = None):
        """``timeout``: for URLs, seconds to wait for the connection and for each read
        (a number, or (open, read)); default NETWORK_TIMEOUT_S.  ``video_stream``: the
        container's stream index to read (default: the largest video stream)."""
        super().__init__(stride)
        self._live = is_live_url(uri)
        self._container = _open_container(uri, options, timeout)
        try:
            self._stream = _video_stream(self._container, uri, video_stream)
            self._stream.thread_type = "AUTO"  # frame + slice threads
            self._stream.codec_context.thread_count = threads  # 0: FFmpeg picks from the CPU count
            self._decoded = self._decode_all()
            # Decode the first frame now: it proves the input is decodable, and the rotation is
            # only exposed on decoded frames (PyAV has no reader for the stream's display matrix).
            first = next(self._decoded, None)
            if first is None:
                reason = f" ({self.stopped_early})" if self.stopped_early else ""
                if not is_url(uri) and Path(uri).exists() and not Path(uri).is_file():
                    # MP4/MOV readers seek (to the index, between tracks): a pipe cannot.
                    reason += "; through a pipe, send a stream format such as MPEG-TS or Matroska, or pass the file itself"
                raise InputError(f"{uri}: no video frame could be decoded{reason}", path=uri)
        except BaseException:
            self._container.close()
            raise
        self._first = first
        # The frame count the container header states (0 there: it states none), unlike
        # info.frame_count, which may be estimated from duration and rate.
        self.header_frames = self._stream.frames or None
        self.info = self._describe(uri, first, fps)

    def _describe(self, uri: str, first: av.VideoFrame, fps_fallback: float | None) -> VideoInfo:
        stream = self._stream
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else fps_fallback
        duration = None
        if not self._live:
            if stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            elif self._container.duration:
                duration = self._container.duration / av.time_base
        frame_count = None
        if not self._live:
            frame_count = stream.frames or (round(duration * fps) if duration and fps else None)
        rotation = clockwise_from_display(first.rotation)
        width, height = rotated_size(first.width, first.height, rotation)
        return VideoInfo(uri=uri, decoder="pyav", width=width, height=height, fps=fps,
                         frame_count=frame_count, duration_s=duration, rotation=rotation,
                         codec=stream.codec_context.name,
                         is_live=self._live or (is_url(uri) and duration is None),  # e.g. live HLS
                         stream_index=stream.index,
                         video_streams=len(_moving_pictures(self._container)))

    def _decode_all(self) -> Generator[av.VideoFrame, None, None]:
        """Every decodable frame, in order.

        A packet the decoder rejects as invalid is skipped (counted in ``skipped``): damage is
        usually local and the decoder resynchronises at the next keyframe.  A read error, any
        other decoder error, or a long run of rejected packets (the rest is garbage) ends the
        stream, with the reason in ``stopped_early``.
        """
        packets = self._container.demux(self._stream)
        decoded = failures = 0
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.FFmpegError, OSError) as err:
                self.stopped_early = f"read error after frame {decoded}: {error_text(err)}"
                return
            try:
                frames = self._stream.decode(packet)
            except av.InvalidDataError as err:
                self.skipped += 1
                failures += 1
                if failures >= MAX_CONSECUTIVE_BAD_PACKETS:
                    self.stopped_early = f"undecodable data from frame {decoded} on: {error_text(err)}"
                    return
                continue
            except (av.FFmpegError, OSError, ValueError) as err:
                self.stopped_early = f"decode error at frame {decoded}: {error_text(err)}"
                return
            failures = 0
            for frame in frames:
                decoded += 1
                yield frame

    def _frames(self) -> Iterator[Frame]:
        for pending in self.pending():
            frame = pending.convert()
            if frame is None:
                self.stopped_early = pending.error
                return
            yield frame

    def pending(self) -> Iterator["PendingFrame"]:
        """The frames as decoded, not yet converted to RGB: a live reader queues these (YUV 4:2:0
        is half the size of RGB) and the analysis converts only the frames it does not drop."""
        origin = self._time_origin(self._first)
        self._origin_s = float(origin)
        info = self.info
        stored_width, stored_height = rotated_size(info.width, info.height, info.rotation)  # undo the swap
        index = -1
        between: list[np.ndarray] = []
        for index, frame in enumerate(chain([self._first], self._decoded)):
            self.frames_read = index + 1
            if self.thumbnails:
                between.append(self._thumbnail(frame, info.rotation))
            if index % self.stride:
                continue  # decoded (later frames depend on it) but never converted
            if frame.pts is not None and frame.time_base is not None:
                pts = float(frame.pts * frame.time_base - origin)
            else:
                pts = index / info.fps if info.fps else math.nan
            thumbs = tuple(between) if self.thumbnails else None
            between = []
            yield PendingFrame(index, pts, frame, (stored_width, stored_height), info.rotation, thumbnails=thumbs)
        if self.stopped_early is None and info.is_live:
            # A live stream has no end of its own: it ending is the server closing it or going
            # away (killed, rebooted, a dropped link), not a complete input.
            self.stopped_early = f"the stream ended after {index + 1} frames: the server closed it or went away"
        elif self.stopped_early is None and not self._skipping_nonreference:
            # (Frames skipped as unreferenced are never counted: no shortfall can be told then.)
            self.stopped_early = shortfall_reason(index + 1 + self.skipped, self.header_frames)

    #: Give each frame the shot-cut thumbnails of the frames the stride skipped before it (and its
    #: own), so the cut detector sees every frame (`vidfiqa run` turns this on under a stride).
    thumbnails = False
    _skipping_nonreference = False  # set once any frame may have been skipped as unreferenced

    @staticmethod
    def _thumbnail(frame: av.VideoFrame, rotation: int) -> np.ndarray:
        thumb = yuv_thumbnail(frame)
        if thumb is None:  # another pixel format: the slow way, from the converted frame
            thumb = SceneCutDetector._thumbnail(frame.to_ndarray(format="rgb24"))
        if rotation:
            thumb = cv2.resize(rotate_upright(thumb, rotation), (THUMB_W, THUMB_H), interpolation=cv2.INTER_AREA)
        return thumb

    def skip_nonreference(self, skip: bool) -> None:
        """Have FFmpeg skip frames no other frame refers to (the B-frames of most encodes): they
        cost decoding time but a reader that keeps only some frames (a camera analysed at 5 of
        its 25 frames a second) can do without them.  Reference frames decode exactly as before;
        a stream without such frames is unaffected.  Takes effect from the next packet."""
        self._stream.codec_context.skip_frame = "NONREF" if skip else "DEFAULT"
        self._skipping_nonreference = self._skipping_nonreference or skip

    def _time_origin(self, first: av.VideoFrame) -> Fraction:
        """Zero of ``Frame.pts``: the stream's start time (as decord and players count), or the
        first frame's time when the container does not say (live streams)."""
        stream = self._stream
        if stream.start_time is not None and stream.time_base is not None:
            return Fraction(stream.start_time) * stream.time_base
        if first.pts is not None and first.time_base is not None:
            return Fraction(first.pts) * first.time_base
        return Fraction(0)

    _origin_s = 0.0

    def wall_clock(self, pts: float) -> float | None:
        """The camera's wall-clock time (Unix seconds) of a frame at ``pts`` (seconds, as frames
        carry it), where the stream says it: an RTSP camera's RTCP sender reports give FFmpeg the
        wall-clock time of its stream's zero (after the first report, a few seconds in).  None
        otherwise."""
        start = self._container.start_time_realtime
        if start is None:
            return None
        return start / 1e6 + pts + self._origin_s

    def close(self) -> None:
        self._decoded.close()
        self._container.close()


def probe(path: str, fps: float | None = None) -> tuple[VideoInfo, int | None]:
    """Validate ``path`` and describe it by opening it with PyAV: its info, and the frame count
    its container header states (None when it states none; used to detect truncation).

    The other file backends use this for the checks they lack and for uniform error messages.
    """
    with PyAVSource(path, fps=fps, threads=1) as source:
        return source.info, source.header_frames


def _open_container(uri: str, options: dict[str, str] | None, timeout=None) -> av.container.InputContainer:
    """``av.open`` with network defaults; every failure becomes a one-line InputError."""
    kwargs: dict = {"mode": "r"}
    if is_url(uri):
        defaults = RTSP_DEFAULT_OPTIONS if uri.lower().startswith(("rtsp://", "rtsps://")) else {}
        kwargs["options"] = {**defaults, **(options or {})}
        kwargs["timeout"] = timeout or NETWORK_TIMEOUT_S  # PyAV's own guard, whatever the protocol
    else:
        _check_file(uri)
        if options:
            kwargs["options"] = dict(options)
    try:
        return av.open(uri, **kwargs)
    except av.InvalidDataError:
        if is_url(uri):  # a stream that sends nothing (or garbage) before the timeout
            raise InputError(f"{uri}: cannot open: no valid video data (timed out, or not a video stream)", path=uri) from None
        raise InputError(_not_a_video_message(uri), path=uri) from None
    except (av.FFmpegError, OSError, ValueError) as err:
        raise InputError(f"{uri}: cannot open ({error_text(err)})", path=uri) from None


def _check_file(path: str) -> None:
    """The checks FFmpeg would report cryptically, done first with plain messages."""
    file = Path(path)
    if not file.exists():
        raise InputError(f"{path}: no such file", path=path)
    if file.is_dir():
        raise InputError(f"{path}: is a directory (a folder of frames is read by the images decoder)", path=path)
    if not file.is_file():
        return  # a named pipe or a device: read as a stream (its size says nothing)
    if file.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)", path=path)


def _not_a_video_message(uri: str) -> str:
    if _starts_like_mp4(uri):
        return (f"{uri}: damaged MP4/MOV: its index (moov atom) is missing, as when a recording or "
                f"copy is cut off before the end; FFmpeg cannot read it")
    return f"{uri}: not a video file FFmpeg can read (invalid data)"


def _starts_like_mp4(path: str) -> bool:
    """MP4/MOV files begin with an ``ftyp`` box (or ``mdat``/``free``/``wide`` in old QuickTime)."""
    if not Path(path).is_file():
        return False  # reading a pipe would take the bytes FFmpeg already tried
    try:
        with open(path, "rb") as file:
            return file.read(8)[4:8] in (b"ftyp", b"mdat", b"free", b"wide", b"moov")
    except OSError:
        return False


def _moving_pictures(container: av.container.InputContainer) -> list[av.VideoStream]:
    """The container's video streams that are video (cover art is a one-picture stream)."""
    return [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]


def _video_stream(container: av.container.InputContainer, uri: str, index: int | None = None) -> av.VideoStream:
    """The video stream to read: stream ``index`` of the container, or else the largest one
    (FFmpeg's "best" among equals: a file whose first stream is a 160x120 placeholder must not be
    read for its placeholder); refuse still images and files with only audio (cover art aside)."""
    if container.format.name == "image2" or container.format.name.endswith("_pipe"):
        raise InputError(f"{uri}: is a still image, not a video (use `vidfiqa score` for photos)", path=uri)
    videos = _moving_pictures(container)
    if not videos:
        kinds = sorted({s.type for s in container.streams})
        held = f" (it holds only {', '.join(kinds)})" if kinds else ""
        raise InputError(f"{uri}: has no video stream{held}", path=uri)
    if index is not None:
        chosen = [s for s in videos if s.index == index]
        if not chosen:
            listed = ", ".join(f"{s.index} ({s.codec_context.width}x{s.codec_context.height})" for s in videos)
            raise InputError(f"{uri}: has no video stream {index}; its video streams are {listed}", path=uri)
        return chosen[0]
    best = container.streams.best("video")
    return max(videos, key=lambda s: ((s.codec_context.width or 0) * (s.codec_context.height or 0), s is best))
