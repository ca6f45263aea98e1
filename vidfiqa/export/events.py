"""The files of one live event: its images and ``event.json`` in ``events/<stream>/<event_id>/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes, atomic_write_text
from ..select import TrackResult
from .images import encode_image


def write_event_folder(out: Path, folder: str, record: dict[str, Any], result: TrackResult) -> int:
    """Write the chosen frames' crops and context views at the paths ``record`` names (relative
    to ``out``), then ``folder/event.json``; returns the bytes of images written (for the rolling
    gallery's size limit)."""
    chosen = result.chosen
    assert chosen.crops is not None and chosen.context is not None
    (out / folder).mkdir(parents=True, exist_ok=True)
    size = 0
    for i, item in enumerate(record["selected"]):
        for image, rel, ext in ((chosen.crops[i], item["crop"], ".png"), (chosen.context[i], item["context"], ".jpg")):
            data = encode_image(image, ext)
            atomic_write_bytes(out / rel, data, durable=False)
            size += len(data)
    atomic_write_text(out / folder / "event.json", json.dumps(record, indent=1) + "\n")
    return size
