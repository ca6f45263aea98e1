"""Gaussian diffusion as DifFIQA uses it: cosine schedule, x0-prediction, short DDIM reconstructions.

* 1000 timesteps, cosine beta schedule (Nichol & Dhariwal, s = 0.008, betas clipped at 0.999),
  images in [-1, 1].
* The network predicts the clean image x0 (``pred_x0``); training minimises the per-image mean
  **squared** error to x0 (the authors' train_config.yaml sets ``loss_type: 'l2'``; the library's
  default would have been L1; the p2 loss weight is 1 for every t because gamma = 0).
* Training only ever sees t in [0, t_max] (t_max = 100): DifFIQA perturbs faces only slightly.
* :meth:`GaussianDiffusion.reconstruct` reproduces the authors' ``ddim_sample_at_t`` with
  ``nof_s = t + 1``: for t = 5 the integer schedule is 4 -> 3 -> 2 -> 1 -> 0 -> 0 and a last call
  at 0 returns the predicted x0.  ``eta = 0`` (default) is the deterministic DDIM update the
  method notes describe; ``eta = 1`` adds fresh noise at each step, which is what the authors'
  code actually did (its ``ddim_sampling_eta`` defaulted to 1 and the config never set it).

Checkpoints
-----------
*Authors' format* (``diff_pretrain.pt``): ``{'model', 'ema', 'opt', 'step'[, 'scaler']}`` where
``model`` is the state of the whole diffusion module: the UNet under ``model.`` plus 13 schedule
buffers (``betas``, ``alphas_cumprod``, ...).  :class:`GaussianDiffusion` registers the same
buffers, so ``load_state_dict(strict=True)`` is the layout check; inference uses ``model``.

*Our format*: ``{'format': 'vidfiqa-ddpm', 'version': 1, 'config': UNetConfig dict,
'diffusion': {...}, 'model': UNet state, 'ema': UNet state or None, 'opt': AdamW state or
None, 'step': int, 'rng': generator state, ...}`` written by :func:`save_checkpoint` (atomically).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..atomic import atomic_open
from ..errors import WeightsError
from .unet import AUTHORS_CONFIG, UNet, UNetConfig

FORMAT = "vidfiqa-ddpm"
FORMAT_VERSION = 1
TIMESTEPS = 1000
T_MAX = 100

# The buffers the authors' GaussianDiffusion registered, in their order (all float32, (T,)).
SCHEDULE_BUFFERS = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
    "p2_loss_weight",
)


def cosine_beta_schedule(timesteps: int = TIMESTEPS, s: float = 0.008) -> torch.Tensor:
    """float64 betas of the cosine schedule: alpha_bar(t) = f(t) / f(0), f(t) = cos^2(((t/T + s)
    / (1 + s)) pi/2), beta_t = 1 - alpha_bar(t+1) / alpha_bar(t), clipped to [0, 0.999]."""
    # device="cpu" explicitly: the schedule must be real even under a `with torch.device("meta")`.
    x = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64, device="cpu")
    f = torch.cos(((x / timesteps) + s) / (1 + s) * math.pi * 0.5) ** 2
    alphas_cumprod = f / f[0]
    betas = 1 - alphas_cumprod[1:] / alphas_cumprod[:-1]
    return betas.clamp(0, 0.999)


def _schedule(timesteps: int) -> dict[str, torch.Tensor]:
    """The schedule buffers, computed in float64 and stored as float32 like the authors'."""
    betas = cosine_beta_schedule(timesteps)
    alphas_cumprod = torch.cumprod(1 - betas, dim=0)
    prev = F.pad(alphas_cumprod[:-1], (1, 0), value=1.0)
    posterior_variance = betas * (1 - prev) / (1 - alphas_cumprod)
    values = {
        "betas": betas,
        "alphas_cumprod": alphas_cumprod,
        "alphas_cumprod_prev": prev,
        "sqrt_alphas_cumprod": alphas_cumprod.sqrt(),
        "sqrt_one_minus_alphas_cumprod": (1 - alphas_cumprod).sqrt(),
        "log_one_minus_alphas_cumprod": torch.log(1 - alphas_cumprod),
        "sqrt_recip_alphas_cumprod": (1 / alphas_cumprod).sqrt(),
        "sqrt_recipm1_alphas_cumprod": (1 / alphas_cumprod - 1).sqrt(),
        "posterior_variance": posterior_variance,
        "posterior_log_variance_clipped": torch.log(posterior_variance.clamp(min=1e-20)),
        "posterior_mean_coef1": betas * prev.sqrt() / (1 - alphas_cumprod),
        "posterior_mean_coef2": (1 - prev) * (1 - betas).sqrt() / (1 - alphas_cumprod),
        # p2 weighting with gamma = 0: weight 1 at every t.
        "p2_loss_weight": torch.ones_like(betas),
    }
    return {k: values[k].to(torch.float32) for k in SCHEDULE_BUFFERS}


def _at(buf: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    """buf[t] shaped (B, 1, 1, 1) to broadcast over images."""
    return buf.gather(0, t).reshape(-1, *([1] * (ndim - 1)))


def ddim_time_pairs(t: int) -> list[tuple[int, int]]:
    """(time, time_next) pairs of the authors' reconstruction from forward step ``t``.

    ``linspace(-1, t - 1, t + 2)`` truncated to integers, reversed and paired: for t = 5 that is
    (4, 3), (3, 2), (2, 1), (1, 0), (0, 0), (0, -1); next = -1 means "return the predicted x0".
    """
    if t < 1:
        return []
    times = torch.linspace(-1, t - 1, steps=t + 2).int().tolist()  # .int() truncates towards 0
    times = list(reversed(times))
    return list(zip(times[:-1], times[1:]))


class GaussianDiffusion(nn.Module):
    """A UNet (``.model``) plus the cosine schedule; see the module docstring."""

    # The schedule buffers (SCHEDULE_BUFFERS), registered in __init__; declared for type checkers.
    betas: torch.Tensor
    alphas_cumprod: torch.Tensor
    alphas_cumprod_prev: torch.Tensor
    sqrt_alphas_cumprod: torch.Tensor
    sqrt_one_minus_alphas_cumprod: torch.Tensor
    log_one_minus_alphas_cumprod: torch.Tensor
    sqrt_recip_alphas_cumprod: torch.Tensor
    sqrt_recipm1_alphas_cumprod: torch.Tensor
    posterior_variance: torch.Tensor
    posterior_log_variance_clipped: torch.Tensor
    posterior_mean_coef1: torch.Tensor
    posterior_mean_coef2: torch.Tensor
    p2_loss_weight: torch.Tensor

    def __init__(self, model: UNet, timesteps: int = TIMESTEPS, t_max: int = T_MAX, loss: str = "l2"):
        super().__init__()
        if loss not in ("l1", "l2"):
            raise ValueError(f"loss must be 'l1' or 'l2', got {loss!r}")
        self.model = model
        self.num_timesteps = int(timesteps)
        self.t_max = int(t_max)
        self.loss_type = loss
        device = next(model.parameters()).device
        # The schedule is tiny; keep it real (not meta) even when the UNet is built on 'meta'.
        device = torch.device("cpu") if device.type == "meta" else device
        for name, value in _schedule(self.num_timesteps).items():
            self.register_buffer(name, value.to(device))

    @property
    def config(self) -> UNetConfig:
        return self.model.config

    # -------------------------------------------------------------------------- forward process
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor | int, noise: torch.Tensor | None = None) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise (t: int or (B,) long)."""
        t = self._as_batch(t, x0)
        if noise is None:
            noise = torch.randn_like(x0)
        return _at(self.sqrt_alphas_cumprod, t, x0.ndim) * x0 + _at(self.sqrt_one_minus_alphas_cumprod, t, x0.ndim) * noise

    def _as_batch(self, t: torch.Tensor | int, x: torch.Tensor) -> torch.Tensor:
        if isinstance(t, torch.Tensor) and t.ndim == 1:
            return t.to(device=x.device, dtype=torch.long)
        return torch.full((x.shape[0],), int(t), device=x.device, dtype=torch.long)

    # -------------------------------------------------------------------------- the network
    def model_predictions(self, x_t: torch.Tensor, t: torch.Tensor, clip_x0: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted noise, predicted x0) at timesteps ``t``; x0 clipped to [-1, 1] as in sampling."""
        x0 = self.model(x_t, t)
        if clip_x0:
            x0 = x0.clamp(-1.0, 1.0)
        noise = self.predict_noise_from_start(x_t, t, x0)
        return noise, x0

    def predict_noise_from_start(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return (_at(self.sqrt_recip_alphas_cumprod, t, x_t.ndim) * x_t - x0) / _at(self.sqrt_recipm1_alphas_cumprod, t, x_t.ndim)

    # -------------------------------------------------------------------------- training
    def loss(self, x0: torch.Tensor, t: torch.Tensor | None = None, noise: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean x0-prediction loss of a batch of clean images in [-1, 1].

        ``t`` defaults to uniform integers in [0, t_max] (both ends included).
        """
        b = x0.shape[0]
        if t is None:
            t = torch.randint(0, self.t_max + 1, (b,), generator=generator, device="cpu").to(x0.device)
        if noise is None:
            noise = torch.randn(x0.shape, generator=generator, device="cpu").to(x0.device)
        x_t = self.q_sample(x0, t, noise)
        pred = self.model(x_t, t)
        if self.loss_type == "l2":
            per_image = F.mse_loss(pred, x0, reduction="none").flatten(1).mean(1)
        else:
            per_image = F.l1_loss(pred, x0, reduction="none").flatten(1).mean(1)
        return (per_image * _at(self.p2_loss_weight, t, 2).flatten()).mean()

    # -------------------------------------------------------------------------- reconstruction
    @torch.no_grad()
    def reconstruct(self, x_t: torch.Tensor, t: int, eta: float = 0.0, clip_x0: bool = True,
                    step_noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Denoise ``x_t`` (made by ``q_sample(x0, t)``) back to an estimate of x0.

        Follows :func:`ddim_time_pairs`.  The (0, 0) pair is skipped without calling the
        network: with sigma = 0 and the noise re-derived from the predicted x0, that update
        returns its input exactly (sqrt(a) x0 + sqrt(1 - a) eps(x0) = x), whatever the model
        predicts - so skipping it changes nothing but saves one network call in six at t = 5.

        ``eta > 0`` adds noise at every (time, next >= 0) step: taken from ``step_noise``
        (shape (steps, *x_t.shape), one slice per such step, so callers can make it per-image
        reproducible) or drawn from ``generator``.
        """
        x = x_t
        pairs = ddim_time_pairs(int(t))
        noisy_steps = [p for p in pairs if p[1] >= 0 and p[0] != p[1]]
        if eta > 0 and step_noise is not None and step_noise.shape[0] < len(noisy_steps):
            raise ValueError(f"step_noise has {step_noise.shape[0]} slices; {len(noisy_steps)} are needed for t={t}")
        k = 0
        for time, time_next in pairs:
            if time == time_next:
                continue
            tt = torch.full((x.shape[0],), time, device=x.device, dtype=torch.long)
            pred_noise, x0 = self.model_predictions(x, tt, clip_x0)
            if time_next < 0:
                x = x0
                continue
            alpha, alpha_next = self.alphas_cumprod[time], self.alphas_cumprod[time_next]
            sigma = eta * ((1 - alpha / alpha_next) * (1 - alpha_next) / (1 - alpha)).sqrt()
            c = (1 - alpha_next - sigma**2).sqrt()
            x = x0 * alpha_next.sqrt() + c * pred_noise
            if eta > 0:
                if step_noise is not None:
                    z = step_noise[k].to(x)
                else:
                    z = torch.randn(x.shape, generator=generator, device="cpu").to(x)
                x = x + sigma * z
            k += 1
        return x

    @staticmethod
    def n_noisy_steps(t: int) -> int:
        """How many noise slices :meth:`reconstruct` consumes at ``eta > 0``."""
        return sum(1 for a, b in ddim_time_pairs(int(t)) if b >= 0 and a != b)


# ================================================================================== checkpoints
def _torch_load(path: Path) -> Any:
    """Load a checkpoint without executing pickled code; memory-map zip checkpoints so the
    authors' ~2.8 GB training state (model + EMA + Adam moments) is not read into RAM in full."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) file


def read_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"diffusion checkpoint {path} does not exist")
    try:
        obj = _torch_load(path)
    except Exception as exc:  # torch raises several types for corrupt / non-torch files
        raise WeightsError(f"cannot read {path} as a PyTorch checkpoint: {exc}") from None
    if not isinstance(obj, Mapping) or "model" not in obj:
        raise WeightsError(f"{path} is not a diffusion checkpoint (expected a dict with a 'model' entry)")
    return dict(obj)


def is_own_format(ckpt: Mapping) -> bool:
    return ckpt.get("format") == FORMAT


def _layout_problems(expected: Mapping[str, torch.Tensor], state: Mapping[str, Any]) -> str:
    """'' when keys and shapes match exactly, else a short description of what differs."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in state and tuple(getattr(state[k], "shape", ())) != tuple(v.shape)]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if items:
            more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
            parts.append(f"{len(items)} {label}: {', '.join(items[:3])}{more}")
    return "; ".join(parts)


def check_authors_state(diffusion: GaussianDiffusion, state: Mapping[str, Any], source: str = "checkpoint") -> None:
    """Raise :class:`WeightsError` unless ``state`` has exactly the keys/shapes of ``diffusion``
    (UNet under ``model.`` + schedule buffers)."""
    problems = _layout_problems(diffusion.state_dict(), state)
    if problems:
        raise WeightsError(f"{source} does not match the DifFIQA UNet ({diffusion.config.name} config): {problems}")


def _check_schedule(diffusion: GaussianDiffusion, source: str) -> None:
    """The checkpoint's schedule buffers must be the cosine schedule we reconstruct with."""
    expected = _schedule(diffusion.num_timesteps)
    for name in ("betas", "alphas_cumprod"):
        got = getattr(diffusion, name).detach().float().cpu()
        if not torch.allclose(got, expected[name], rtol=1e-4, atol=1e-6):
            raise WeightsError(f"{source}: its '{name}' is not the 1000-step cosine schedule DifFIQA uses")


def load_diffusion(path: str | os.PathLike, config: UNetConfig | None = None, device: str | torch.device = "cpu",
                   use_ema: bool = False) -> GaussianDiffusion:
    """A :class:`GaussianDiffusion` in eval mode (float32) from either checkpoint format.

    Our format carries its own UNet config (``config`` is ignored).  The authors' format does
    not: ``config`` (default :data:`AUTHORS_CONFIG`) is the architecture to load it into, with
    strict key-and-shape checking.  ``use_ema`` picks the EMA weights of our format (the
    authors' inference, and ours by default, use ``model``).
    """
    ckpt = read_checkpoint(path)
    return diffusion_from_checkpoint(ckpt, config, device, use_ema, source=str(path))


def diffusion_from_checkpoint(ckpt: Mapping, config: UNetConfig | None = None, device: str | torch.device = "cpu",
                              use_ema: bool = False, source: str = "checkpoint") -> GaussianDiffusion:
    if is_own_format(ckpt):
        if int(ckpt.get("version", 0)) > FORMAT_VERSION:
            raise WeightsError(f"{source} was written by a newer vidfiqa (format version {ckpt['version']})")
        cfg = UNetConfig.from_dict(ckpt["config"])
        settings = ckpt.get("diffusion") or {}
        diffusion = GaussianDiffusion(UNet(cfg), timesteps=int(settings.get("timesteps", TIMESTEPS)),
                                      t_max=int(settings.get("t_max", T_MAX)), loss=settings.get("loss", "l2"))
        state = ckpt.get("ema") if use_ema else ckpt["model"]
        if state is None:
            raise WeightsError(f"{source} holds no EMA weights (trained without --ema-decay)")
        problems = _layout_problems(diffusion.model.state_dict(), state)
        if problems:
            raise WeightsError(f"{source} does not match its own UNet config: {problems}")
        diffusion.model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    else:
        if use_ema:
            raise WeightsError(f"{source}: EMA weights of the authors' checkpoint are not supported; inference uses 'model'")
        cfg = config or AUTHORS_CONFIG
        diffusion = GaussianDiffusion(UNet(cfg))
        state = ckpt["model"]
        if isinstance(state, Mapping) and state and all(k.startswith("module.") for k in state):
            state = {k[len("module."):]: v for k, v in state.items()}  # saved from a DDP wrapper
        check_authors_state(diffusion, state, source)
        diffusion.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        _check_schedule(diffusion, source)
    return diffusion.to(device).eval()


def authors_checkpoint(diffusion: GaussianDiffusion, step: int = 0, opt_state: dict | None = None) -> dict:
    """A dict in the authors' layout (for tests and for exporting to their code)."""
    state = diffusion.state_dict()
    return {"step": int(step), "model": state, "opt": opt_state or {"state": {}, "param_groups": []},
            "ema": {}, "scaler": None}


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` (our format; 'format'/'version' are added) atomically."""
    payload = {"format": FORMAT, "version": FORMAT_VERSION, **payload}
    with atomic_open(path, "wb") as handle:
        torch.save(payload, handle)


def export_for_inference(src: str | os.PathLike | Mapping, dst: str | os.PathLike, half: bool = True, use_ema: bool = False) -> int:
    """Copy of one of our checkpoints with only what inference needs (weights, config, metrics),
    in float16 by default.  Returns the size of the written file in bytes."""
    ckpt = read_checkpoint(src) if not isinstance(src, Mapping) else dict(src)
    if not is_own_format(ckpt):
        raise WeightsError("export_for_inference takes a vidfiqa-ddpm checkpoint")
    state = ckpt.get("ema") if use_ema else ckpt["model"]
    if state is None:
        raise WeightsError("the checkpoint holds no EMA weights")
    dtype = torch.float16 if half else torch.float32
    keep = {k: ckpt[k] for k in ("config", "diffusion", "step", "metrics", "train", "data") if k in ckpt}
    keep.update(model={k: v.detach().to(dtype).clone() for k, v in state.items()}, ema=None, opt=None, weights="ema" if use_ema else "model")
    save_checkpoint(dst, {k: v for k, v in keep.items() if k not in ("format", "version")})
    return Path(dst).stat().st_size
