"""The files of one live event: its images and ``event.json`` in ``events/<stream>/<event_id>/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes, atomic_write_text
from ..select import TrackResult
from .images import encode_image, pick_images


def write_event_folder(out: Path, folder: str, record: dict[str, Any], result: TrackResult) -> int:
    """Write the chosen frames' crops and context views at the paths ``record`` names (relative
    to ``out``), then ``folder/event.json``; returns the bytes of images written (for the rolling
    gallery's size limit)."""
    (out / folder).mkdir(parents=True, exist_ok=True)
    size = 0
    for item, (crop, context) in zip(record["selected"], pick_images(result)):
        for image, rel, ext in ((crop, item["crop"], ".png"), (context, item["context"], ".jpg")):
            data = encode_image(image, ext)
            atomic_write_bytes(out / rel, data, durable=False)
            size += len(data)
    atomic_write_text(out / folder / "event.json", json.dumps(record, indent=1) + "\n")
    return size
