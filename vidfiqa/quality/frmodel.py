"""A registry face recognition backbone as a differentiable function of [0, 1] RGB pixels.

FaceQAN attacks pixels and FROQ perturbs them (flips, black squares) before the model's own
normalisation, so both need the model with its normalisation applied *inside* torch rather than
the numpy preprocessing that :mod:`vidfiqa.embed` uses.  This wrapper owns its model: it freezes
the parameters (only input gradients are ever needed) and uses the channels-last memory layout,
which was about 1.7x faster than NCHW for MobileFaceNet on this CPU, forward and backward.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..backbones.registry import find_weights, get_spec, load_backbone, sha256_file
from ..errors import ConfigError


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when PyTorch sees a GPU, else ``cpu``; anything else unchanged."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def folded_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """The eval-mode model with every BatchNorm that follows a convolution folded into its
    weights: the same function (up to float rounding, about 1e-6 of the embedding) without the
    BatchNorm passes, which were about 30 % of FaceQAN's forward-and-backward time on a CPU.
    A model that torch.fx cannot trace is returned as it is."""
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(model.eval())
    except Exception:  # an untraceable architecture: keep the plain model, only slower
        return model


class FRModel:
    """Registry backbone ``name``: ``embed(x01)`` maps (N, 3, S, S) [0, 1] RGB to raw embeddings.

    ``fold_batchnorm``: fold BatchNorm into the convolutions (:func:`folded_batchnorm`) for
    callers that only need the embedding (FaceQAN); FROQ reads the BatchNorm layers themselves.
    """

    def __init__(self, name: str = "mobilefacenet", weights: str | Path | None = None, device: str = "cpu", fold_batchnorm: bool = False):
        spec = get_spec(name)
        if spec.preprocessing is None or spec.builder is None:
            raise ConfigError(f"{name} is not a differentiable PyTorch backbone; choose one of the torch models (mobilefacenet, iresnet*)")
        device = resolve_device(device)
        self.name = name
        self.weights_path = find_weights(spec, weights)
        self.model = load_backbone(name, self.weights_path, device)
        if fold_batchnorm:
            self.model = folded_batchnorm(self.model)
        for param in self.model.parameters():
            param.requires_grad_(False)
        self.model = self.model.to(memory_format=torch.channels_last)
        self.device = next(self.model.parameters()).device
        pre = spec.preprocessing
        if pre.channel_order != "RGB":
            raise ConfigError(f"{name}: only RGB-input backbones are supported here")
        self.input_size = pre.input_size
        self.mean = torch.tensor(pre.mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(pre.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._sha256: str | None = spec.sha256

    @property
    def weights_sha256(self) -> str:
        """sha256 of the weight file (the published one when the registry has it, else hashed)."""
        if self._sha256 is None:
            self._sha256 = sha256_file(self.weights_path)
        return self._sha256

    def to_unit(self, crops: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W, 3) RGB -> float32 (N, 3, S, S) in [0, 1] on the model's device."""
        crops = np.asarray(crops, dtype=np.uint8)
        if crops.ndim == 3:
            crops = crops[None]
        if crops.ndim != 4 or crops.shape[-1] != 3:
            raise ValueError(f"crops must be uint8 (N, H, W, 3) RGB; got shape {crops.shape}")
        size = self.input_size
        if crops.shape[1:3] != (size, size) and len(crops):
            crops = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_LINEAR) for c in crops])
        x = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device)
        return x.permute(0, 3, 1, 2).float().div_(255.0)

    def normalize(self, x01: torch.Tensor) -> torch.Tensor:
        """The model's own input normalisation, differentiable, in channels-last layout."""
        return ((x01 - self.mean) / self.std).contiguous(memory_format=torch.channels_last)

    def embed(self, x01: torch.Tensor) -> torch.Tensor:
        """[0, 1] pixels -> raw embeddings; differentiable with respect to ``x01``."""
        return self.model(self.normalize(x01))

    def embed_normalized(self, xn: torch.Tensor) -> torch.Tensor:
        """Already normalised input -> raw embeddings (FROQ adds its noise in normalised space)."""
        return self.model(xn.contiguous(memory_format=torch.channels_last))


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity of two (N, D) embedding batches."""
    return F.cosine_similarity(a, b, dim=1)


def content_seed(seed: int, crop: np.ndarray) -> int:
    """A 63-bit generator seed from ``seed`` and the crop's pixels.

    Seeding each image's random draws from its own content (rather than its position) makes a
    score a pure function of (crop, seed): it cannot change with batch size, with how a video is
    chunked into batches, or with which other faces are scored alongside it.
    """
    h = hashlib.blake2b(np.ascontiguousarray(crop).tobytes(), digest_size=8, key=int(seed).to_bytes(8, "little", signed=True))
    return int.from_bytes(h.digest(), "little") & ((1 << 63) - 1)


def generator_for(seed: int, crop: np.ndarray) -> torch.Generator:
    """A CPU generator for one image (draws stay on the CPU so every device sees the same noise)."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(content_seed(seed, crop))
    return gen
