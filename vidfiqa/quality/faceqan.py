"""FaceQAN: quality from how hard it is to move a face's embedding with adversarial noise.

Babnik, Peer, Struc, "FaceQAN: Face Image Quality Assessment Through Adversarial Noise
Exploration", ICPR 2022.  Implemented as described in ``shared/methods/faceqan.md``:

1. ``e = FR(I)``; ``k`` copies of ``I`` get uniform noise in [-eps, eps] (clamped to [0, 1]).
2. ``l`` BIM iterations: ``S = cos(e, FR(copies))``; loss ``1 - S`` (the cosine-embedding loss
   with target 1); every copy steps by ``eps * sign(d loss / d copy)``, which *increases* the
   distance to ``e``; clamp to [0, 1].  The ``S`` of every iteration is recorded (``l * k``
   values).  As in the authors' code, ``S`` is taken from the forward pass that the step's
   gradient comes from, so the copies after the final step are never evaluated - and the last
   iteration therefore needs no backward pass at all (same result, ~15% less work).
3. Symmetry: ``s_f = cos(FR(I), FR(hflip I))``.
4. ``q_adv = (1 + mean S) / 2 * clip(1 - std S, 0, 1)``; ``Q = (q_adv * s_f) ** p``.

The attack works in [0, 1] pixel space with the model's normalisation inside the attacked
function; the authors clamp to [-1, 1] there, which is a bug the note tells us not to copy.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import QualityScorer
from .frmodel import FRModel, cosine, generator_for
from .options import check, is_int, is_real, reject_unknown


class FaceQAN(QualityScorer):
    """FaceQAN on any differentiable registry backbone; scores in [0, 1], higher is better.

    Options: ``model`` (registry name), ``weights`` (file or folder), ``device`` (cpu, cuda,
    auto), ``epsilon`` (noise bound and BIM step, in [0, 1] pixel units), ``iterations`` (l),
    ``copies`` (k), ``power`` (p), ``seed``, ``batch_size`` (images whose k copies share one
    forward pass; results do not depend on it because each image's noise comes from its own
    generator and samples do not interact in an eval-mode network).
    """

    name = "faceqan"

    def __init__(
        self,
        model: str = "mobilefacenet",
        weights=None,
        device: str = "cpu",
        epsilon: float = 0.001,
        iterations: int = 5,
        copies: int = 10,
        power: float = 5,
        seed: int = 0,
        batch_size: int = 1,
        **unknown,
    ):
        reject_unknown(self.name, unknown, FaceQAN)
        check(self.name, "epsilon", epsilon, is_real(epsilon) and 0 < epsilon < 1, "a number in (0, 1)")
        check(self.name, "iterations", iterations, is_int(iterations) and iterations >= 1, "an integer >= 1")
        check(self.name, "copies", copies, is_int(copies) and copies >= 1, "an integer >= 1")
        check(self.name, "power", power, is_real(power) and power > 0, "a positive number")
        check(self.name, "seed", seed, is_int(seed), "an integer")
        check(self.name, "batch_size", batch_size, is_int(batch_size) and batch_size >= 1, "an integer >= 1")
        self.fr = FRModel(model, weights, device, fold_batchnorm=True)
        self.epsilon = float(epsilon)
        self.iterations = int(iterations)
        self.copies = int(copies)
        self.power = float(power)
        self.seed = int(seed)
        self.batch_size = int(batch_size)

    def __repr__(self) -> str:
        return (
            f"FaceQAN(model={self.fr.name!r}, epsilon={self.epsilon}, iterations={self.iterations}, "
            f"copies={self.copies}, power={self.power}, seed={self.seed})"
        )

    def score(self, crops: np.ndarray, faces=None) -> np.ndarray:
        """uint8 (N, H, W, 3) RGB aligned crops -> float32 (N,) FaceQAN quality in [0, 1]."""
        crops = np.asarray(crops, dtype=np.uint8)
        if crops.ndim == 3:
            crops = crops[None]
        out = [self._score_batch(crops[i : i + self.batch_size]) for i in range(0, len(crops), self.batch_size)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)

    def similarities(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The raw ingredients: adversarial similarities (N, l, k) and symmetry s_f (N,)."""
        crops = np.asarray(crops, dtype=np.uint8)
        if crops.ndim == 3:
            crops = crops[None]
        parts = [self._attack(crops[i : i + self.batch_size]) for i in range(0, len(crops), self.batch_size)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _score_batch(self, crops: np.ndarray) -> np.ndarray:
        sims, s_f = self._attack(crops)
        return aggregate(sims, s_f, self.power)

    def _attack(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """BIM on the k noisy copies of each crop; returns S (B, l, k) and s_f (B,) as float64."""
        fr, k, eps = self.fr, self.copies, self.epsilon
        n = len(crops)
        x = fr.to_unit(crops)
        with torch.no_grad():
            emb = fr.embed(torch.cat([x, torch.flip(x, dims=[3])]))
        clean, flipped = emb[:n], emb[n:]
        s_f = cosine(clean, flipped)

        # Each image's k noise draws come from its own generator (see generator_for).
        noise = torch.cat([torch.rand((k, *x.shape[1:]), generator=generator_for(self.seed, c)) for c in crops])
        copies = (x.repeat_interleave(k, dim=0) + noise.to(x.device).mul_(2 * eps).sub_(eps)).clamp_(0.0, 1.0)
        target = clean.repeat_interleave(k, dim=0)

        sims = []
        for step in range(self.iterations):
            last = step == self.iterations - 1
            if last:  # the final step's copies are never evaluated: no gradient needed
                with torch.no_grad():
                    sims.append(cosine(fr.embed(copies), target))
                break
            copies.requires_grad_(True)
            sim = cosine(fr.embed(copies), target)
            # Sum rather than mean over copies: each copy's gradient depends only on its own
            # embedding, and a positive scale does not change its sign.
            (grad,) = torch.autograd.grad((1.0 - sim).sum(), copies)
            sims.append(sim.detach())
            copies = (copies.detach() + eps * grad.sign()).clamp_(0.0, 1.0)
        S = torch.stack(sims).view(len(sims), n, k).permute(1, 0, 2)
        return S.double().cpu().numpy(), s_f.double().cpu().numpy()


def aggregate(sims: np.ndarray, s_f: np.ndarray, power: float = 5) -> np.ndarray:
    """FaceQAN's score from S (N, l, k) and s_f (N,): ``(q_adv * s_f) ** p``.

    ``q_adv = (1 + mean S) / 2 * clip(1 - std S, 0, 1)`` over all l * k similarities (population
    std, as ``np.std`` in the authors' code).  ``s_f`` is clipped to [0, 1] first: for any real
    face it is positive and this changes nothing, but a negative symmetry (a non-face crop) would
    otherwise give a negative score for odd p, or a *high* one for even p.
    """
    flat = np.asarray(sims, np.float64).reshape(len(sims), -1)
    q_adv = (1.0 + flat.mean(axis=1)) / 2.0 * np.clip(1.0 - flat.std(axis=1), 0.0, 1.0)
    return (q_adv * np.clip(np.asarray(s_f, np.float64), 0.0, 1.0)) ** power
