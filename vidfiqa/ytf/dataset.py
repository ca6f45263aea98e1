"""YouTube Faces (Wolf, Hassner, Maoz, CVPR 2011) frame folders and their face boxes.

Two layouts exist (see ../shared/methods/ytf.md):

* ``frame_images_DB/<Person>/<video>/<video>.<frame>.jpg`` with one
  ``frame_images_DB/<Person>.labeled_faces.txt`` per person, whose lines read
  ``Person\\video\\video.frame.jpg,_,x_centre,y_centre,width,height,_,_``;
* ``aligned_images_DB/<Person>/<video>/aligned_detect_<video>.<frame>.jpg``: crops the dataset
  authors already cut around the face and aligned, so they carry no boxes.

Copies of YTF on disk are rarely perfect: label files go missing, lines get truncated, subsets keep a
person's label file whole while dropping some of the videos (../shared/data/ytf_subset does).
:func:`read_ytf` counts each such mismatch in a :class:`YtfReport` instead of failing, and refuses
only a folder that has no YTF layout at all.  It never opens an image: the folder listing and the
label text are all it needs, so even the full dataset (~620k frames) lists quickly.
"""

from __future__ import annotations

import math
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..errors import ConfigError, InputError
from ..imageio import IMAGE_SUFFIXES

FRAME_DB = "frame_images_DB"
ALIGNED_DB = "aligned_images_DB"
ALIGNED_PREFIX = "aligned_detect_"
LABEL_SUFFIX = ".labeled_faces.txt"
MAX_PROBLEMS = 20

# "<video>.<frame>.<ext>", optionally prefixed with "aligned_detect_": the frame number is the
# second-to-last dot-separated part.
_FRAME_NAME = re.compile(r"^[^.]+\.(\d+)(\.[^.]+)$")

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class YtfFrame:
    """One frame image; ``box`` is (x1, y1, x2, y2) in image pixels, None when unlabelled."""

    path: Path
    frame_number: int
    box: Box | None


@dataclass(frozen=True)
class YtfVideo:
    """One video folder; ``aligned`` videos are the authors' centred crops and have no boxes."""

    person: str
    video: str
    frames: tuple[YtfFrame, ...]
    aligned: bool

    @property
    def key(self) -> str:
        """``"Person/video"``, the form Youtube_names.txt and meta_and_splits.mat use."""
        return f"{self.person}/{self.video}"


@dataclass
class YtfReport:
    """What :func:`read_ytf` found, including everything that did not fit."""

    people: int = 0
    videos: int = 0
    frames: int = 0
    labelled_frames: int = 0
    frames_without_box: int = 0
    boxes_without_frame: int = 0
    malformed_lines: int = 0
    empty_videos: int = 0
    problems: list[str] = field(default_factory=list)

    def note(self, problem: str) -> None:
        """Keep the first :data:`MAX_PROBLEMS` problem lines; the counts carry the rest."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def summary(self) -> str:
        return (f"{_count(self.people, 'person', 'people')}, {_count(self.videos, 'video')}, "
                f"{_count(self.frames, 'frame')} ({self.labelled_frames:,} with boxes); "
                f"{_count(self.malformed_lines, 'malformed label line')}, "
                f"{_count(self.boxes_without_frame, 'label line')} without an image, "
                f"{_count(self.frames_without_box, 'frame')} without a box, "
                f"{_count(self.empty_videos, 'empty video folder')}")


class _Label(NamedTuple):
    box: Box
    line: int


def read_ytf(root: str | os.PathLike) -> tuple[list[YtfVideo], YtfReport]:
    """Every non-empty video under ``root``, sorted by key, and a report of what did not fit.

    ``root`` is the folder holding ``frame_images_DB/`` or ``aligned_images_DB/`` (the former wins
    when both are there, as it has the boxes), one of those folders itself, or one person's folder.
    """
    report = YtfReport()
    videos: list[YtfVideo] = []
    for person_dir in _person_dirs(Path(root)):
        videos.extend(_read_person(person_dir, report))
    videos.sort(key=lambda video: video.key)
    report.people = len({video.person for video in videos})
    report.videos = len(videos)
    report.frames = sum(len(video.frames) for video in videos)
    report.labelled_frames = sum(frame.box is not None for video in videos for frame in video.frames)
    return videos, report


def face_box(frame: YtfFrame, scale: float = 1.0) -> Box | None:
    """The label box scaled about its centre.

    The YTF boxes are tight; a detector run to get landmarks needs context around the face, so
    callers search inside the box scaled by ~1.5-2.  The result may extend past the image.
    """
    if not (math.isfinite(scale) and scale > 0):
        raise ConfigError(f"face box scale must be a positive number, not {scale}")
    if frame.box is None:
        return None
    x1, y1, x2, y2 = frame.box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half_w, half_h = (x2 - x1) * scale / 2, (y2 - y1) * scale / 2
    return (cx - half_w, cy - half_h, cx + half_w, cy + half_h)


def _person_dirs(root: Path) -> list[Path]:
    """The person folders ``root`` stands for; InputError when it has no YTF layout."""
    if not root.is_dir():
        raise InputError(f"{root}: no such folder" if not root.exists() else f"{root}: not a folder", path=root)
    for name in (FRAME_DB, ALIGNED_DB):
        if (root / name).is_dir():
            root = root / name
            break
    if _holds_videos(root):
        return [root]
    people = _subdirs(root)
    if any(_holds_videos(person) for person in people):
        return people
    raise InputError(f"{root}: no YouTube Faces layout found (expected {FRAME_DB}/<Person>/<video>/<video>.<frame>.jpg "
                     f"or {ALIGNED_DB}/<Person>/<video>/{ALIGNED_PREFIX}<video>.<frame>.jpg)", path=root)


def _holds_videos(folder: Path) -> bool:
    """True when a subfolder of ``folder`` holds frame images, i.e. ``folder`` is a person's."""
    for sub in _subdirs(folder):
        with os.scandir(sub) as entries:
            if any(_frame_number(entry.name) is not None for entry in entries):
                return True
    return False


def _subdirs(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        return sorted(Path(entry.path) for entry in entries if entry.is_dir())


def _frame_number(name: str) -> int | None:
    """1841 for ``5.1841.jpg`` or ``aligned_detect_5.1841.jpg``; None for any other file."""
    match = _FRAME_NAME.match(name.removeprefix(ALIGNED_PREFIX))
    if match is None or match.group(2).lower() not in IMAGE_SUFFIXES:
        return None
    return int(match.group(1))


def _list_frames(video_dir: Path) -> list[tuple[int, str]]:
    """(frame number, file name) of the frame images in ``video_dir``, by frame number."""
    with os.scandir(video_dir) as entries:
        names = [entry.name for entry in entries if entry.is_file()]
    numbered = ((_frame_number(name), name) for name in names)
    return sorted((number, name) for number, name in numbered if number is not None)


def _read_person(person_dir: Path, report: YtfReport) -> list[YtfVideo]:
    """The non-empty videos of one person, with boxes from the person's label file."""
    person = person_dir.name
    listings = [(video_dir, _list_frames(video_dir)) for video_dir in _subdirs(person_dir)]
    aligned = any(frames and frames[0][1].startswith(ALIGNED_PREFIX) for _, frames in listings)
    label_path = person_dir.parent / f"{person}{LABEL_SUFFIX}"
    labels = {} if aligned else _read_labels(label_path, report)
    videos = []
    for video_dir, frames in listings:
        if not frames:
            report.empty_videos += 1
            report.note(f"{video_dir}: no frame images")
            continue
        videos.append(_make_video(person, video_dir, frames, labels, aligned, report))
    if labels:
        _report_unmatched(labels, label_path, report)
    return videos


def _make_video(person: str, video_dir: Path, frames: list[tuple[int, str]], labels: dict[str, _Label],
                aligned: bool, report: YtfReport) -> YtfVideo:
    """Build one video, taking its frames' labels out of ``labels`` so that leftovers show."""
    video = video_dir.name
    built = []
    for number, name in frames:
        label = None if aligned else labels.pop(f"{person}/{video}/{name}", None)
        if label is None and not aligned:
            report.frames_without_box += 1
        built.append(YtfFrame(video_dir / name, number, label.box if label else None))
    return YtfVideo(person, video, tuple(built), aligned)


def _read_labels(path: Path, report: YtfReport) -> dict[str, _Label]:
    """``{"Person/video/video.frame.jpg": label}`` from one label file; {} when it is missing."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            lines = handle.readlines()
    except FileNotFoundError:
        report.note(f"{path}: label file missing, so its person's frames have no boxes")
        return {}
    except OSError as err:
        report.note(f"{path}: label file unreadable ({err.strerror or err})")
        return {}
    labels = {}
    for line_number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parsed = _parse_label_line(line)
        if parsed is None:
            report.malformed_lines += 1
            report.note(f"{path}:{line_number}: malformed label line {line.strip()[:80]!r}")
            continue
        key, box = parsed
        labels[key] = _Label(box, line_number)
    return labels


def _parse_label_line(line: str) -> tuple[str, Box] | None:
    """(``"Person/video/video.frame.jpg"``, (x1, y1, x2, y2)) from a centre/size label line, or None."""
    fields = line.strip().split(",")
    if len(fields) < 6:
        return None
    key = fields[0].strip().replace("\\", "/")
    if key.count("/") != 2:
        return None
    try:
        cx, cy, width, height = (float(value) for value in fields[2:6])
    except ValueError:
        return None
    if not all(map(math.isfinite, (cx, cy, width, height))) or width <= 0 or height <= 0:
        return None
    return key, (cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2)


def _report_unmatched(labels: dict[str, _Label], label_path: Path, report: YtfReport) -> None:
    """Count label lines left without an image; a whole absent video folder is one problem line."""
    report.boxes_without_frame += len(labels)
    by_video: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for key, label in labels.items():
        by_video[key.rsplit("/", 1)[0]].append((label.line, key))
    for video_key, items in sorted(by_video.items()):
        items.sort()
        if not (label_path.parent / video_key).is_dir():
            report.note(f"{label_path}:{items[0][0]}: {_count(len(items), 'label line')} "
                        f"for {video_key}, whose folder is absent")
            continue
        for line_number, key in items:
            report.note(f"{label_path}:{line_number}: image {key} is missing")


def _count(number: int, singular: str, plural: str | None = None) -> str:
    return f"{number:,} {singular if number == 1 else plural or singular + 's'}"
