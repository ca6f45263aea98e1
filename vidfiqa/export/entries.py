"""How a finished track is written down: the manifest's track entry, its selected-frame fields,
the per-detection CSV, the template, and the live event record.  The only place where results
become JSON-ready dicts (and where numbers are rounded); every sink uses these."""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

from ..components import component_dict
from ..select.result import TrackResult

if TYPE_CHECKING:
    from ..select.chain import TrackRecord
    from ..select.template_rules import TemplateBuilder


def number(value: float, digits: int = 6) -> float | None:
    """A float rounded for JSON; NaN and infinities become None."""
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def selected_fields(result: TrackResult) -> list[dict[str, Any]]:
    """The chosen frames' fields, best first (file names are added by the sink that writes them)."""
    chosen = result.chosen
    if len(chosen) == 0:  # nothing scored (every face under min_face_size) or nothing eligible
        return []
    assert chosen.quality is not None
    return [
        {
            "rank": rank + 1,
            "frame_index": int(chosen.frame_index[rank]),
            "pts": number(chosen.timestamp[rank]),
            "bbox": [round(float(v), 2) for v in chosen.boxes[rank]],
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in chosen.landmarks[rank]],
            "detector_score": number(chosen.scores[rank]),
            "quality": number(chosen.quality[rank]),
            "quality_smoothed": number(result.chosen_smoothed[rank]),
            # Why it is as good as it is: pose, size, sharpness, exposure, noise, compression,
            # occlusion (vidfiqa/components/; docs/components.md), measured on the analysed frame.
            **({"components": component_dict(chosen.components[rank])} if chosen.components is not None else {}),
            # Where the images were cut: the main stream or the analysed one (select/recut.py).
            **({"source": result.sources[rank].to_dict()} if result.sources is not None else {}),
        }
        for rank in range(len(chosen))
    ]


def track_entry(result: TrackResult, selected: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The manifest entry of a track (``docs/manifest.md``); ``selected`` defaults to
    :func:`selected_fields` without file names."""
    return {
        "track_id": result.track_id,
        "first_frame": result.first_frame,
        "last_frame": result.last_frame,
        "first_pts": number(result.first_pts),
        "last_pts": number(result.last_pts),
        "num_detections": result.num_detections,
        "num_scored": result.num_scored,
        "quality_max": number(result.quality_max),
        "quality_mean": number(result.quality_mean),
        "ended": result.ended,
        "selected": selected_fields(result) if selected is None else selected,
        **({"unusable": result.unusable} if result.unusable else {}),
        **({"best_face": list(result.best_face)} if result.best_face else {}),
        "template": template_record(result.template),
    }


def template_record(template: "TemplateBuilder | None") -> dict[str, Any] | None:
    """A track's or person's template (select/template_rules.py) with its model, or None (nothing scored)."""
    return template.record() if template is not None else None


SERIES_COLUMNS = ["frame_index", "pts", "quality", "quality_smoothed", "detector_score", "x1", "y1", "x2", "y2"]


def series_csv(result: TrackResult) -> str:
    """Every detection of the track: frame, time, raw and smoothed quality, detector score, box;
    and, when another method than the student ranks, the student's quality (``face_quality``, the
    scale of the floors) as a last column."""
    s = result.series
    extra = s.face_quality is not None
    lines = [",".join(SERIES_COLUMNS + (["face_quality"] if extra else []))]
    for i in range(len(s)):
        values = [str(int(s.frame_index[i]))]
        for v in (s.pts[i], s.quality[i], s.quality_smoothed[i], s.detector_score[i]):
            values.append("" if not math.isfinite(v) else f"{v:.6f}")
        values += [f"{v:.1f}" for v in s.boxes[i]]
        if s.face_quality is not None:
            values.append("" if not math.isfinite(s.face_quality[i]) else f"{s.face_quality[i]:.6f}")
        lines.append(",".join(values))
    return "\n".join(lines) + "\n"


EVENT_SCHEMA = "vidfiqa.event/1"


def iso(wall: float) -> str:
    """Wall-clock seconds as ISO 8601 UTC with milliseconds (``2026-12-07T04:06:34.123Z``)."""
    return dt.datetime.fromtimestamp(wall, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_folder(record: "TrackRecord") -> str:
    """Where an event's images and ``event.json`` live, relative to the watch output."""
    return f"events/{record.stream}/{record.event_id}"


def native_face_of(result: TrackResult, row: int) -> bytes | None:
    """The native-resolution face image (JPEG) of the pick in row ``row``, when it was cut from a
    main stream; None otherwise."""
    return result.native_faces[row] if result.native_faces is not None else None


def event_image_paths(folder: str, rank: int) -> tuple[str, str]:
    """Where an event's rank-th crop and context view live, relative to the watch output."""
    return f"{folder}/r{rank}_crop.png", f"{folder}/r{rank}_context.jpg"


def event_latency(record: "TrackRecord") -> float:
    """Seconds from the track's last detection to its event (the event's ``latency_s``)."""
    assert record.emitted_at is not None
    last = number(record.result.last_pts)
    last_seen = record.wall_of(last) if last is not None else record.emitted_at
    return round(record.emitted_at - last_seen, 3)


def event_record(record: "TrackRecord") -> dict[str, Any]:
    """The live event of a finished track (schema ``vidfiqa.event/1``, docs/cameras.md): the
    manifest's selected-frame fields with wall-clock times and image paths, the stream, its
    person (the same when a person comes back within ``person_memory_s``) and the template.
    The record must have been named (``event_id``, ``emitted_at``: sinks/outbox.py)."""
    assert record.event_id is not None and record.emitted_at is not None and record.stream is not None
    result, now, folder = record.result, record.emitted_at, event_folder(record)
    selected = []
    for item in selected_fields(result):
        crop, context = event_image_paths(folder, item["rank"])
        face = {"face": f"{folder}/r{item['rank']}_face.jpg"} if native_face_of(result, item["rank"] - 1) is not None else {}
        selected.append({**item, "wall_time": iso(record.wall_of(item["pts"])) if item["pts"] is not None else None,
                         "crop": crop, "context": context, **face})
    first, last = number(result.first_pts), number(result.last_pts)
    last_seen = record.wall_of(last) if last is not None else now
    return {
        "schema": EVENT_SCHEMA,
        "event_id": record.event_id,
        "stream": record.stream,
        "wall_time": iso(now),
        "track_id": result.track_id,
        "person_id": record.person_id,
        "segment": record.segment,
        "ended": result.ended,
        "first_seen": iso(record.wall_of(first)) if first is not None else None,
        "last_seen": iso(last_seen),
        "latency_s": event_latency(record),
        "num_detections": result.num_detections,
        "quality_max": number(result.quality_max),
        "selected": selected,
        **({"best_face": list(result.best_face)} if result.best_face else {}),
        "template": template_record(result.template),
    }
