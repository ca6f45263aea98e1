"""The main stream: full-size frames fetched only where a pick needs them.

Cameras send a small substream and a full-size main stream.  The pipeline analyses the small one;
once a track's picks are chosen, the main stream is decoded only from the keyframe before each
pick to the pick (select/recut.py cuts the faces from those frames).  Two sources of main frames:

* :class:`MainRecording`: a recording of the main stream beside the analysed one (`vidfiqa run
  SUB --main MAIN`): it seeks to the keyframe before each pick;
* ``MainRing`` (live/main_ring.py): a camera's main stream, demuxed but not decoded, its packets
  in a bounded ring.

Both give, for each time asked (seconds on the analysed stream's clock), the decoded frames
around it: the nearest and ``neighbours`` on each side, so that the cut can confirm which of
them matches the analysed face (the two streams' clocks agree only roughly).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence

import av
import numpy as np

from ..errors import InputError
from .pyav_source import error_text


class MainFrame:
    """One decoded main-stream frame; converted to RGB only when ``image`` is first asked for
    (the cut looks at the nearest frame first and at its neighbours only when it must)."""

    __slots__ = ("time", "index", "_frame", "_image")

    def __init__(self, frame: "av.VideoFrame | np.ndarray", time: float, index: int):
        self.time = time  # seconds on the analysed stream's clock
        self.index = index  # frame number in the main stream (of this connection, for a camera)
        self._frame = frame
        self._image: np.ndarray | None = frame if isinstance(frame, np.ndarray) else None

    @property
    def image(self) -> np.ndarray:
        """RGB, full size."""
        if self._image is None:
            frame = self._frame
            assert not isinstance(frame, np.ndarray)
            self._image = frame.to_ndarray(format="rgb24")
        return self._image


@dataclass(frozen=True)
class MainLookup:
    """The main frames around one asked time, nearest first; or why there are none."""

    frames: list[MainFrame]
    reason: str | None = None  # set when ``frames`` is empty


class MainFrames(Protocol):
    """Where the main-stream frames come from (see the module docstring)."""

    size: tuple[int, int] | None  # width, height of the main frames (None: not known yet)

    def around(self, times: Sequence[float], neighbours: int) -> list[MainLookup]:
        """For each of ``times``: the decoded frames within ``neighbours`` frame intervals."""

    def close(self) -> None:
        """Let go of the decoder and the file or connection."""


def nearest_first(frames: list[MainFrame], time: float, neighbours: int) -> list[MainFrame]:
    """The ``2 * neighbours + 1`` frames nearest ``time``, nearest first."""
    return sorted(frames, key=lambda f: abs(f.time - time))[: 2 * neighbours + 1]


class MainRecording:
    """Main frames from a recording of the main stream (a file, or anything PyAV seeks in).

    Its time zero is its first frame's time, as the analysed recording's is (pyav_source.py):
    two recordings of one camera started together agree to within a frame or so; ``offset_s``
    shifts the main one when they do not (main time = analysed time + offset).
    """

    # Seek instead of decoding forward when the next asked time is further ahead than this: a
    # camera's keyframe interval is 1-4 s, so decoding on is never worse than a seek below it.
    SEEK_AHEAD_S = 4.0

    def __init__(self, path: str, offset_s: float = 0.0, threads: int = 0):
        try:
            self._container = av.open(str(path), "r")
            streams = [s for s in self._container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
            if not streams:
                raise InputError(f"{path}: --main holds no video stream", path=path)
            self._stream = streams[0]
        except av.FFmpegError as err:
            raise InputError(f"{path}: --main cannot be opened ({error_text(err)})", path=path) from None
        except OSError as err:
            raise InputError(f"{path}: --main cannot be opened ({err.strerror or err})", path=path) from None
        self.path = str(path)
        self._stream.thread_type = "AUTO"
        if threads:
            self._stream.codec_context.thread_count = threads
        self.size: tuple[int, int] | None = (self._stream.codec_context.width, self._stream.codec_context.height)
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.interval = float(1 / rate) if rate else 1 / 25
        tb = self._stream.time_base
        self._time_base = float(tb) if tb is not None else None
        self._origin = float(self._stream.start_time * tb) if self._stream.start_time is not None and tb is not None else None
        self.offset_s = offset_s
        self._decoded: Iterator[av.VideoFrame] | None = None  # the frames from the current position on
        # Frames decoded last, still in YUV (converted only when returned): (time, index, frame).
        self._window: deque[tuple[float, int, av.VideoFrame]] = deque()
        self._position = -1e18  # time of the last frame decoded
        self._ended = False

    def _seek(self, time: float) -> None:
        target = time + self.offset_s - 2 * self.interval  # a little before: the frame may sit on a keyframe
        if self._time_base and self._origin is not None:
            self._container.seek(max(0, int((target + self._origin) / self._time_base)), stream=self._stream, backward=True)
        else:
            self._container.seek(0)
        self._decoded = self._container.decode(self._stream)
        self._window.clear()
        self._position = -1e18
        self._ended = False

    def _decode_next(self) -> None:
        """One more frame into the window (or the end noted)."""
        assert self._decoded is not None
        try:
            frame = next(self._decoded)
        except (StopIteration, av.FFmpegError, OSError):
            self._ended = True
            return
        if frame.pts is None or frame.time_base is None:
            return
        if self._origin is None:
            self._origin = float(frame.pts * frame.time_base)
        time = float(frame.pts * frame.time_base) - self._origin - self.offset_s
        self._position = time
        self._window.append((time, int(round(time / self.interval)), frame))

    def around(self, times: Sequence[float], neighbours: int) -> list[MainLookup]:
        reach = (neighbours + 0.5) * self.interval
        found: dict[int, MainLookup] = {}
        for i in sorted(range(len(times)), key=lambda k: times[k]):
            time = float(times[i])
            if time != time:
                found[i] = MainLookup([], "the pick has no timestamp")
                continue
            # The window must reach back to time - reach: decode on from here when the time is
            # ahead and near, seek (to the keyframe before it) otherwise.
            covered = bool(self._window) and self._window[0][0] <= time - reach
            near_ahead = self._decoded is not None and self._position < time + reach and time - self._position <= self.SEEK_AHEAD_S
            if not (covered or near_ahead) or self._decoded is None:
                self._seek(time)
            while not self._ended and self._position < time + reach:
                self._decode_next()
                while len(self._window) > 2 * neighbours + 2 and self._window[0][0] < time - reach:
                    self._window.popleft()
            near = [MainFrame(f, t, k) for t, k, f in self._window if abs(t - time) <= reach]
            if near:
                found[i] = MainLookup(nearest_first(near, time, neighbours))
            elif self._ended and self._position < time:
                found[i] = MainLookup([], f"the main recording ends before {time:.2f} s")
            else:
                found[i] = MainLookup([], f"no main frame within {reach:.3f} s of {time:.2f} s")
        return [found[i] for i in range(len(times))]

    def close(self) -> None:
        self._window.clear()
        self._decoded = None
        self._container.close()
