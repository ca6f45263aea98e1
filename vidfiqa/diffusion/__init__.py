"""The denoising diffusion model behind DifFIQA: UNet, Gaussian diffusion, checkpoints, training.

* :mod:`.unet` - the UNet in the layout of the authors' checkpoint (:data:`AUTHORS_CONFIG`,
  ~143 M parameters) and the small one we train ourselves (:data:`SMALL_CONFIG`);
* :mod:`.gaussian` - cosine schedule, ``q_sample``, x0-prediction loss, DDIM reconstruction,
  loading the authors' ``diff_pretrain.pt`` and our own checkpoints;
* :mod:`.train` - the resumable CPU training loop and the reconstruction-PSNR check.
"""

from .gaussian import (
    FORMAT,
    SCHEDULE_BUFFERS,
    GaussianDiffusion,
    authors_checkpoint,
    check_authors_state,
    cosine_beta_schedule,
    ddim_time_pairs,
    diffusion_from_checkpoint,
    export_for_inference,
    is_own_format,
    load_diffusion,
    read_checkpoint,
    save_checkpoint,
)
from .train import TrainResult, TrainSettings, psnr, reconstruction_psnr, split_holdout, to_model_range, train_ddpm
from .unet import AUTHORS_CONFIG, CONFIGS, SMALL_CONFIG, TINY_CONFIG, UNet, UNetConfig, count_parameters

__all__ = [
    "AUTHORS_CONFIG",
    "CONFIGS",
    "FORMAT",
    "SCHEDULE_BUFFERS",
    "SMALL_CONFIG",
    "TINY_CONFIG",
    "GaussianDiffusion",
    "TrainResult",
    "TrainSettings",
    "UNet",
    "UNetConfig",
    "authors_checkpoint",
    "check_authors_state",
    "cosine_beta_schedule",
    "count_parameters",
    "ddim_time_pairs",
    "diffusion_from_checkpoint",
    "export_for_inference",
    "is_own_format",
    "load_diffusion",
    "psnr",
    "read_checkpoint",
    "reconstruction_psnr",
    "save_checkpoint",
    "split_holdout",
    "to_model_range",
    "train_ddpm",
]
