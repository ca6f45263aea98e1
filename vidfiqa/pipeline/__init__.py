"""`vidfiqa run`: video in, the best and most diverse face frames of every person out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .settings import RunSettings, load_config, make_settings, presets


def run_video(source: str | Path, output: str | Path, config: str | Path | None = None, progress=None, **overrides: Any) -> dict:
    """Process one video (file, URL or image folder) into a gallery at ``output``.

    ``config`` is a preset name (``default``, ``fast``, ``accurate``) or a TOML path; keyword
    arguments override single settings (see :class:`RunSettings`).  Returns the manifest, the
    same data as ``output/manifest.json``.
    """
    from .run import VideoPipeline

    settings = make_settings(config, **overrides)
    return VideoPipeline(settings).run(source, output, progress=progress)


__all__ = ["RunSettings", "load_config", "make_settings", "presets", "run_video"]
