"""The gallery manifest's schema, and reading a manifest back (docs/manifest.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError

SCHEMA = "vidfiqa.manifest/2"


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
