"""`vidfiqa score`: one quality number per image (largest face), or per face with --all-faces."""

from __future__ import annotations

from pathlib import Path

import click

from ..components import NAMES
from ..quality import SCORERS


@click.command("score")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--method", type=click.Choice(sorted(SCORERS)), default="ediffiqa", show_default=True, help="Quality method.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="Method option, e.g. calibration=froq.json, copies=10 (repeatable).")
@click.option("--aligned", is_flag=True, help="Inputs are already aligned 112x112 crops: skip detection.")
@click.option("--all-faces", is_flag=True, help="Score every face, not only the largest of each image.")
@click.option("-o", "--output", "out_file", type=click.Path(dir_okay=False, path_type=Path), required=True, help="CSV: path, face, quality (+ box).")
@click.option("--detector", type=click.Choice(["retinaface", "yunet"]), default="retinaface", show_default=True)
@click.option("--detector-model", type=click.Path(dir_okay=False), default=None)
@click.option("--input-size", type=click.IntRange(32, 4096), default=640, show_default=True,
              help="Most pixels on the long side the detector sees: larger images are shrunk to it, smaller ones searched at their own size.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
@click.option("--components", is_flag=True,
              help="Add one column per quality component: yaw, pitch, roll (deg), inter_eye_px, sharpness, exposure (EV), noise, compression, occlusion (docs/components.md).")
def score(inputs, method, options, aligned, all_faces, out_file, detector, detector_model, input_size, device, components):
    """Face image quality of the faces in images (higher is better); unreadable or faceless
    images are listed with an empty quality, never dropped."""
    import sys

    from ..api import score_images
    from ..atomic import atomic_write_text
    from rich.markup import escape

    from .common import EXIT_NOTHING_DONE, count_inputs, csv_text, make_console, make_progress, parse_options

    console = make_console()
    kwargs = parse_options(options)
    rows: list[list] = []
    found = unreadable = 0
    read: set[str] = set()  # images decoded and searched, with or without a face
    with make_progress(console) as progress:
        task = progress.add_task(method, total=count_inputs(inputs), rate="")
        for record in score_images(
            inputs, method=method, aligned=aligned, all_faces=all_faces, detector=detector,
            detector_model=detector_model, input_size=input_size, device=device, method_options=kwargs, components=components,
        ):
            progress.advance(task)
            if record["read"]:
                read.add(record["path"])
            else:
                unreadable += 1
            if record["quality"] is None:
                console.print(f"[yellow]{'no face' if record['read'] else 'skipped'}[/] {escape(record['error'])}", soft_wrap=True, highlight=False)
            else:
                found += 1
            box = record.get("box") or ["", "", "", ""]
            quality = "" if record["quality"] is None else f"{record['quality']:.6f}"
            row = [record["path"], record["face"], quality, *[f"{v:.2f}" if v != "" else "" for v in box]]
            if components:
                measured = record.get("components") or {}
                row += ["" if measured.get(name) is None else f"{measured[name]:.4g}" for name in NAMES]
            rows.append(row)
    atomic_write_text(out_file, csv_text(["path", "face", "quality", "x1", "y1", "x2", "y2", *(NAMES if components else ())], rows))
    console.print(f"{found} faces scored with {method} in {len(read)} images, {len(rows) - found} inputs without a score "
                  f"({unreadable} unreadable) -> {out_file}", soft_wrap=True)
    if not read:  # exit codes as every command's (README): 1 only when nothing could be read
        sys.exit(EXIT_NOTHING_DONE)
