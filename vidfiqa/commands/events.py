"""`vidfiqa events`: the event store's queries on the command line (live/event_queries.py), while
a watcher writes it or after it stopped."""

from __future__ import annotations

import click

FORMATS = ("table", "json")


@click.command("events")
@click.argument("store", metavar="DIR_OR_DB")
@click.option("--camera", default=None, metavar="NAME", help="Only this camera (stream name).")
@click.option("--since", default=None, metavar="T", help="From this time on: epoch seconds, ISO 8601 (2026-06-01T14:00:00Z; without an offset: local time), or a duration before now (30m, 2h, 7d).")
@click.option("--until", default=None, metavar="T", help="Up to this time (the same forms as --since).")
@click.option("--person", default=None, metavar="N", help="Only this person: the store's person number (the 'person' column; unique across cameras and watcher restarts).")
@click.option("--persons", "list_persons", is_flag=True, help="List the persons seen (newest first: camera, first and last seen, visits, best face) instead of the events.")
@click.option("--limit", default="100", show_default=True, metavar="N", help="At most this many rows (1-1000).")
@click.option("--before", default=None, metavar="CURSOR", help="The next page: the cursor the previous page ended with.")
@click.option("--format", "fmt", default="table", show_default=True, metavar="table|json", help="A table for people, or JSON (a list of objects; image paths relative to DIR).")
def events(store, camera, since, until, person, list_persons, limit, before, fmt):
    """The events (or persons) a `vidfiqa watch` kept in DIR/events.sqlite, newest first,
    filtered by camera, time and person.  DIR_OR_DB: the watch's output folder or the store file."""
    import json
    import sqlite3
    import sys

    from ..errors import ConfigError, InputError
    from ..live.event_queries import EventQueries, QueryError

    if fmt not in FORMATS:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    try:
        with EventQueries(store) as queries:
            if list_persons and person is not None:
                found = queries.person(person)
                rows = [found] if found is not None else []
            elif list_persons:
                rows = queries.persons(camera=camera, since=since, until=until, limit=limit, before=before)
            else:
                rows = queries.events(camera=camera, since=since, until=until, person=person, limit=limit, before=before)
            root = queries.root
    except QueryError as err:  # the query layer names the value as the HTTP API does (since: ...): here it is an option
        raise ConfigError(f"--{err}") from None
    except sqlite3.Error as err:  # a damaged file, or a disk that fails while reading
        raise InputError(f"cannot read the event store {store}: {err}", path=store) from err
    if fmt == "json":
        print(json.dumps(rows, indent=1, allow_nan=False))
        return
    _print_table(rows, list_persons, root)
    if rows and len(rows) == int(limit):
        print(f"{len(rows)} {'persons' if list_persons else 'events'}; the next page: --before {rows[-1]['cursor']}", file=sys.stderr)
    elif not rows:
        print(f"no {'persons' if list_persons else 'events'} match", file=sys.stderr)


def _print_table(rows: list[dict], persons: bool, root) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if Console().is_terminal else 200, highlight=False)
    table = Table(box=None, pad_edge=False)
    columns: tuple[str, ...]
    values: list[tuple[str, ...]]
    if persons:
        columns = ("last seen (UTC)", "camera", "person", "camera's id", "first seen (UTC)", "visits", "quality", "best face")
        values = [(r["last_seen"], r["camera"], str(r["person"]), str(r["person_id"]), r["first_seen"], str(r["visits"]),
                   _quality(r["quality"]), str(root / r["image"]) if r["image"] else "") for r in rows]
    else:
        columns = ("time (UTC)", "camera", "person", "camera's id", "quality", "picks", "ended", "event", "best face")
        values = [(r["wall_time"], r["camera"], str(r["person"]), str(r["person_id"]), _quality(r["quality"]), str(r["picks"]), r["ended"],
                   r["event_id"], str(root / r["image"]) if r["image"] else "") for r in rows]
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in values:
        table.add_row(*row)
    console.print(table)


def _quality(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"
