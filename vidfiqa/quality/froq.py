"""FROQ: training-free quality from the activation norms of a few layers of the FR model itself.

Babnik, Jain, Peer, Struc (2025), as described in ``shared/methods/froq.md``:

1. Calibration (once per FR model): pseudo quality labels ``q`` on a set of aligned faces
   (:mod:`.froq_labels`); every layer's per-sample activation L2 norm (:mod:`.layer_norms`);
   each layer's Spearman rho with ``q``, **sign kept** - a layer whose norm *falls* with quality
   is not a candidate, because inference averages norms and never flips a sign; the 10 layers
   with the highest rho are the candidates.  Greedy forward selection: start from the best one,
   add, one at a time, the candidate that maximises rho(mean of the selected layers' norms, q),
   record rho after every step, keep the prefix with the highest rho (1-10 layers).
2. Inference: one forward pass hooked on the selected layers; quality = mean of their norms.

Optional improvement the note suggests measuring (``standardize=True``): z-score each layer's
norm with its calibration mean/std before averaging, so that a layer with large norms does not
drown the others.  Single-layer rhos (and so the candidates) are the same either way; only the
greedy combination differs.  The calibration always runs the selection both ways and records
both traces (``comparison``), so the file says what standardising bought on that data.

The calibration is a small JSON file (:class:`Calibration`); it is tied to the weights it was
made with (their sha256), because activation norms are meaningless across different weights.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from scipy.stats import spearmanr

from ..atomic import atomic_write_text
from ..errors import ConfigError, InputError
from .base import QualityScorer
from .froq_labels import ALPHA, NOISE_DRAWS, OCCLUSION_GRID, PseudoLabels, pseudo_labels
from .frmodel import FRModel
from .layer_norms import NormRecorder
from .options import check, is_int, is_real, reject_unknown

FORMAT = "vidfiqa-froq-calibration"
VERSION = 1
TOP_K = 10
MIN_SAMPLES = 10


# ----------------------------------------------------------------------------- layer selection
def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho (scipy); NaN when either side is constant (no ranking to correlate)."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


@dataclass
class Selection:
    """Greedy forward selection over the candidates: the order layers were added in, rho after
    each addition, and the kept prefix (the one with the highest rho; the shortest on ties)."""

    order: list[str]
    rho_trace: list[float]

    @property
    def keep(self) -> int:
        return int(np.argmax(self.rho_trace)) + 1

    @property
    def layers(self) -> list[str]:
        return self.order[: self.keep]

    @property
    def rho(self) -> float:
        return self.rho_trace[self.keep - 1]

    def as_dict(self) -> dict:
        return {"layers": self.layers, "rho": self.rho, "greedy_order": self.order, "rho_trace": self.rho_trace}


def layer_rhos(norms: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Spearman rho of each column of ``norms`` (N, L) with ``q`` (N,); NaN for constant layers."""
    return np.array([spearman(norms[:, j], q) for j in range(norms.shape[1])])


def candidates(names: Sequence[str], rhos: np.ndarray, top_k: int = TOP_K) -> list[int]:
    """Indices of the ``top_k`` layers by rho, sign kept (ties: earlier layer first)."""
    valid = [j for j in range(len(names)) if np.isfinite(rhos[j])]
    return sorted(valid, key=lambda j: -rhos[j])[:top_k]


def greedy_select(names: Sequence[str], norms: np.ndarray, q: np.ndarray, pool: Sequence[int], standardize: bool) -> Selection:
    """Forward selection over the column indices ``pool`` (best single layer first)."""
    x = norms[:, list(pool)]
    if standardize:
        x = (x - x.mean(axis=0)) / x.std(axis=0)
    chosen = [0]
    trace = [spearman(x[:, 0], q)]
    remaining = list(range(1, len(pool)))
    while remaining:
        total = x[:, chosen].sum(axis=1)
        scores = [spearman((total + x[:, r]) / (len(chosen) + 1), q) for r in remaining]
        # NaN (a constant mean) never wins; ties go to the better single layer (earlier in pool).
        best = max(range(len(remaining)), key=lambda i: (scores[i] if np.isfinite(scores[i]) else -np.inf, -i))
        chosen.append(remaining.pop(best))
        trace.append(scores[best])
    return Selection(order=[names[pool[c]] for c in chosen], rho_trace=[float(r) for r in trace])


# ----------------------------------------------------------------------------- calibration file
@dataclass
class Calibration:
    """Everything FROQ needs at inference, plus how it was obtained (saved as JSON)."""

    model: str
    layers: list[str]
    mean: list[float]  # per selected layer, over the calibration set (population std below)
    std: list[float]
    standardize: bool
    rho: float  # rho of the final score with q on the calibration set
    rho_trace: list[float]  # rho after each greedy step, for the chosen variant
    greedy_order: list[str]
    candidates: list[dict]  # [{"layer": name, "rho": single-layer rho}], best first
    comparison: dict  # {"raw": Selection.as_dict(), "standardized": Selection.as_dict()}
    alpha: float
    noise_draws: int
    occlusion_grid: int
    n_samples: int
    seed: int = 0
    weights_sha256: str | None = None
    pseudo_labels: dict = field(default_factory=dict)  # summary statistics of q and its parts

    # ------------------------------------------------------------------ scoring
    def combine(self, norms: np.ndarray) -> np.ndarray:
        """(N, len(layers)) norms of the selected layers -> (N,) quality."""
        norms = np.asarray(norms, np.float64)
        if self.standardize:
            norms = (norms - np.asarray(self.mean)) / np.asarray(self.std)
        return norms.mean(axis=1)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict, source: str = "calibration") -> "Calibration":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError(f"{source} is not a FROQ calibration file (no \"format\": \"{FORMAT}\"); make one with `vidfiqa calibrate froq`")
        if data.get("version") != VERSION:
            raise ConfigError(f"{source}: FROQ calibration version {data.get('version')!r} is not supported (expected {VERSION}); recalibrate")
        fields = {k: v for k, v in data.items() if k not in ("format", "version")}
        try:
            cal = cls(**fields)
        except TypeError as exc:
            raise ConfigError(f"{source}: malformed FROQ calibration ({exc})") from None
        if not cal.layers or not (len(cal.layers) == len(cal.mean) == len(cal.std)):
            raise ConfigError(f"{source}: malformed FROQ calibration (layers, mean and std must be non-empty and of equal length)")
        return cal

    def save(self, path: str | os.PathLike) -> Path:
        """Write the JSON atomically (a crash never leaves a half-written calibration)."""
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Calibration":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: no such FROQ calibration file; make one with `vidfiqa calibrate froq`", path=path) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read FROQ calibration: {exc}") from None
        return cls.from_dict(data, source=str(path))

    # ------------------------------------------------------------------ reporting
    def report(self) -> list[str]:
        """Human-readable lines: both rho traces and what was kept."""
        lines = [f"FROQ calibration of {self.model} on {self.n_samples} faces (alpha={self.alpha:g}, {self.noise_draws} noise draws, {self.occlusion_grid}x{self.occlusion_grid} occlusion grid)"]
        q = self.pseudo_labels.get("q")
        if q:
            lines.append(f"pseudo-labels q: mean {q['mean']:.4f}, std {q['std']:.4f}, range {q['min']:.4f}..{q['max']:.4f}")
        lines.append("candidates (single-layer rho): " + ", ".join(f"{c['layer']} {c['rho']:+.3f}" for c in self.candidates))
        for key, label in (("raw", "raw norms"), ("standardized", "standardised norms")):
            sel = self.comparison.get(key)
            if sel:
                chosen = " <- used" if (key == "standardized") == self.standardize else ""
                trace = " ".join(f"{r:+.4f}" for r in sel["rho_trace"])
                lines.append(f"{label:19s} rho by step: {trace}; best {sel['rho']:+.4f} with {len(sel['layers'])} layer(s){chosen}")
        lines.append(f"selected layers: {', '.join(self.layers)}")
        return lines


def _summary(values: np.ndarray) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "min": float(np.min(values)), "max": float(np.max(values))}


# ----------------------------------------------------------------------------- running the model
def all_layer_norms(fr: FRModel, crops: np.ndarray, batch_size: int = 32) -> tuple[list[str], np.ndarray]:
    """Every layer's per-sample activation norm: (layer names, float64 (N, L))."""
    with NormRecorder(fr.model) as rec, torch.inference_mode():
        for i in range(0, len(crops), batch_size):
            rec.run(fr.embed, fr.to_unit(crops[i : i + batch_size]))
    norms = rec.norms()
    names = [n for n, v in norms.items() if len(v) == len(crops)]
    return names, np.stack([norms[n].numpy() for n in names], axis=1)


def selected_norms(fr: FRModel, crops: np.ndarray, layers: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """Norms of only ``layers`` (hooks on their modules only): float64 (N, len(layers))."""
    try:
        recorder = NormRecorder(fr.model, layers)
    except KeyError as exc:
        raise ConfigError(f"FROQ calibration names layers that {fr.name} does not have ({exc.args[0]}); was it made for another model?") from None
    with recorder as rec, torch.inference_mode():
        for i in range(0, len(crops), batch_size):
            rec.run(fr.embed, fr.to_unit(crops[i : i + batch_size]))
    norms = rec.norms()
    missing = [layer for layer in layers if layer not in norms]
    if missing:
        raise ConfigError(f"FROQ calibration layer(s) {', '.join(missing)} produce no per-sample tensor in {fr.name}; recalibrate")
    return np.stack([norms[layer].numpy() for layer in layers], axis=1)


def calibrate_model(
    fr: FRModel,
    crops: np.ndarray,
    standardize: bool = False,
    alpha: float = ALPHA,
    noise_draws: int = NOISE_DRAWS,
    occlusion_grid: int = OCCLUSION_GRID,
    top_k: int = TOP_K,
    seed: int = 0,
    batch_size: int = 32,
    labels: PseudoLabels | None = None,
    progress: Callable[[int], None] | None = None,
) -> Calibration:
    """Calibrate FROQ for an already loaded :class:`FRModel` (see :func:`calibrate_froq`)."""
    crops = np.asarray(crops, dtype=np.uint8)
    if crops.ndim == 3:
        crops = crops[None]
    check("froq", "alpha", alpha, is_real(alpha) and 0 < alpha < 1, "a number in (0, 1)")
    check("froq", "noise_draws", noise_draws, is_int(noise_draws) and noise_draws >= 1, "an integer >= 1")
    check("froq", "occlusion_grid", occlusion_grid, is_int(occlusion_grid) and 1 <= occlusion_grid <= fr.input_size, f"an integer in 1..{fr.input_size}")
    check("froq", "top_k", top_k, is_int(top_k) and top_k >= 1, "an integer >= 1")
    check("froq", "seed", seed, is_int(seed), "an integer")
    check("froq", "batch_size", batch_size, is_int(batch_size) and batch_size >= 1, "an integer >= 1")
    alpha, noise_draws, occlusion_grid, top_k, seed = float(alpha), int(noise_draws), int(occlusion_grid), int(top_k), int(seed)
    if len(crops) < MIN_SAMPLES:
        raise InputError(f"FROQ calibration needs at least {MIN_SAMPLES} faces; got {len(crops)}")
    if labels is None:
        labels = pseudo_labels(fr, crops, alpha, noise_draws, occlusion_grid, seed, batch_size, progress=progress)
    elif len(labels.q) != len(crops):
        raise ValueError(f"{len(labels.q)} pseudo-labels for {len(crops)} crops")
    q = labels.q
    if np.ptp(q) == 0:
        raise InputError("FROQ calibration: every face got the same pseudo-label; calibrate on faces of varied quality")

    names, norms = all_layer_norms(fr, crops, batch_size)
    rhos = layer_rhos(norms, q)
    pool = candidates(names, rhos, top_k)
    if not pool:
        raise InputError("FROQ calibration: no layer's activation norm varies over these faces; calibrate on more, varied faces")
    raw = greedy_select(names, norms, q, pool, standardize=False)
    std = greedy_select(names, norms, q, pool, standardize=True)
    chosen = std if standardize else raw
    cols = [names.index(layer) for layer in chosen.layers]
    return Calibration(
        model=fr.name,
        layers=chosen.layers,
        mean=[float(v) for v in norms[:, cols].mean(axis=0)],
        std=[float(v) for v in norms[:, cols].std(axis=0)],
        standardize=bool(standardize),
        rho=chosen.rho,
        rho_trace=chosen.rho_trace,
        greedy_order=chosen.order,
        candidates=[{"layer": names[j], "rho": float(rhos[j])} for j in pool],
        comparison={"raw": raw.as_dict(), "standardized": std.as_dict()},
        alpha=float(alpha),
        noise_draws=noise_draws,
        occlusion_grid=occlusion_grid,
        n_samples=len(crops),
        seed=seed,
        weights_sha256=fr.weights_sha256,
        pseudo_labels={k: _summary(v) for k, v in (("q", q), ("flip", labels.flip), ("occlusion", labels.occlusion), ("noise", labels.noise))},
    )


def calibrate_froq(
    crops: np.ndarray,
    model: str = "mobilefacenet",
    weights=None,
    device: str = "cpu",
    standardize: bool = False,
    alpha: float = ALPHA,
    noise_draws: int = NOISE_DRAWS,
    occlusion_grid: int = OCCLUSION_GRID,
    top_k: int = TOP_K,
    seed: int = 0,
    batch_size: int = 32,
    labels: PseudoLabels | None = None,
    progress: Callable[[int], None] | None = None,
) -> Calibration:
    """Find FROQ's layers for ``model`` on uint8 (N, H, W, 3) aligned RGB crops.

    ``standardize`` picks which selection is *used*; both are always computed and recorded in
    ``Calibration.comparison`` (see :meth:`Calibration.report`).  ``labels`` skips computing the
    pseudo-labels (e.g. when they were computed once for several calibrations).  ``progress(n)``
    is called as pseudo-labels of ``n`` more faces are done.
    """
    fr = FRModel(model, weights, device)
    return calibrate_model(fr, crops, standardize, alpha, noise_draws, occlusion_grid, top_k, seed, batch_size, labels, progress)


# ----------------------------------------------------------------------------- the scorer
class FROQ(QualityScorer):
    """FROQ quality: mean activation norm of the calibrated layers (higher is better; unbounded).

    Options: ``calibration`` (a JSON path or a :class:`Calibration`; needed before scoring
    unless :meth:`calibrate` is called), ``model`` (defaults to the calibration's), ``weights``,
    ``device``, ``batch_size``.
    """

    name = "froq"

    def __init__(self, calibration=None, model: str | None = None, weights=None, device: str = "cpu", batch_size: int = 32, **unknown):
        reject_unknown(self.name, unknown, FROQ)
        check(self.name, "batch_size", batch_size, is_int(batch_size) and batch_size >= 1, "an integer >= 1")
        if calibration is not None and not isinstance(calibration, Calibration):
            calibration = Calibration.load(calibration)
        if calibration is not None and model is not None and model != calibration.model:
            raise ConfigError(f"froq: the calibration was made for {calibration.model}, not {model}; recalibrate or drop the model option")
        self.fr = FRModel(model or (calibration.model if calibration else "mobilefacenet"), weights, device)
        self.batch_size = batch_size
        self.calibration: Calibration | None = None
        if calibration is not None:
            self._set(calibration)

    def _set(self, calibration: Calibration) -> None:
        sha = calibration.weights_sha256
        if sha and sha != self.fr.weights_sha256:
            raise ConfigError(
                f"froq: the calibration was made with {calibration.model} weights sha256 {sha[:16]}..., "
                f"but {self.fr.weights_path} has sha256 {self.fr.weights_sha256[:16]}...; recalibrate for these weights"
            )
        self.calibration = calibration

    def calibrate(self, crops: np.ndarray, **options) -> Calibration:
        """Calibrate on ``crops`` with this scorer's model and use the result (see :func:`calibrate_froq`)."""
        options.setdefault("batch_size", self.batch_size)
        calibration = calibrate_model(self.fr, crops, **options)
        self._set(calibration)
        return calibration

    def score(self, crops: np.ndarray, faces=None) -> np.ndarray:
        """uint8 (N, H, W, 3) RGB aligned crops -> float32 (N,) FROQ quality."""
        if self.calibration is None:
            raise ConfigError("froq needs a calibration: pass calibration=PATH (from `vidfiqa calibrate froq`) or call calibrate()")
        crops = np.asarray(crops, dtype=np.uint8)
        if crops.ndim == 3:
            crops = crops[None]
        if len(crops) == 0:
            return np.zeros(0, np.float32)
        norms = selected_norms(self.fr, crops, self.calibration.layers, self.batch_size)
        return self.calibration.combine(norms).astype(np.float32)

    def __repr__(self) -> str:
        layers = len(self.calibration.layers) if self.calibration else 0
        return f"FROQ(model={self.fr.name!r}, layers={layers})"
