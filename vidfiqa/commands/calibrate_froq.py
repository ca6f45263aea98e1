"""`vidfiqa calibrate froq`: find FROQ's quality layers for a face recognition model.

Images (files or folders) -> the largest face of each, detected and aligned (or, with
``--aligned``, the images taken as aligned crops) -> pseudo-labels and layer selection
(:func:`vidfiqa.quality.froq.calibrate_model`) -> a small JSON file, written atomically.  The rho
trace of the greedy selection is printed for raw and standardised norms, whichever is used.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

from .common import EXIT_NOTHING_DONE, ImageStats, detector_from_options, detector_options, make_console, make_progress
from ..errors import InputError
from ..quality.froq import MIN_SAMPLES
from ..quality.froq_labels import ALPHA, NOISE_DRAWS, OCCLUSION_GRID


@click.command("froq")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", "out_file", type=click.Path(dir_okay=False), required=True, help="Calibration JSON to write.")
@click.option("--aligned", is_flag=True, help="Inputs are already aligned 112x112 crops: skip detection.")
@click.option("--model", default="mobilefacenet", show_default=True, help="Face recognition model (a PyTorch one; see `vidfiqa models`).")
@click.option("--weights", type=click.Path(exists=True), default=None, help="Weight file or folder (else looked up in $VIDFIQA_WEIGHTS).")
@click.option("--standardize/--no-standardize", default=False, show_default=True, help="Z-score each layer's norm before averaging (both are computed and printed; this picks the one used).")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=ALPHA, show_default=True, help="Noise weight of the noise pseudo-label.")
@click.option("--max-samples", type=click.IntRange(MIN_SAMPLES, None), default=2000, show_default=True, help="Use at most this many faces (a random subset of the images when there are more).")
@click.option("--noise-draws", type=click.IntRange(1, 1000), default=NOISE_DRAWS, show_default=True, help="Noise draws per face (pseudo-label cost).")
@click.option("--occlusion-grid", type=click.IntRange(1, 112), default=OCCLUSION_GRID, show_default=True, help="Occlusion grid size G: G*G blacked-out squares per face (pseudo-label cost).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the noise draws and the sample subset.")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True)
@detector_options
def froq(inputs, out_file, aligned, model, weights, standardize, alpha, max_samples, noise_draws, occlusion_grid, seed, batch_size, detector, detector_model, input_size, score_threshold, device):
    """Calibrate FROQ on face images: pick the layers whose activation norms track quality."""
    from ..imageio import iter_image_paths
    from ..photos import PhotoPipeline
    from ..quality.froq import calibrate_model
    from ..quality.frmodel import FRModel

    console = make_console()
    fr = FRModel(model, weights, device)  # first, so a bad model or weight file fails before any work
    stats = ImageStats()
    paths = []
    for item in iter_image_paths(inputs):
        if isinstance(item, InputError):
            stats.failed += 1
            console.print(f"[yellow]skipped[/] {item}", soft_wrap=True)
        else:
            paths.append(item)
    if len(paths) > max_samples:
        # A random subset rather than the first files, which would be a few identities of a
        # folder sorted by name.  Extra images stay queued in case some have no face.
        paths = [paths[i] for i in np.random.default_rng(seed).permutation(len(paths))]

    det = None if aligned else detector_from_options(detector, detector_model, input_size, score_threshold, device)
    pipeline = PhotoPipeline(det, largest_only=True, aligned_input=aligned, chunk_size=max(batch_size, 16))
    crops = []
    with make_progress(console) as progress:
        task = progress.add_task("faces", total=min(len(paths), max_samples), rate="")
        for result in pipeline.run(paths):
            stats.add(result, console)
            if result.faces is not None and len(result.faces):
                assert result.faces.crops is not None  # the photo pipeline aligns every face it returns
                crops.append(result.faces.crops[0])
                progress.advance(task)
            if len(crops) >= max_samples:
                break
    console.print(stats.summary())
    if len(crops) < MIN_SAMPLES:
        console.print(f"[red]error[/] FROQ calibration needs at least {MIN_SAMPLES} faces; found {len(crops)}; nothing written")
        sys.exit(EXIT_NOTHING_DONE)

    with make_progress(console) as progress:
        task = progress.add_task("pseudo-labels", total=len(crops), rate="")
        calibration = calibrate_model(
            fr,
            np.stack(crops),
            standardize=standardize,
            alpha=alpha,
            noise_draws=noise_draws,
            occlusion_grid=occlusion_grid,
            seed=seed,
            batch_size=batch_size,
            progress=lambda n: progress.advance(task, n),
        )
    out = calibration.save(Path(out_file))
    for line in calibration.report():
        console.print(line, soft_wrap=True, markup=False)
    console.print(f"-> {out}")
