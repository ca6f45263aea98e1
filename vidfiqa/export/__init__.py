"""Export: turning finished tracks (:class:`~vidfiqa.select.TrackResult`) into files - the
gallery of `vidfiqa run` (images, per-track series, ``manifest.json``, ``index.html``) and the
event folders of `vidfiqa watch` - and into the JSON entries that describe them."""

from .entries import EVENT_SCHEMA, event_record, number, selected_fields, series_csv, track_entry
from .gallery import SCHEMA, GalleryWriter, read_manifest
from .images import encode_image

__all__ = ["EVENT_SCHEMA", "SCHEMA", "GalleryWriter", "encode_image", "event_record", "number", "read_manifest", "selected_fields", "series_csv", "track_entry"]
