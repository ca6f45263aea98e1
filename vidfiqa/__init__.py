"""vidfiqa: find, track and quality-score faces in video; keep the best, most diverse frames.

The central record is :class:`vidfiqa.Faces`; stages (detectors, the aligner, embedders) take it
and return it.  Heavy modules load lazily so ``import vidfiqa`` and ``vidfiqa --version`` are fast.
"""

from __future__ import annotations

from ._version import __version__
from .errors import ConfigError, InputError, VidfiqaError, WeightsError
from .faces import Faces

__all__ = ["ConfigError", "Faces", "InputError", "VidfiqaError", "WeightsError", "__version__"]
