"""Training our own small DifFIQA diffusion model on aligned face crops (a resumable CPU job).

:func:`train_ddpm` is the loop behind ``vidfiqa train ddpm``.  It is built to be interrupted:
every ``checkpoint_every`` steps (and on Ctrl-C or when a time limit is reached) it writes the
full training state - weights, optional EMA, AdamW moments, step, the random generator that draws
batches / flips / timesteps / noise, and the loss history - atomically to one file.  Resuming from
that file continues with exactly the state an uninterrupted run would have had (the same batches,
the same noise), so ``steps = a`` then resume to ``a + b`` equals one run of ``a + b`` steps.

A held-out set of crops (chosen from the seed, never trained on) measures reconstruction PSNR at
the end: the crop is noised to step t and reconstructed like DifFIQA does (t = 5), and also from
t = 50 as a harder check.  The PSNR of the noisy input itself is reported beside it: a model that
is worth using must beat it.
"""

from __future__ import annotations

import copy
import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import ConfigError
from .gaussian import GaussianDiffusion, diffusion_from_checkpoint, read_checkpoint, save_checkpoint
from .unet import UNet, UNetConfig

Log = Callable[[str], None]


@dataclass
class TrainSettings:
    config: UNetConfig
    steps: int = 20_000
    batch_size: int = 8
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup: int = 50
    t_max: int = 100
    checkpoint_every: int = 200
    seed: int = 0
    ema_decay: float = 0.0  # 0 disables the EMA copy
    holdout: int = 64
    max_grad_norm: float = 1.0
    time_limit_s: float | None = None
    log_every: int = 10
    device: str = "cpu"  # the generator stays on the CPU, so runs are reproducible on any device

    def to_dict(self) -> dict:
        d = asdict(self)
        d["config"] = self.config.to_dict()
        return d


@dataclass
class TrainResult:
    step: int
    losses: list[float]
    stopped_early: bool
    holdout: np.ndarray  # indices (into the crops given) never trained on
    diffusion: GaussianDiffusion
    seconds: float = 0.0
    metrics: dict = field(default_factory=dict)


def to_model_range(crops: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) RGB -> float32 (N, 3, H, W) in [-1, 1]."""
    # astype copies into a fresh array: a reversed view of length 1 is flagged contiguous by
    # NumPy yet keeps its negative stride, which torch.from_numpy rejects.
    x = torch.from_numpy(np.asarray(crops).astype(np.float32)).permute(0, 3, 1, 2)
    return x / 127.5 - 1.0


def fingerprint(crops: np.ndarray) -> str:
    """Short hash of the training data, to warn when a resume is given different crops."""
    return hashlib.sha256(np.ascontiguousarray(crops).tobytes()).hexdigest()[:16]


def split_holdout(n: int, holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices): a seeded permutation; at least one crop is trained on."""
    holdout = max(0, min(int(holdout), n - 1))
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[holdout:]), np.sort(perm[:holdout])


def _lr_at(step: int, settings: TrainSettings) -> float:
    """Linear warm-up, then constant (short CPU runs never get far enough to decay)."""
    if settings.warmup > 0 and step < settings.warmup:
        return settings.lr * (step + 1) / settings.warmup
    return settings.lr


def train_ddpm(crops: np.ndarray, out: str | Path, settings: TrainSettings, resume: bool = False,
               log: Log = print, on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train (or continue training) on uint8 (N, 112, 112, 3) RGB aligned crops; see the module doc."""
    out = Path(out)
    if crops.ndim != 4 or crops.shape[-1] != 3:
        raise ConfigError(f"crops must be (N, H, W, 3) uint8; got {crops.shape}")
    if crops.shape[1] != settings.config.image_size or crops.shape[2] != settings.config.image_size:
        raise ConfigError(f"crops are {crops.shape[2]}x{crops.shape[1]}; the model needs {settings.config.image_size}x{settings.config.image_size}")
    if len(crops) < 2:
        raise ConfigError(f"need at least 2 crops to train, got {len(crops)}")

    device = torch.device(settings.device)
    generator = torch.Generator().manual_seed(settings.seed)
    diffusion = GaussianDiffusion(_seeded_unet(settings.config, settings.seed), t_max=settings.t_max).to(device)
    opt = torch.optim.AdamW(diffusion.model.parameters(), lr=settings.lr, betas=(0.9, 0.99), weight_decay=settings.weight_decay)
    ema = copy.deepcopy(diffusion.model).requires_grad_(False) if settings.ema_decay > 0 else None
    step, losses = 0, []
    data_hash = fingerprint(crops)
    train_idx, holdout_idx = split_holdout(len(crops), settings.holdout, settings.seed)

    if resume and out.is_file():
        ckpt = read_checkpoint(out)
        saved_cfg = UNetConfig.from_dict(ckpt["config"])
        if saved_cfg != settings.config:
            raise ConfigError(f"{out} was trained with config {saved_cfg.name} (dim {saved_cfg.dim}, mults {saved_cfg.dim_mults}), "
                              f"not {settings.config.name}; resume with the same --config")
        diffusion = diffusion_from_checkpoint(ckpt, source=str(out), device=device).train()
        diffusion.t_max = settings.t_max
        opt = torch.optim.AdamW(diffusion.model.parameters(), lr=settings.lr, betas=(0.9, 0.99), weight_decay=settings.weight_decay)
        if ckpt.get("opt"):
            opt.load_state_dict(ckpt["opt"])
        if settings.ema_decay > 0:
            ema = copy.deepcopy(diffusion.model).requires_grad_(False)
            if ckpt.get("ema") is not None:
                ema.load_state_dict(ckpt["ema"])
        step = int(ckpt.get("step", 0))
        losses = list(ckpt.get("losses", []))
        if ckpt.get("rng") is not None:
            generator.set_state(ckpt["rng"])
        data = ckpt.get("data") or {}
        if data.get("fingerprint") == data_hash and data.get("holdout") is not None:
            # Same crops: keep the split the run started with, even if --seed/--holdout changed,
            # so held-out crops never leak into training.
            holdout_idx = np.asarray(data["holdout"], dtype=np.int64)
            train_idx = np.setdiff1d(np.arange(len(crops)), holdout_idx)
        elif data.get("fingerprint") is not None:
            log(f"warning: {out} was trained on different crops ({data.get('n')} then, {len(crops)} now); the held-out split is new")
        log(f"resumed {out} at step {step}")
    elif resume:
        log(f"no checkpoint at {out} yet; starting from scratch")
    elif out.exists():
        raise ConfigError(f"{out} exists; pass --resume to continue training it, or choose another -o")

    train_crops = crops[train_idx]
    diffusion.train()
    started = time.monotonic()
    stopped_early = False

    def checkpoint() -> None:
        save_checkpoint(out, {
            "config": settings.config.to_dict(),
            "diffusion": {"timesteps": diffusion.num_timesteps, "beta_schedule": "cosine", "objective": "pred_x0",
                          "loss": diffusion.loss_type, "t_max": settings.t_max},
            "model": diffusion.model.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "opt": opt.state_dict(),
            "step": step,
            "rng": generator.get_state(),
            "losses": losses,
            "train": settings.to_dict(),
            "data": {"n": int(len(crops)), "fingerprint": data_hash, "holdout": holdout_idx.tolist()},
        })

    try:
        while step < settings.steps:
            if settings.time_limit_s is not None and time.monotonic() - started >= settings.time_limit_s:
                stopped_early = True
                log(f"time limit reached at step {step}")
                break
            # Everything random in a step comes from one generator, in a fixed order, so a
            # resumed run draws exactly what an uninterrupted one would.
            idx = torch.randint(0, len(train_crops), (settings.batch_size,), generator=generator)
            flip = torch.rand(settings.batch_size, generator=generator) < 0.5
            x0 = to_model_range(train_crops[idx.numpy()])
            x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0).to(device)
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, settings)
            loss = diffusion.loss(x0, generator=generator)
            if not torch.isfinite(loss):
                raise ConfigError(f"training diverged: loss became {loss.item()} at step {step}; lower --lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if settings.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(diffusion.model.parameters(), settings.max_grad_norm)
            opt.step()
            if ema is not None:
                with torch.no_grad():
                    for e, p in zip(ema.parameters(), diffusion.model.parameters()):
                        e.lerp_(p, 1 - settings.ema_decay)
            step += 1
            losses.append(float(loss.item()))
            if on_step is not None:
                on_step(step, losses[-1])
            if settings.log_every and step % settings.log_every == 0:
                recent = losses[-settings.log_every:]
                elapsed = time.monotonic() - started
                log(f"step {step}/{settings.steps}: loss {np.mean(recent):.5f} (last {len(recent)} steps), {elapsed:.0f} s elapsed")
            if settings.checkpoint_every and step % settings.checkpoint_every == 0:
                checkpoint()
    except KeyboardInterrupt:
        checkpoint()
        log(f"interrupted: checkpoint at step {step} written to {out}; rerun with --resume to continue")
        raise
    checkpoint()
    diffusion.eval()
    return TrainResult(step=step, losses=losses, stopped_early=stopped_early, holdout=holdout_idx,
                       diffusion=diffusion, seconds=time.monotonic() - started)


def _seeded_unet(config: UNetConfig, seed: int) -> UNet:
    """Initial weights from the seed alone (not from whatever the global RNG has seen)."""
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        return UNet(config)
    finally:
        torch.random.set_rng_state(state)


# ================================================================================ evaluation
def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in [-1, 1] (peak-to-peak 2), computed on the clipped range."""
    mse = (a.clamp(-1, 1) - b.clamp(-1, 1)).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp(min=1e-12))


@torch.no_grad()
def reconstruction_psnr(diffusion: GaussianDiffusion, crops: np.ndarray, t: int, seed: int = 0, batch_size: int = 16) -> dict:
    """Mean PSNR of DifFIQA-style reconstructions from step ``t`` (eta = 0) on uint8 crops, and
    of the noisy inputs themselves.  Noise is seeded per run."""
    diffusion.eval()
    generator = torch.Generator().manual_seed(seed * 1000 + t)
    recon, noisy = [], []
    device = diffusion.betas.device
    for i in range(0, len(crops), batch_size):
        x0 = to_model_range(crops[i:i + batch_size]).to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        x_t = diffusion.q_sample(x0, t, noise)
        x_hat = diffusion.reconstruct(x_t, t)
        recon.append(psnr(x_hat, x0))
        noisy.append(psnr(x_t, x0))
    recon_all, noisy_all = torch.cat(recon), torch.cat(noisy)
    return {"t": int(t), "n": int(len(crops)), "psnr": float(recon_all.mean()), "psnr_noisy_input": float(noisy_all.mean()),
            "psnr_min": float(recon_all.min())}


__all__ = ["TrainResult", "TrainSettings", "psnr", "reconstruction_psnr", "split_holdout", "to_model_range", "train_ddpm"]
