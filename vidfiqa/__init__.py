"""vidfiqa: find, track and quality-score faces in video; keep the best, most diverse frames.

The central record is :class:`vidfiqa.Faces`; stages (detectors, the aligner, embedders) take it
and return it.  Heavy modules load lazily so ``import vidfiqa`` and ``vidfiqa --version`` are fast.
"""

from __future__ import annotations

from ._version import __version__
from .errors import ConfigError, InputError, VidfiqaError, WeightsError
from .faces import Faces


def score(inputs, method: str = "ediffiqa", **kwargs):
    """Quality of the faces in images: see :func:`vidfiqa.api.score_images`."""
    from .api import score as _score

    return _score(inputs, method=method, **kwargs)


def run(source, output, config=None, **overrides):
    """Best, most diverse face frames of every person in a video: see :func:`vidfiqa.pipeline.run_video`."""
    from .pipeline import run_video

    return run_video(source, output, config=config, **overrides)


__all__ = ["ConfigError", "Faces", "InputError", "VidfiqaError", "WeightsError", "__version__", "run", "score"]
