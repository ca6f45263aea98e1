"""`vidfiqa run`: one option per pipeline setting, generated from :class:`RunSettings` so the
command line can override every setting of a preset."""

from __future__ import annotations

import math
import sys
from dataclasses import fields
from pathlib import Path

import click

from ..pipeline.settings import RunSettings

_TYPES = {"int": int, "float": float, "str": str, "int | None": int, "float | None": float, "str | None": str}


def _setting_options(func):
    for f in reversed(fields(RunSettings)):
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        shown = "" if default is None else f" [default: {default}]"
        if f.type == "bool":
            func = click.option(f"{flag}/--no-{flag[2:]}", f.name, default=None, help=f.metadata["help"] + shown)(func)
        else:
            func = click.option(flag, f.name, type=_TYPES[f.type], default=None, help=f.metadata["help"] + shown)(func)
    return func


@click.command("run")
@click.argument("source")
@click.option("-o", "--output", "output", type=click.Path(file_okay=False), required=True, help="Gallery folder (manifest.json, index.html, images).")
@click.option("-c", "--config", "config", default=None, help="Preset name (default, fast, accurate) or a TOML file; options below override it.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--main", "main", default=None, metavar="MAIN",
              help="A recording of the same camera's full-size main stream: SOURCE (its substream) is analysed, the picks are cut from MAIN.")
@click.option("--main-offset", "main_offset", type=float, default=0.0, show_default=True, metavar="SECONDS",
              help="MAIN's clock minus SOURCE's, when the two recordings did not start together.")
@_setting_options
def run(source, output, config, quiet, main, main_offset, **settings):
    """Find, track and quality-score the faces in SOURCE (a video file, an rtsp/http URL or a
    folder of frames) and write the best, most diverse frames of each person to a gallery."""
    from rich.markup import escape

    from .common import EXIT_NOTHING_DONE, make_console, make_progress
    from ..pipeline import make_settings
    from ..pipeline.run import VideoPipeline

    console = make_console()
    if not math.isfinite(main_offset):
        raise click.BadParameter(f"{main_offset} is not a finite number of seconds", param_hint="--main-offset")
    resolved = make_settings(config, **settings)
    pipeline = VideoPipeline(resolved)
    with make_progress(console, disable=quiet) as progress:
        task = progress.add_task("frames", total=None)

        def advance(done: int, expected: int | None) -> None:
            progress.update(task, completed=done, total=expected)

        manifest = pipeline.run(source, output, progress=advance, main=main, main_offset_s=main_offset)
    stats = manifest["stats"]
    selected = sum(len(t["selected"]) for t in manifest["tracks"])
    analysed = "" if stats["frames_processed"] == stats["frames_decoded"] else f" ({stats['frames_processed']} analysed)"
    console.print(f"{stats['frames_decoded']} frames{analysed} in {stats['elapsed_s']:.1f} s ({stats['input_frames_per_s'] or 0:.1f} frames/s): "
                  f"{len(manifest['tracks'])} track{'s' * (len(manifest['tracks']) != 1)}, {selected} frames selected -> {Path(output) / 'index.html'}",
                  soft_wrap=True)
    cut = stats.get("main_stream")
    if cut is not None:
        kinds = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in cut["fallbacks"].items())
        console.print(f"main stream: {cut['from_main']} of {cut['picks']} picks cut from it" + (f" (the rest: {kinds})" if kinds else "")
                      + (f"; sync error median {cut['sync_error_s']['median'] * 1000:.0f} ms" if cut["sync_error_s"] else ""), soft_wrap=True)
    empty = sum(1 for t in manifest["tracks"] if not t["selected"])
    if empty:
        gates = manifest["settings"]
        limits = "".join(f", {name} {gates[name]:g}" for name in ("min_quality", "max_yaw", "max_pitch", "min_inter_eye_px") if gates.get(name) is not None)
        console.print(f"note: {empty} track{'s' * (empty != 1)} had no frame that passed the gates (min_face_size {gates['min_face_size']:g} px"
                      f"{limits}; the manifest's `unusable` says why, per track)", soft_wrap=True)
    for line in stats.get("skipped_files", []):  # unreadable frames of a folder, by name
        console.print(f"[yellow]skipped[/] {escape(line)}", soft_wrap=True, highlight=False)
    unnamed = stats.get("frames_skipped", 0) - len(stats.get("skipped_files", []))
    if unnamed > 0:
        console.print(f"[yellow]skipped[/] {unnamed} {'more ' if stats.get('skipped_files') else ''}undecodable frame{'s' * (unnamed != 1)}", soft_wrap=True)
    if manifest["status"] != "complete":
        console.print(f"[yellow]warning:[/] {manifest['message']}", soft_wrap=True)
    if stats["frames_processed"] == 0:
        sys.exit(EXIT_NOTHING_DONE)
    if not manifest["tracks"] and stats["tracks_dropped_short"]:
        # Faces were found, in tracks too short to keep: "no faces found" misled on a one-frame video.
        short = stats["tracks_dropped_short"]
        console.print(f"no track kept: {stats['detections']} face detection{'s' * (stats['detections'] != 1)} in {short} "
                      f"track{'s' * (short != 1)} shorter than min_track_detections ({manifest['settings']['min_track_detections']})",
                      soft_wrap=True)
    elif not manifest["tracks"]:
        console.print("no faces found")
