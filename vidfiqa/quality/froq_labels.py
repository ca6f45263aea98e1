"""FROQ's unsupervised pseudo quality labels: how stable is a face's embedding under perturbation.

As in ``shared/methods/froq.md`` (cosine similarity of the clean embedding with the embedding of
a perturbed copy, higher = more stable = better quality):

* flip: ``s_flip = cos(f(x), f(hflip x))``;
* occlusion: an ``grid x grid`` grid of squares (8 x 8 of 14 x 14 px on a 112 crop); each square
  in turn is blacked out (pixel value 0, before the model's normalisation);
  ``s_occ`` = mean over the ``grid**2`` variants;
* noise: ``x' = (1 - alpha) x + alpha n``, ``n ~ N(0, 1)``, in the model's *normalised* input
  space, ``draws`` draws; ``s_noise`` = mean;
* ``q = (s_flip + s_occ + s_noise) / 3``.

One image costs ``2 + grid**2 + draws`` forward passes (76 with the defaults); the variants of
several images are stacked and run ``batch_size`` at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .frmodel import FRModel, cosine, generator_for

ALPHA = 1e-3
NOISE_DRAWS = 10
OCCLUSION_GRID = 8


@dataclass
class PseudoLabels:
    """Per-image similarities (float64 (N,) each) and their mean ``q``."""

    flip: np.ndarray
    occlusion: np.ndarray
    noise: np.ndarray

    @property
    def q(self) -> np.ndarray:
        return (self.flip + self.occlusion + self.noise) / 3.0


def occlusion_boxes(size: int, grid: int) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) of the grid's squares, row by row; the last row/column absorbs any
    remainder when ``size`` is not a multiple of ``grid`` (112 / 8 = 14 exactly)."""
    edges = [round(i * size / grid) for i in range(grid + 1)]
    return [(edges[r], edges[r + 1], edges[c], edges[c + 1]) for r in range(grid) for c in range(grid)]


def _run(fr: FRModel, x: torch.Tensor, batch_size: int, normalized: bool = False) -> torch.Tensor:
    embed = fr.embed_normalized if normalized else fr.embed
    return torch.cat([embed(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def pseudo_labels(
    fr: FRModel,
    crops: np.ndarray,
    alpha: float = ALPHA,
    draws: int = NOISE_DRAWS,
    grid: int = OCCLUSION_GRID,
    seed: int = 0,
    batch_size: int = 32,
    images_per_chunk: int = 4,
    progress: Callable[[int], None] | None = None,
) -> PseudoLabels:
    """Pseudo-labels of uint8 (N, H, W, 3) aligned RGB crops; ``progress(n)`` after each chunk.

    ``draws`` and ``grid`` must be >= 1 (the caller validates user input).

    Noise draws come from a per-image generator seeded by ``seed`` and the crop's pixels, so a
    label does not depend on which other images share its chunk.
    """
    crops = np.asarray(crops, dtype=np.uint8)
    boxes = occlusion_boxes(fr.input_size, grid)
    flip, occ, noise = [], [], []
    with torch.inference_mode():
        for start in range(0, len(crops), images_per_chunk):
            part = crops[start : start + images_per_chunk]
            n = len(part)
            x = fr.to_unit(part)
            clean = _run(fr, x, batch_size)
            flip.append(cosine(clean, _run(fr, torch.flip(x, dims=[3]), batch_size)))

            # Variant v of image i sits at row i * len(boxes) + v.
            occluded = x.repeat_interleave(len(boxes), dim=0)
            for v, (y0, y1, x0, x1) in enumerate(boxes):
                occluded[v :: len(boxes), :, y0:y1, x0:x1] = 0.0
            sims = cosine(clean.repeat_interleave(len(boxes), dim=0), _run(fr, occluded, batch_size))
            occ.append(sims.view(n, len(boxes)).mean(dim=1))

            gauss = torch.cat([torch.randn((draws, *x.shape[1:]), generator=generator_for(seed, c)) for c in part])
            xn = fr.normalize(x).repeat_interleave(draws, dim=0)
            noisy = (1.0 - alpha) * xn + alpha * gauss.to(xn.device)
            sims = cosine(clean.repeat_interleave(draws, dim=0), _run(fr, noisy, batch_size, normalized=True))
            noise.append(sims.view(n, draws).mean(dim=1))
            if progress is not None:
                progress(n)
    return PseudoLabels(flip=_to_numpy(flip), occlusion=_to_numpy(occ), noise=_to_numpy(noise))


def _to_numpy(parts: list[torch.Tensor]) -> np.ndarray:
    return torch.cat(parts).double().cpu().numpy() if parts else np.zeros(0)
