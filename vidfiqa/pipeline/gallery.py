"""The gallery on disk: images, per-track series, ``manifest.json`` and ``index.html``.

Layout of OUT (all paths in the manifest are relative to OUT)::

    manifest.json                       schema "vidfiqa.manifest/1", see docs/manifest.md
    index.html                          static page, no server or network needed
    tracks/0007/track.json              the track's manifest entry, written when it ends
    tracks/0007/quality.csv             frame_index, pts, quality, quality_smoothed, detector_score, box
    tracks/0007/f000123_crop.png        aligned 112x112 crop of a selected frame (lossless)
    tracks/0007/f000123_context.jpg     wider view around the face

Every file is written atomically (temporary file, then rename), and a track's files before the
manifest that lists them, so whenever the process stops the manifest describes finished tracks
whose files exist.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .._version import __version__
from ..atomic import atomic_write_bytes, atomic_write_text
from ..errors import ConfigError
from . import html

SCHEMA = "vidfiqa.manifest/1"
MANIFEST_EVERY_S = 1.0  # rewrite the manifest at most this often while running (always at the end)


def encode_image(image: np.ndarray, ext: str, jpeg_quality: int = 92) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if ext == ".jpg" else []
    ok, data = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OSError(f"could not encode a {ext} image")
    return data.tobytes()


class GalleryWriter:
    """Owns OUT: prepares it, adds finished tracks, keeps the manifest current."""

    def __init__(self, out_dir: str | Path, source: dict[str, Any], settings: dict[str, Any]):
        self.out = Path(out_dir)
        self._prepare()
        self.manifest: dict[str, Any] = {
            "schema": SCHEMA,
            "vidfiqa_version": __version__,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "status": "running",
            "message": None,
            "source": source,
            "settings": settings,
            "stats": {},
            "tracks": [],
        }
        self._plots: dict[int, dict] = {}
        self._last_write = 0.0
        self.write_manifest()

    def _prepare(self) -> None:
        """Refuse to mix a gallery into a folder holding anything else; replace an old gallery."""
        if self.out.exists() and not self.out.is_dir():
            raise ConfigError(f"output {self.out} exists and is not a folder")
        if self.out.is_dir() and any(self.out.iterdir()):
            manifest = self.out / "manifest.json"
            try:
                ours = json.loads(manifest.read_text(encoding="utf-8")).get("schema", "").startswith("vidfiqa.manifest/")
            except (OSError, ValueError, AttributeError):
                ours = False
            if not ours:
                raise ConfigError(f"output folder {self.out} is not empty and holds no vidfiqa gallery; choose an empty or new folder")
            # A gallery from an earlier run: replace it, so no stale track files survive.
            for name in ("tracks", "index.html", "manifest.json"):
                path = self.out / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
        self.out.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ tracks
    def add_track(self, entry: dict[str, Any], selected_images: list[tuple[np.ndarray, np.ndarray]],
                  series: dict[str, np.ndarray] | None) -> dict[str, Any]:
        """Write a finished track's images (and series), then list it in the manifest.

        ``entry`` is the manifest entry without file names; ``selected_images`` holds
        (crop, context) per entry of ``entry["selected"]``.
        """
        track_dir = Path("tracks") / f"{entry['track_id']:04d}"
        (self.out / track_dir).mkdir(parents=True, exist_ok=True)
        for item, (crop, context) in zip(entry["selected"], selected_images):
            stem = track_dir / f"f{item['frame_index']:06d}"
            item["crop"] = f"{stem}_crop.png".replace("\\", "/")
            item["context"] = f"{stem}_context.jpg".replace("\\", "/")
            atomic_write_bytes(self.out / item["crop"], encode_image(crop, ".png"), durable=False)
            atomic_write_bytes(self.out / item["context"], encode_image(context, ".jpg"), durable=False)
        if series is not None:
            entry["series"] = f"{track_dir}/quality.csv".replace("\\", "/")
            atomic_write_text(self.out / entry["series"], series_csv(series))
            self._plots[entry["track_id"]] = html.plot_data(series, entry["selected"])
        atomic_write_text(self.out / track_dir / "track.json", json.dumps(entry, indent=1) + "\n")
        self.manifest["tracks"].append(entry)
        if time.monotonic() - self._last_write >= MANIFEST_EVERY_S:
            self.write_manifest()
        return entry

    # ------------------------------------------------------------------ manifest / page
    def write_manifest(self) -> None:
        self.manifest["tracks"].sort(key=lambda t: t["track_id"])
        atomic_write_text(self.out / "manifest.json", json.dumps(self.manifest, indent=1) + "\n")
        atomic_write_text(self.out / "index.html", html.render(self.manifest, self._plots))
        self._last_write = time.monotonic()

    def finish(self, status: str, message: str | None, stats: dict[str, Any], source_updates: dict[str, Any] | None = None) -> dict:
        self.manifest["status"] = status
        self.manifest["message"] = message
        self.manifest["stats"] = stats
        if source_updates:
            self.manifest["source"].update(source_updates)
        self.write_manifest()
        return self.manifest


def series_csv(series: dict[str, np.ndarray]) -> str:
    columns = ["frame_index", "pts", "quality", "quality_smoothed", "detector_score", "x1", "y1", "x2", "y2"]
    boxes = np.asarray(series["boxes"], np.float64).reshape(-1, 4)
    lines = [",".join(columns)]
    for i in range(len(series["frame_index"])):
        values = [str(int(series["frame_index"][i]))]
        for v in (series["pts"][i], series["quality"][i], series["quality_smoothed"][i], series["detector_score"][i]):
            values.append("" if not math.isfinite(v) else f"{v:.6f}")
        values += [f"{v:.1f}" for v in boxes[i]]
        lines.append(",".join(values))
    return "\n".join(lines) + "\n"
