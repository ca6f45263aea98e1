"""The gallery of `vidfiqa run`: images, per-track series, ``manifest.json`` and ``index.html``.

Layout of OUT (all paths in the manifest are relative to OUT)::

    manifest.json                       schema "vidfiqa.manifest/2", see docs/manifest.md
    index.html                          static page, no server or network needed
    tracks/0007/track.json              the track's manifest entry, written when it ends
    tracks/0007/quality.csv             frame_index, pts, quality, quality_smoothed, detector_score, box
    tracks/0007/f000123_crop.png        aligned 112x112 crop of a selected frame (lossless)
    tracks/0007/f000123_context.jpg     wider view around the face

Every file is written atomically (temporary file, then rename), and a track's files before the
manifest that lists them, so whenever the process stops the manifest describes finished tracks
whose files exist.  The persons are the end-of-track chain's (``select/chain.py``
``InputPersons``), linked over the whole input; the gallery only writes them down.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path
from typing import Any

from .._version import __version__
from ..atomic import atomic_write_bytes, atomic_write_text, overwrite_in_place
from ..errors import ConfigError, OutputError
from ..export import html
from ..export.entries import native_face_of, selected_fields, series_csv, template_record, track_entry
from ..export.images import encode_image, pick_images
from ..export.manifest import SCHEMA
from ..select.chain import InputPersons, TrackRecord

MANIFEST_EVERY_S = 1.0  # rewrite the manifest at most this often while running (always at the end)


class GallerySink:
    """Owns OUT: prepares it, writes every finished track, keeps the manifest current."""

    name = "gallery"

    def __init__(self, out_dir: str | Path, source: dict[str, Any], settings: dict[str, Any], persons: InputPersons,
                 write_series: bool = True):
        self.out = Path(out_dir)
        self.write_series = write_series
        self.persons = persons
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
            "persons": [],
            "tracks": [],
            "rejected": [],
        }
        self._plots: dict[int, dict] = {}
        self._last_write = 0.0
        self.persons_s = 0.0  # seconds spent linking tracks into persons, over every manifest write
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
                try:
                    if path.is_dir():
                        shutil.rmtree(path)
                    elif path.exists():
                        path.unlink()
                except OSError as err:
                    raise OutputError.of(err, path) from err
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError.of(err, self.out) from err

    # ------------------------------------------------------------------ tracks
    def emit(self, record: TrackRecord) -> None:
        """Write a finished track's images (and series), then list it in the manifest."""
        result = record.result
        track_dir = Path("tracks") / f"{result.track_id:04d}"
        try:
            (self.out / track_dir).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError.of(err, self.out / track_dir) from err
        selected = selected_fields(result)
        for item, (crop, context) in zip(selected, pick_images(result)):
            stem = (track_dir / f"f{item['frame_index']:06d}").as_posix()
            item["crop"], item["context"] = f"{stem}_crop.png", f"{stem}_context.jpg"
            atomic_write_bytes(self.out / item["crop"], encode_image(crop, ".png"), durable=False)
            atomic_write_bytes(self.out / item["context"], encode_image(context, ".jpg"), durable=False)
            native = native_face_of(result, item["rank"] - 1)
            if native is not None:  # cut from the main stream: the face at its own resolution
                item["face"] = f"{stem}_face.jpg"
                atomic_write_bytes(self.out / item["face"], native, durable=False)
        entry = track_entry(result, selected)
        if record.accepted:
            entry["person_id"] = None  # set when the persons are (re)grouped
        else:
            entry["reason"] = record.rejected
        if self.write_series:
            entry["series"] = f"{track_dir.as_posix()}/quality.csv"
            atomic_write_text(self.out / entry["series"], series_csv(result))
            self._plots[result.track_id] = html.plot_data(result.series, selected)
        atomic_write_text(self.out / track_dir / "track.json", json.dumps(entry, indent=1, allow_nan=False) + "\n")
        self.manifest["tracks" if record.accepted else "rejected"].append(entry)
        if time.monotonic() - self._last_write >= MANIFEST_EVERY_S:
            self.write_manifest()

    def close(self) -> None:
        """The run's end writes the manifest (:meth:`finish`, with its status): nothing to do here."""

    def summary(self) -> None:
        return None

    # ------------------------------------------------------------------ manifest / page
    def write_manifest(self) -> None:
        self.manifest["tracks"].sort(key=lambda t: t["track_id"])
        self.manifest["rejected"].sort(key=lambda t: t["track_id"])
        started = time.perf_counter()
        self.manifest["persons"] = self._persons()
        self.persons_s += time.perf_counter() - started
        stage_seconds = self.manifest["stats"].get("stage_seconds")
        if isinstance(stage_seconds, dict):  # the final write: the time all groupings took
            stage_seconds["persons"] = round(self.persons_s, 4)
        text = json.dumps(self.manifest, indent=1, allow_nan=False) + "\n"
        try:
            atomic_write_text(self.out / "manifest.json", text)
        except OutputError:
            if self.manifest["status"] == "running" or not (self.out / "manifest.json").is_file():
                raise
            # The last word of a run that failed (a full disk, usually): the manifest must not
            # stay "running", so it is rewritten in place, compact, and only if it fits in the
            # blocks the old one frees (a half-written manifest would be worse than a stale one).
            compact = json.dumps(self.manifest, separators=(",", ":"), allow_nan=False) + "\n"
            if len(compact.encode()) > (self.out / "manifest.json").stat().st_blocks * 512:
                raise
            overwrite_in_place(self.out / "manifest.json", compact)
        atomic_write_text(self.out / "index.html", html.render(self.manifest, self._plots))
        self._last_write = time.monotonic()

    def _persons(self) -> list[dict[str, Any]]:
        """The chain's persons so far as manifest entries; sets each track's ``person_id``."""
        tracks = {t["track_id"]: t for t in self.manifest["tracks"]}
        people = self.persons.people(among=tracks)  # a track whose files could not be written is in no person
        for entry in tracks.values():
            entry["person_id"] = None  # a track with no pick has no template: no person
        persons = []
        for person in people:
            members = [tracks[tid] for tid in person.track_ids]
            for entry in members:
                entry["person_id"] = person.person_id
            firsts = [m["first_pts"] for m in members if m["first_pts"] is not None]
            lasts = [m["last_pts"] for m in members if m["last_pts"] is not None]
            persons.append({
                "person_id": person.person_id,
                "track_ids": person.track_ids,
                "first_pts": min(firsts) if firsts else None,
                "last_pts": max(lasts) if lasts else None,
                "num_detections": sum(m["num_detections"] for m in members),
                "selected": [{**tracks[tid]["selected"][k], "rank": rank + 1, "track_id": tid}
                             for rank, (tid, k) in enumerate(person.picks)],
                # Every scored face of the person's tracks, by the same rule as a track's.
                "template": template_record(person.template),
            })
        return persons

    def finish(self, status: str, message: str | None, stats: dict[str, Any], source_updates: dict[str, Any] | None = None) -> dict:
        self.manifest["status"] = status
        self.manifest["message"] = message
        self.manifest["stats"] = stats
        if source_updates:
            self.manifest["source"].update(source_updates)
        self.write_manifest()
        return self.manifest
