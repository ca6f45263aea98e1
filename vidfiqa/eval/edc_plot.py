"""EDC curves of several quality scores on one chart per FMR, written as a PNG.

Uses matplotlib's object API with the Agg canvas directly (no pyplot): no GUI backend is ever
touched, no global figure state leaks between calls, and it works on headless machines.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ..atomic import atomic_write_bytes
from .edc import EDCCurve


def _step_xy(curve: EDCCurve, max_discard: float) -> tuple[np.ndarray, np.ndarray]:
    """Points for a post-step line that ends at ``max_discard`` (the last value holds to it)."""
    keep = curve.discard <= max_discard
    x, y = curve.discard[keep], curve.fnmr[keep]
    return np.r_[x, max_discard], np.r_[y, y[-1]]


@dataclass
class Panel:
    """One chart: its title, the curves by name, and optional legend text by name."""

    title: str
    curves: Mapping[str, EDCCurve]
    labels: Mapping[str, str] = field(default_factory=dict)
    legend_title: str | None = None


def edc_figure_png(panels: Sequence[Panel], max_discard: float = 0.5, dpi: int = 120) -> bytes:
    """PNG bytes, one chart per panel side by side; a curve named ``floor`` is drawn dashed
    grey as the perfect-order reference."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not panels:
        raise ValueError("nothing to plot")
    fig = Figure(figsize=(6.5 * len(panels), 4.8), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        title, curves, labels = panel.title, panel.curves, panel.labels
        for name, curve in curves.items():
            x, y = _step_xy(curve, max_discard)
            if name == "floor":
                ax.step(x, y, where="post", color="0.45", linestyle="--", linewidth=1.2, label=labels.get(name, "floor (perfect order)"))
            else:
                ax.step(x, y, where="post", linewidth=1.5, label=labels.get(name, name))
        ax.set_xlim(0, max_discard)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("discard fraction of genuine pairs (lowest pair quality first)")
        ax.set_ylabel("FNMR at the fixed threshold")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best", title=panel.legend_title, title_fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_edc_plot(path: str | os.PathLike, panels: Sequence[Panel], **kwargs) -> None:
    """Write :func:`edc_figure_png` to ``path`` atomically (no half-written PNG on failure)."""
    atomic_write_bytes(path, edc_figure_png(panels, **kwargs))
