"""Export: how finished tracks are written down - the JSON entries of manifests and events
(``entries.py``), the images (``images.py``), the gallery page (``html.py``) and the manifest's
schema and reader (``manifest.py``).  The sinks that
write them to disk or send them away are in :mod:`vidfiqa.sinks`."""

from .entries import EVENT_SCHEMA, event_record, number, selected_fields, series_csv, track_entry
from .images import encode_image
from .manifest import SCHEMA, read_manifest

__all__ = ["EVENT_SCHEMA", "SCHEMA", "encode_image", "event_record", "number", "read_manifest", "selected_fields", "series_csv", "track_entry"]
