"""A folder of frame images read as a video (YouTube Faces, exported frame dumps).

Frames are ordered naturally, by the numbers in their names (``1.10.jpg`` after ``1.9.jpg``),
because frame dumps rarely zero-pad.  A folder of images has no decoder state to corrupt, so an
unreadable file is skipped (and counted in :attr:`FrameSource.skipped`) instead of ending
the sequence; only frames picked by the stride are ever read.  Frames are resized to the size of
the first readable image if they differ (see :func:`~vidfiqa.video.source.fit_size`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import InputError
from ..imageio import IMAGE_SUFFIXES, load_image
from .source import Frame, FrameSource, VideoInfo, fit_size

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that compares digit runs as numbers: "5.1841.jpg" < "5.10000.jpg".

    ``re.split`` with a capturing group alternates text, number, text..., so positions always
    hold the same type and tuples compare without mixing str and int.
    """
    parts = _DIGITS.split(name)
    return tuple(int(part) if i % 2 else part.lower() for i, part in enumerate(parts))


def _entries(folder: Path) -> list[Path]:
    """The folder's entries; an unreadable folder is an input error (exit 2) that says why: it
    was reported as an output error (exit 4) before."""
    try:
        return list(folder.iterdir())
    except OSError as err:
        raise InputError(f"{folder}: cannot read folder ({err.strerror or err})", path=folder) from None


def list_frames(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, in natural order; InputError when there are none."""
    entries = _entries(folder)
    files = sorted((p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: natural_key(p.name))
    if files:
        return files

    def holds_images(sub: Path) -> bool:
        try:
            return any(q.suffix.lower() in IMAGE_SUFFIXES for q in sub.iterdir())
        except OSError:
            return False

    nested = sorted((p for p in entries if p.is_dir() and holds_images(p)), key=lambda p: natural_key(p.name))
    if nested:
        raise InputError(f"{folder}: no images directly in this folder; each subfolder is a separate frame "
                         f"sequence, pass one of them (e.g. {nested[0]})", path=folder)
    raise InputError(f"{folder}: folder contains no images ({', '.join(sorted(IMAGE_SUFFIXES))})", path=folder)


def frame_numbers(paths: list[Path]) -> list[int] | None:
    """The frame number each name ends with ("5.1841.jpg" -> 1841), if every name has one and
    they increase; else None.  Dumps that skip frames (YouTube Faces does) keep their timing."""
    numbers = []
    for path in paths:
        digits = _DIGITS.findall(path.stem)
        if not digits:
            return None
        numbers.append(int(digits[-1]))
    return numbers if all(b > a for a, b in zip(numbers, numbers[1:])) else None


class ImageSequenceSource(FrameSource):
    """Frames from the images of one folder.

    ``pts`` is (frame number - first frame number) / ``fps`` when the names end in increasing frame
    numbers, else ``index / fps``; NaN without ``fps``.
    """

    def __init__(self, folder: str, stride: int = 1, fps: float | None = None):
        super().__init__(stride)
        self.paths = list_frames(Path(folder))
        self._fps = fps
        self._numbers = frame_numbers(self.paths)
        self._first_index, first = self._first_readable()
        self._first: np.ndarray | None = first  # dropped by close()
        height, width = first.shape[:2]
        count = len(self.paths)
        self.info = VideoInfo(uri=folder, decoder="images", width=width, height=height, fps=fps,
                              frame_count=count, duration_s=count / fps if fps else None,
                              rotation=0, codec=None, is_live=False)

    def _first_readable(self) -> tuple[int, np.ndarray]:
        """The first image that loads: it fixes the frame size of the whole sequence."""
        reasons = []
        for index, path in enumerate(self.paths):
            try:
                return index, load_image(path).pixels
            except InputError as err:
                reasons.append(str(err))
        raise InputError(f"{self.paths[0].parent}: none of its {len(self.paths)} images is readable "
                         f"(first: {reasons[0]})", path=self.paths[0].parent)

    def _frames(self) -> Iterator[Frame]:
        height, width = self.info.height, self.info.width
        for index in range(0, len(self.paths), self.stride):
            if index == self._first_index and self._first is not None:
                image = self._first
            else:
                try:
                    image = load_image(self.paths[index]).pixels
                except InputError as err:
                    self.skipped += 1
                    self.skipped_files.append(str(err))  # "path: reason", as `vidfiqa faces` names them
                    continue
            position = self._numbers[index] - self._numbers[0] if self._numbers else index
            pts = position / self._fps if self._fps else math.nan
            self.frames_read = index + 1
            yield Frame(index=index, pts=pts, image=np.ascontiguousarray(fit_size(image, width, height)))
        self.frames_read = len(self.paths)

    def close(self) -> None:
        self._first = None  # nothing else is held open between frames
