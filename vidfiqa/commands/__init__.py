"""CLI sub-commands that live in their own modules (loaded lazily by vidfiqa.cli)."""
