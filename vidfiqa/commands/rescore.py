"""`vidfiqa rescore ytf|videos ROOT -o scores.parquet`: per-frame quality with the slow methods."""

from __future__ import annotations

from pathlib import Path

import click

from ..quality import SCORERS


def _options(func):
    func = click.option("--method", type=click.Choice(sorted(SCORERS)), default="ediffiqa", show_default=True, help="Quality method.")(func)
    func = click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="Method option, e.g. diffusion=small.pt, repeats=4 (repeatable).")(func)
    func = click.option("--embed", default="student", show_default=True, help="Embeddings to store: student (the bundled model's), none, or an FR model (mobilefacenet, dlib, iresnet...).")(func)
    func = click.option("--weights", type=click.Path(dir_okay=False), default=None, help="Weights of the --embed FR model.")(func)
    func = click.option("--max-frames", type=click.IntRange(1), default=None, help="At most this many frames per video, evenly spaced (default: all).")(func)
    func = click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)(func)
    func = click.option("--ray", "ray", default=None, metavar="auto|local|ADDRESS", help="Run on Ray: the cluster this machine joined (else a local instance), a local instance, or a cluster address.")(func)
    func = click.option("--ray-cpus", type=click.IntRange(1), default=None, help="CPUs of a --ray local instance (default: all).")(func)
    func = click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Parquet file of per-frame rows.")(func)
    return func


def _run(root, out, method, options, embed, weights, max_frames, device, ray, ray_cpus, require_ytf: bool):
    from .common import make_console, make_progress, parse_options
    from ..errors import ConfigError
    from ..rescore import RescoreSettings, find_items, rescore

    if require_ytf and find_items(root)[0][0].kind != "ytf":
        raise ConfigError(f"{root}: not a YouTube Faces tree (frame_images_DB/ or aligned_images_DB/); use `vidfiqa rescore videos`")
    console = make_console()
    settings = RescoreSettings(method=method, method_options=parse_options(options), embed=embed, weights=weights,
                               max_frames=max_frames, device=device)
    with make_progress(console) as progress:
        task = progress.add_task("videos", total=None)

        def advance(done, total, key):
            progress.update(task, completed=done, total=total, description=key[-30:])

        summary = rescore(root, out, settings, ray=ray, ray_cpus=ray_cpus, progress=advance, log=lambda m: console.print(m, soft_wrap=True))
    console.print(f"{summary['rows']} frames of {summary['videos']} videos ({summary['scored_now']} scored now, in {summary['seconds']:.1f} s) -> {out}",
                  soft_wrap=True)


@click.group("rescore")
def rescore_group():
    """Score every frame of a video dataset offline (resumable; optionally on Ray)."""


@rescore_group.command("ytf")
@click.argument("root", type=click.Path(exists=True, path_type=Path))
@_options
def ytf(root, **kwargs):
    """YouTube Faces: ROOT holds frame_images_DB/ (faces found inside the labelled boxes) or
    aligned_images_DB/."""
    _run(root, require_ytf=True, **kwargs)


@rescore_group.command("videos")
@click.argument("root", type=click.Path(exists=True, path_type=Path))
@_options
def videos(root, **kwargs):
    """Any folder of video files and/or frame folders (or one video): the largest face per frame."""
    _run(root, require_ytf=False, **kwargs)
