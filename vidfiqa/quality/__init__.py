"""Face image quality scorers: the learned student, the published methods and the baselines.

``make_scorer(method, **options)`` builds one by name; modules load lazily because several
scorers pull in PyTorch models.
"""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from .base import QualityScorer

# method name -> "module:factory"; each factory accepts keyword options (model=, weights=,
# device=, seed=, ...) and ignores none silently: unknown options are a ConfigError.
SCORERS: dict[str, str] = {
    "random": "vidfiqa.quality.baselines:RandomScorer",
    "face_size": "vidfiqa.quality.baselines:FaceSizeScorer",
    "sharpness": "vidfiqa.quality.baselines:SharpnessScorer",
    "detector_confidence": "vidfiqa.quality.baselines:DetectorConfidenceScorer",
    "embedding_norm": "vidfiqa.quality.baselines:EmbeddingNormScorer",
    "faceqan": "vidfiqa.quality.faceqan:FaceQAN",
    "froq": "vidfiqa.quality.froq:FROQ",
    "diffiqa": "vidfiqa.quality.diffiqa:DifFIQA",
    "ediffiqa": "vidfiqa.quality.ediffiqa:EDifFIQA",
}


def register(name: str, target: str) -> None:
    SCORERS[name] = target


def make_scorer(method: str, **options) -> QualityScorer:
    if method not in SCORERS:
        raise ConfigError(f"unknown quality method {method!r}: choose one of {', '.join(sorted(SCORERS))}")
    module_name, _, factory = SCORERS[method].partition(":")
    module = importlib.import_module(module_name, __name__)
    return getattr(module, factory)(**options)


__all__ = ["QualityScorer", "SCORERS", "make_scorer", "register"]
