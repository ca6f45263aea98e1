"""Turning aligned uint8 crops into a backbone's input tensor.

Each backbone was trained with its own normalisation; getting it wrong silently degrades the
embeddings rather than failing, so it is part of the model's :class:`~.registry.ModelSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Preprocessing:
    """``(x / 255 - mean) / std`` per channel, then NHWC -> NCHW.

    ``mean`` and ``std`` are given on the [0, 1] scale, in the order of ``channel_order`` (the
    order the network expects; crops are always RGB).
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: int = 112
    channel_order: str = "RGB"

    def __post_init__(self) -> None:
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std need three values each")

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) RGB crops -> float32 (N, 3, S, S) with S = ``input_size``."""
        crops = np.asarray(crops)
        if crops.ndim == 3:
            crops = crops[None]
        if crops.ndim != 4 or crops.shape[-1] != 3:
            raise ValueError(f"crops must have shape (N, H, W, 3); got {crops.shape}")
        size = self.input_size
        if crops.shape[1:3] != (size, size):
            # Rare (a crop size other than the model's); resizing keeps callers simple.
            crops = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_LINEAR) for c in crops]) \
                if len(crops) else np.zeros((0, size, size, 3), np.uint8)
        if self.channel_order == "BGR":
            crops = crops[..., ::-1]
        # One fused multiply-add: x * (1 / (255 std)) - mean / std.
        std = np.asarray(self.std, np.float32)
        scale = 1.0 / (255.0 * std)
        offset = -np.asarray(self.mean, np.float32) / std
        x = crops.astype(np.float32)
        x *= scale
        x += offset
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


#: torchvision / ImageNet statistics (MobileFaceNet from foamliu).
IMAGENET = Preprocessing(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
#: insightface / ArcFace convention: ``(x / 255 - 0.5) / 0.5`` (iresnet backbones).
ARCFACE = Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
