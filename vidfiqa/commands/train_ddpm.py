"""``vidfiqa train ddpm``: train the small diffusion model DifFIQA perturbs faces with.

A long, interruptible CPU job: the full training state is checkpointed atomically every
``--checkpoint-every`` steps, on Ctrl-C and at ``--time-limit``; ``--resume`` continues exactly
where the file left off.  At the end it reports reconstruction PSNR on held-out crops.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from .common import detector_from_options, detector_options, make_console, make_progress
from ..errors import ConfigError, InputError



def load_crops(inputs, aligned: bool, det_kwargs: dict, console) -> np.ndarray:
    """uint8 (N, 112, 112, 3) RGB crops: the images themselves with ``aligned``, else the
    largest detected face of each image, aligned to the ArcFace template."""
    from ..photos import PhotoPipeline

    detector = None if aligned else detector_from_options(**det_kwargs)
    pipeline = PhotoPipeline(detector, largest_only=True, aligned_input=aligned)
    crops, skipped = [], 0
    for result in pipeline.run(inputs):
        if result.faces is None or len(result.faces) == 0:
            skipped += 1
            console.print(f"[yellow]skipped[/] {result.error}", soft_wrap=True)
            continue
        assert result.faces.crops is not None  # the photo pipeline aligns every face it returns
        crops.append(result.faces.crops)
    if not crops:
        raise InputError("no face crops found in the inputs; nothing to train on")
    out = np.concatenate(crops)
    console.print(f"{len(out)} crops loaded ({skipped} inputs skipped)")
    return out


@click.command("ddpm")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--aligned", is_flag=True, help="Inputs are aligned 112x112 crops: skip detection.")
@click.option("--config", "config_name", type=click.Choice(["small", "authors", "tiny"]), default="small", show_default=True,
              help="UNet size: small (ours, CPU-trainable), authors (DifFIQA's 143 M), tiny (tests only).")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), required=True, help="Training checkpoint (.pt), rewritten as training goes.")
@click.option("--steps", type=click.IntRange(1), default=20_000, show_default=True, help="Total optimiser steps (a resumed run counts the steps done).")
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=2e-4, show_default=True, help="AdamW learning rate (after a 50-step warm-up).")
@click.option("--t-max", type=click.IntRange(1, 999), default=100, show_default=True, help="Train on timesteps 0..t-max only.")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint at -o (starts fresh if there is none yet).")
@click.option("--checkpoint-every", type=click.IntRange(1), default=200, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the weights, the held-out split, batches and noise.")
@click.option("--ema-decay", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True, help="Keep an EMA copy of the weights (0: off).")
@click.option("--holdout", type=click.IntRange(0), default=64, show_default=True, help="Crops never trained on, for the PSNR check.")
@click.option("--eval-crops", type=click.IntRange(0), default=16, show_default=True, help="Held-out crops used for the final PSNR (0: skip it).")
@click.option("--eval-t", "eval_ts", type=click.IntRange(1, 999), multiple=True, default=(5, 50), show_default=True,
              help="Timesteps to reconstruct from for the PSNR check (repeatable; t=50 costs ~51 UNet passes per crop).")
@click.option("--time-limit", type=click.FloatRange(0, min_open=True), default=None, help="Stop (with a checkpoint) after this many minutes.")
@click.option("--threads", type=click.IntRange(1), default=None, help="PyTorch CPU threads (default: PyTorch's choice).")
@click.option("--export", type=click.Path(dir_okay=False), default=None, help="Also write an inference-only float16 copy here (for DifFIQA).")
@detector_options
def ddpm(inputs, aligned, config_name, out, steps, batch_size, lr, t_max, resume, checkpoint_every, seed, ema_decay, holdout,
         eval_crops, eval_ts, time_limit, threads, export, detector, detector_model, input_size, score_threshold, device):
    """Train the DifFIQA diffusion model (x0-prediction, cosine schedule) on face crops."""
    import torch

    from ..diffusion import CONFIGS, TrainSettings, export_for_inference, read_checkpoint, reconstruction_psnr, save_checkpoint, train_ddpm

    if threads:
        torch.set_num_threads(threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device} requested but this PyTorch build sees no CUDA GPU; use --device cpu")
    console = make_console()
    det_kwargs = dict(detector=detector, detector_model=detector_model, input_size=input_size, score_threshold=score_threshold, device=device)
    crops = load_crops(inputs, aligned, det_kwargs, console)
    settings = TrainSettings(config=CONFIGS[config_name], steps=steps, batch_size=batch_size, lr=lr, t_max=t_max,
                             checkpoint_every=checkpoint_every, seed=seed, ema_decay=ema_decay, holdout=holdout,
                             time_limit_s=time_limit * 60 if time_limit else None, device=device)
    out_path = Path(out)
    with make_progress(console) as progress:
        task = progress.add_task("train ddpm", total=steps, rate="")

        def on_step(step: int, loss: float) -> None:
            progress.update(task, completed=step, rate=f"loss {loss:.4f}")

        result = train_ddpm(crops, out_path, settings, resume=resume, log=console.print, on_step=on_step)
    console.print(f"trained to step {result.step} in {result.seconds:.0f} s -> {out_path}")

    metrics = {}
    held = crops[result.holdout[:eval_crops]]
    if len(held):
        for t in eval_ts:
            m = reconstruction_psnr(result.diffusion, held, t, seed=seed)
            metrics[f"t{t}"] = m
            console.print(f"held-out PSNR at t={t}: reconstruction {m['psnr']:.2f} dB, noisy input {m['psnr_noisy_input']:.2f} dB ({m['n']} crops)")
        ckpt = read_checkpoint(out_path)
        ckpt["metrics"] = {"step": result.step, **metrics}
        save_checkpoint(out_path, {k: v for k, v in ckpt.items() if k not in ("format", "version")})
    else:
        console.print("no held-out crops: PSNR not measured")
    if export:
        size = export_for_inference(out_path, export, half=True)
        console.print(f"inference copy (float16) -> {export} ({size / 1e6:.1f} MB)")
