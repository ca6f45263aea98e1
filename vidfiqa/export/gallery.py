"""The gallery on disk: images, per-track series, ``manifest.json`` and ``index.html``.

Layout of OUT (all paths in the manifest are relative to OUT)::

    manifest.json                       schema "vidfiqa.manifest/2", see docs/manifest.md
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
import shutil
import time
from pathlib import Path
from typing import Any

from .._version import __version__
from ..atomic import atomic_write_bytes, atomic_write_text, overwrite_in_place
from ..errors import ConfigError, OutputError
from ..select import SelectionRule, TrackResult
from ..select.gate import FaceGate
from ..select.people import TrackPicks, group_people
from ..select.persons import DEFAULT_THRESHOLD
from ..select.template_rules import TemplateBuilder, merged
from . import html
from .entries import selected_fields, series_csv, track_entry
from .images import encode_image, pick_images

SCHEMA = "vidfiqa.manifest/2"
MANIFEST_EVERY_S = 1.0  # rewrite the manifest at most this often while running (always at the end)


class GalleryWriter:
    """Owns OUT: prepares it, adds finished tracks, keeps the manifest current."""

    def __init__(self, out_dir: str | Path, source: dict[str, Any], settings: dict[str, Any], write_series: bool = True,
                 gate: FaceGate | None = None, rule: SelectionRule | None = None, person_threshold: float = DEFAULT_THRESHOLD,
                 fps: float = 25.0):
        self.out = Path(out_dir)
        self.write_series = write_series
        self.gate, self.rule, self.person_threshold, self.fps = gate, rule or SelectionRule(), person_threshold, fps
        self._picks: dict[int, TrackPicks] = {}
        self._templates: dict[int, TemplateBuilder] = {}
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
    def add(self, result: TrackResult) -> dict[str, Any]:
        """Write a finished track's images (and series), then list it in the manifest."""
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
        entry = track_entry(result, selected)
        reason = self.gate.check(result) if self.gate is not None else None
        if reason is None:
            entry["person_id"] = None  # set when the persons are (re)grouped
        else:
            entry["reason"] = reason
        if self.write_series:
            entry["series"] = f"{track_dir.as_posix()}/quality.csv"
            atomic_write_text(self.out / entry["series"], series_csv(result))
            self._plots[result.track_id] = html.plot_data(result.series, selected)
        atomic_write_text(self.out / track_dir / "track.json", json.dumps(entry, indent=1) + "\n")
        if reason is not None:
            self.manifest["rejected"].append(entry)
        else:
            self.manifest["tracks"].append(entry)
            picks = TrackPicks.of(result, self.fps)
            if picks is not None:
                self._picks[result.track_id] = picks
            if result.face_template is not None:
                self._templates[result.track_id] = result.face_template
        if time.monotonic() - self._last_write >= MANIFEST_EVERY_S:
            self.write_manifest()
        return entry

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
        text = json.dumps(self.manifest, indent=1) + "\n"
        try:
            atomic_write_text(self.out / "manifest.json", text)
        except OutputError:
            if self.manifest["status"] == "running" or not (self.out / "manifest.json").is_file():
                raise
            # The last word of a run that failed (a full disk, usually): the manifest must not
            # stay "running", so it is rewritten in place, compact, and only if it fits in the
            # blocks the old one frees (a half-written manifest would be worse than a stale one).
            compact = json.dumps(self.manifest, separators=(",", ":")) + "\n"
            if len(compact.encode()) > (self.out / "manifest.json").stat().st_blocks * 512:
                raise
            overwrite_in_place(self.out / "manifest.json", compact)
        atomic_write_text(self.out / "index.html", html.render(self.manifest, self._plots))
        self._last_write = time.monotonic()

    def _persons(self) -> list[dict[str, Any]]:
        """Link the tracks so far into persons (cheap: milliseconds for hundreds of tracks), set
        each track's ``person_id`` and list each person's best frames over all of its tracks."""
        tracks = {t["track_id"]: t for t in self.manifest["tracks"]}
        people = group_people(list(self._picks.values()), self.rule, self.person_threshold)
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
                "template": _record(merged([self._templates[tid] for tid in person.track_ids if tid in self._templates])),
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


def _record(builder: TemplateBuilder | None) -> dict[str, Any] | None:
    return builder.record() if builder is not None else None


def read_manifest(path: str | Path) -> dict[str, Any]:
    """A gallery's manifest, refusing any schema but this one with a one-line error (a reader of
    ``/1`` would otherwise take its per-track rows for persons)."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: not a readable manifest ({err})") from None
    schema = manifest.get("schema") if isinstance(manifest, dict) else None
    if schema != SCHEMA:
        raise ConfigError(f"{path}: manifest schema {schema!r} is not {SCHEMA!r}; rerun `vidfiqa run` with this version")
    return manifest
