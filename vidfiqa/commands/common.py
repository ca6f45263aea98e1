"""What the CLI's commands share: exit codes, the console and progress bar, the detector
options, per-image counts, CSV text and ``--option key=value`` parsing.

``vidfiqa.cli`` and every module of :mod:`vidfiqa.commands` import from here; this module imports
neither of them, so the command modules no longer reach back into ``vidfiqa.cli`` (which loads
them).  Heavy packages (rich, the detectors) are imported inside the functions that need them,
so ``vidfiqa --version`` stays fast.
"""

from __future__ import annotations

import csv
import io
import sys
from typing import Any

import click

from ..errors import ConfigError

EXIT_NOTHING_DONE = 1  # no input could be processed
EXIT_USAGE = 2  # the command itself is misused (bad option, bad config)
EXIT_INTERNAL = 3  # a bug: an unexpected exception (VIDFIQA_DEBUG=1 shows the traceback)
EXIT_OUTPUT = 4  # an output could not be written (disk full, read-only folder, no permission)


# ------------------------------------------------------------------------------------ output
def make_console():
    """The console commands report on: stderr, so that stdout stays for data."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def make_progress(console, disable: bool = False):
    """A progress bar with count, rate and ETA; a task's ``rate`` field, when set, replaces the
    measured items/s (e.g. a training loss)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task):
            text = task.fields.get("rate") or (f"{task.speed:.1f}/s" if task.speed else "")
            return Text(text, style="progress.data.speed")

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable or not console.is_terminal,
        transient=False,
    )


def count_inputs(inputs) -> int:
    """How many images (and unreadable entries) the inputs name: the progress bar's total."""
    from ..imageio import iter_image_paths

    return sum(1 for _ in iter_image_paths(inputs))


def csv_text(header, rows) -> str:
    """A header and rows as CSV text (written in one piece, atomically, by the caller)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


class ImageStats:
    """Counts of a photo pipeline's results; reports each skipped or faceless image."""

    def __init__(self):
        self.images = self.failed = self.no_face = self.faces = 0

    def add(self, result, console) -> None:
        if result.faces is None:
            self.failed += 1
            console.print(f"[yellow]skipped[/] {result.error}", soft_wrap=True)
            return
        self.images += 1
        if len(result.faces) == 0:
            self.no_face += 1
            console.print(f"[yellow]no face[/] {result.error}", soft_wrap=True)
        self.faces += len(result.faces)

    def summary(self) -> str:
        return f"{self.images} images read, {self.faces} faces, {self.no_face} without a face, {self.failed} unreadable"

    def exit_if_nothing_done(self) -> None:
        if self.images == 0:
            sys.exit(EXIT_NOTHING_DONE)


# ------------------------------------------------------------------------------------ options
def detector_options(func):
    """The detector options every photo command takes (decorator)."""
    func = click.option("--detector", type=click.Choice(["retinaface", "yunet"]), default="retinaface", show_default=True, help="Face detector.")(func)
    func = click.option("--detector-model", type=click.Path(dir_okay=False), default=None, help="Detector weights (required for yunet).")(func)
    func = click.option("--input-size", type=click.IntRange(32, 4096), default=640, show_default=True, help="Most pixels on the long side the detector sees: larger images are shrunk to it, smaller ones searched at their own size.")(func)
    func = click.option("--score-threshold", type=click.FloatRange(0, 1), default=0.6, show_default=True, help="Minimum detector confidence.")(func)
    func = click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)(func)
    return func


def detector_from_options(detector, detector_model, input_size, score_threshold, device):
    """The detector the :func:`detector_options` values describe."""
    from ..detect import make_detector

    return make_detector(detector, model_path=detector_model, device=device, input_size=input_size, score_threshold=score_threshold, small_faces=True)


def parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``--option key=value`` pairs -> keyword options of a quality method.

    Values that read as an int or a float become one (``copies=10``, ``alpha=0.5``); anything
    else stays a string (paths, names).  Dashes in keys become underscores.
    """
    out: dict[str, Any] = {}
    for item in pairs:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option expects key=value, got {item!r}")
        value: Any = text
        for cast in (int, float):
            try:
                value = cast(text)
                break
            except ValueError:
                continue
        out[key.replace("-", "_")] = value
    return out
