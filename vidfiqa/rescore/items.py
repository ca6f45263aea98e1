"""What `vidfiqa rescore` works through: one item per video.

An item is a YouTube Faces video (frames + labelled face boxes), a folder of frames, or a video
file.  Items are plain, picklable values: they are what Ray ships to its workers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..imageio import IMAGE_SUFFIXES
from ..video.imageseq_source import list_frames, natural_key

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".ts", ".mpg", ".mpeg", ".wmv", ".flv"}


@dataclass(frozen=True)
class VideoItem:
    key: str  # "Person/video" for YTF, else the path relative to the root
    kind: str  # "ytf" | "frames" | "video"
    path: str  # the video file, or the frame folder
    frames: tuple[str, ...] = ()  # frame image paths (ytf, frames), in temporal order
    frame_numbers: tuple[int, ...] = ()  # the number in each frame's name (ytf), else positions
    boxes: tuple[tuple[float, float, float, float] | None, ...] = ()  # labelled face boxes (ytf)

    @property
    def shard_name(self) -> str:
        return hashlib.sha1(self.key.encode()).hexdigest()[:16] + ".parquet"


def find_items(root: str | Path) -> tuple[list[VideoItem], str]:
    """Items under ``root`` (a YTF tree, a folder of videos and/or frame folders, one video, or
    one frame folder) and a one-line description of what was found."""
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root}: no such file or folder", path=root)
    if root.is_file():
        if root.suffix.lower() not in VIDEO_SUFFIXES:
            raise InputError(f"{root}: not a video file ({', '.join(sorted(VIDEO_SUFFIXES))})", path=root)
        return [VideoItem(root.name, "video", str(root))], "1 video file"
    ytf = _ytf_items(root)
    if ytf is not None:
        return ytf
    items = []
    for path in sorted(root.rglob("*"), key=lambda p: natural_key(str(p))):
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
            items.append(VideoItem(path.relative_to(root).as_posix(), "video", str(path)))
    for folder in sorted({p.parent for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}, key=lambda p: natural_key(str(p))):
        frames = list_frames(folder)
        key = folder.relative_to(root).as_posix() if folder != root else root.name
        items.append(VideoItem(key, "frames", str(folder), tuple(map(str, frames)), tuple(range(len(frames))), (None,) * len(frames)))
    if not items:
        raise InputError(f"{root}: no videos or frame folders found", path=root)
    videos = sum(i.kind == "video" for i in items)
    return items, f"{videos} video files, {len(items) - videos} frame folders"


def _ytf_items(root: Path) -> tuple[list[VideoItem], str] | None:
    """YouTube Faces items with their labelled boxes, or None when ``root`` is not a YTF tree."""
    from ..ytf.dataset import read_ytf

    try:
        videos, report = read_ytf(root)
    except InputError:
        return None
    items = [
        VideoItem(v.key, "ytf", str(Path(v.frames[0].path).parent) if v.frames else "", tuple(str(f.path) for f in v.frames),
                  tuple(f.frame_number for f in v.frames), tuple(f.box for f in v.frames))
        for v in videos if v.frames
    ]
    return items, "YouTube Faces: " + report.summary()
