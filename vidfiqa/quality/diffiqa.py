"""DifFIQA (Babnik, Peer, Struc, IJCB 2023): quality = how well identity survives diffusion.

Each face x and its mirror image x^f are noised a little (``q_sample`` to step t = 5) and
reconstructed by the diffusion model (deterministic DDIM steps 4 -> 0); a face recognition
model compares the original's embedding with the noisy and reconstructed versions:

    q = 1/5 [cos(e(x), e(x_t)) + cos(e(x), e(x^)) + cos(e(x), e(x_t^f)) + cos(e(x), e(x^^f))
             + cos(e(x), e(x^f))]

each noisy/reconstructed term averaged over ``repeats`` fresh noise draws.  Good faces keep their
identity through the perturbation; blurred, occluded or badly posed ones do not.

Determinism: the noise for a face comes from a generator seeded with ``seed`` and the crop's
bytes, so a face gets the same score whatever else is in the batch and wherever it sits.

Cost: 2 x repeats x 5 UNet passes and 4 x repeats + 2 FR passes per face (100 + 42 with the
defaults) - seconds per face on a CPU even with the small model; it is a teacher for learned
quality models rather than something to run on every video frame.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError, WeightsError
from .base import QualityScorer
from .options import reject_unknown

BUNDLED_CHECKPOINT = Path(__file__).resolve().parents[1] / "models" / "diffiqa_small.pt"
AUTHORS_FILE = "diff_pretrain.pt"


def _find_checkpoint(diffusion: str | os.PathLike | None, config: str) -> Path:
    """The checkpoint to load: an explicit path, else the bundled small model, else (config
    'authors') diff_pretrain.pt in $VIDFIQA_WEIGHTS; a one-line WeightsError says what to do."""
    from ..backbones.registry import WEIGHTS_ENV

    if diffusion is not None:
        path = Path(diffusion).expanduser()
        if path.is_dir():
            path = path / (AUTHORS_FILE if config == "authors" else BUNDLED_CHECKPOINT.name)
        if not path.is_file():
            raise WeightsError(f"diffiqa: diffusion checkpoint {path} does not exist")
        return path
    if config == "small" and BUNDLED_CHECKPOINT.is_file():
        return BUNDLED_CHECKPOINT
    dirs = [Path(d).expanduser() for d in os.environ.get(WEIGHTS_ENV, "").split(os.pathsep) if d.strip()]
    name = AUTHORS_FILE if config == "authors" else BUNDLED_CHECKPOINT.name
    for d in dirs:
        if (d / name).is_file():
            return d / name
    raise WeightsError(
        f"diffiqa: no diffusion model ({name} not found in {BUNDLED_CHECKPOINT.parent} or ${WEIGHTS_ENV}); "
        f"train one with `vidfiqa train ddpm CROPS --aligned -o ckpt.pt --export {BUNDLED_CHECKPOINT}` "
        f"or get the authors' {AUTHORS_FILE} (github.com/LSIbabnikz/DifFIQA) and pass diffusion=PATH with config='authors'"
    )


class DifFIQA(QualityScorer):
    """DifFIQA quality scorer; see the module docstring.

    Options: ``diffusion`` checkpoint path (ours or the authors'), ``config`` ('small' or
    'authors': the default checkpoint to look for, and the architecture of an authors'-format
    file), ``fr_model``/``weights`` (registry FR backbone), ``device``, ``t`` (forward step),
    ``repeats``, ``seed``, ``eta`` (0: deterministic DDIM as in the method notes; 1: the
    authors' code's stochastic steps), ``batch_size`` (network inputs per UNet pass; images
    per pass = batch_size // (2 * repeats), as in the authors' inference script).
    """

    name = "diffiqa"
    needs_faces = False

    def __init__(self, diffusion: str | os.PathLike | None = None, config: str = "small", fr_model: str = "mobilefacenet",
                 weights: str | os.PathLike | None = None, device: str = "cpu", t: int = 5, repeats: int = 10, seed: int = 0,
                 eta: float = 0.0, batch_size: int = 64, **unknown):
        reject_unknown(self.name, unknown, DifFIQA)
        import torch

        from ..backbones.registry import get_spec, load_backbone
        from ..diffusion import CONFIGS, load_diffusion

        if config not in ("small", "authors"):
            raise ConfigError(f"diffiqa: config must be 'small' or 'authors', got {config!r}")
        if not 1 <= int(t) < 1000:
            raise ConfigError(f"diffiqa: t must be in 1..999, got {t}")
        if int(repeats) < 1:
            raise ConfigError(f"diffiqa: repeats must be >= 1, got {repeats}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        spec = get_spec(fr_model)
        if spec.preprocessing is None:
            raise ConfigError(f"diffiqa: FR model {fr_model} is not a PyTorch backbone; DifFIQA embeds float images, use e.g. mobilefacenet or iresnet100")
        self.fr = load_backbone(fr_model, Path(weights) if weights is not None else None, device)
        self.preprocessing = spec.preprocessing
        self.checkpoint = _find_checkpoint(diffusion, config)
        self.diffusion = load_diffusion(self.checkpoint, config=CONFIGS[config], device=device)
        self.device = torch.device(device)
        self.t, self.repeats, self.seed, self.eta = int(t), int(repeats), int(seed), float(eta)
        self.batch_size = int(batch_size)
        self.images_per_pass = max(1, self.batch_size // (2 * self.repeats))
        pp = self.preprocessing
        order = [2, 1, 0] if pp.channel_order == "BGR" else [0, 1, 2]
        self._channel_order = torch.tensor(order, device=self.device)
        # mean/std are given in the network's channel order, i.e. after the reordering above.
        self._mean = torch.tensor(pp.mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(pp.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    # ------------------------------------------------------------------------------ helpers
    def _embed(self, x):
        """Float images in [-1, 1] (N, 3, H, W) RGB -> FR embeddings, normalised the way the FR
        model was trained (no uint8 rounding: noisy images are embedded as they are)."""
        import torch
        import torch.nn.functional as F

        parts = []
        size = self.preprocessing.input_size
        for i in range(0, len(x), self.batch_size):
            v = (x[i:i + self.batch_size] + 1) * 0.5
            v = v.index_select(1, self._channel_order)
            if v.shape[-1] != size or v.shape[-2] != size:
                v = F.interpolate(v, size=(size, size), mode="bilinear", align_corners=False)
            parts.append(self.fr((v - self._mean) / self._std).float())
        return torch.cat(parts)

    def _noise_for(self, crop: np.ndarray):
        """(q_sample noise (2R, 3, H, W), step noise (S, 2R, 3, H, W) or None) for one crop,
        from a generator keyed by the seed and the crop's bytes."""
        import torch

        digest = hashlib.blake2b(np.ascontiguousarray(crop).tobytes(), digest_size=8, key=str(self.seed).encode()).digest()
        g = torch.Generator().manual_seed(int.from_bytes(digest, "little"))
        shape = (2 * self.repeats, 3, crop.shape[0], crop.shape[1])
        noise = torch.randn(shape, generator=g)
        steps = self.diffusion.n_noisy_steps(self.t)
        step_noise = torch.randn((steps, *shape), generator=g) if self.eta > 0 else None
        return noise, step_noise

    # ------------------------------------------------------------------------------ scoring
    def score(self, crops: np.ndarray, faces=None) -> np.ndarray:
        crops = np.asarray(crops, dtype=np.uint8)
        if crops.ndim == 3:
            crops = crops[None]
        if crops.ndim != 4 or crops.shape[-1] != 3:
            raise ValueError(f"crops must be uint8 (N, H, W, 3) RGB; got shape {crops.shape}")
        size = self.diffusion.config.image_size
        if crops.shape[1:3] != (size, size):
            import cv2

            crops = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in crops]) if len(crops) else np.zeros((0, size, size, 3), np.uint8)
        out = [self._score_chunk(crops[i:i + self.images_per_pass]) for i in range(0, len(crops), self.images_per_pass)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)

    def _score_chunk(self, crops: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        from ..diffusion import to_model_range

        n, r = len(crops), self.repeats
        with torch.inference_mode():
            x = to_model_range(crops).to(self.device)  # (n, 3, H, W)
            xf = x.flip(-1)
            # Per image: R copies of x then R copies of x^f -> (n * 2R, 3, H, W).
            starts = torch.stack((x, xf), dim=1).repeat_interleave(r, dim=1).flatten(0, 1)
            noises = [self._noise_for(c) for c in crops]
            noise = torch.cat([a for a, _ in noises]).to(self.device)
            step_noise = torch.cat([b for _, b in noises], dim=1).to(self.device) if self.eta > 0 else None
            x_t = self.diffusion.q_sample(starts, self.t, noise)
            x_hat = self.diffusion.reconstruct(x_t, self.t, eta=self.eta, step_noise=step_noise)

            e = self._embed(torch.cat((x, xf, x_t, x_hat)))
            e_x, e_xf = e[:n], e[n:2 * n]
            e_t = e[2 * n:2 * n + 2 * n * r].view(n, 2, r, -1)
            e_hat = e[2 * n + 2 * n * r:].view(n, 2, r, -1)
            ref = e_x[:, None, None, :]
            cos_t = F.cosine_similarity(ref, e_t, dim=-1).mean(dim=2)  # (n, 2): [base, flip]
            cos_hat = F.cosine_similarity(ref, e_hat, dim=-1).mean(dim=2)
            cos_flip = F.cosine_similarity(e_x, e_xf, dim=-1)
            q = (cos_t[:, 0] + cos_hat[:, 0] + cos_t[:, 1] + cos_hat[:, 1] + cos_flip) / 5
        return q.float().cpu().numpy()

    def __repr__(self) -> str:
        return f"DifFIQA(checkpoint={str(self.checkpoint)!r}, t={self.t}, repeats={self.repeats}, eta={self.eta})"
