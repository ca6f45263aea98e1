"""Shared test fixtures: where ../shared is, and skips with a reason when it is absent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# pytest imports this file as `tests.conftest` (importlib mode, see pyproject.toml); tests write
# `from conftest import ...`: both names are this one module, so its state exists once.
sys.modules.setdefault("conftest", sys.modules[__name__])

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared"))
MODELS = SHARED / "models"
DATA = SHARED / "data"
MOBILEFACENET_PT = MODELS / "mobilefacenet_foamliu.pt"
MOBILEFACENET_ONNX = MODELS / "mobilefacenet_foamliu.onnx"
YUNET_ONNX = MODELS / "face_detection_yunet_2026may.onnx"


def need(path: Path) -> Path:
    """Skip the calling test, with the reason, when shared test data is missing."""
    if not path.exists():
        pytest.skip(f"needs ../shared test data: {path} is absent (set VIDFIQA_SHARED to its folder)")
    return path


@pytest.fixture(scope="session")
def shared_models() -> Path:
    return need(MODELS)


@pytest.fixture
def weights_env(monkeypatch, shared_models):
    """Point VIDFIQA_WEIGHTS at ../shared/models, the way a user points it at their weights."""
    monkeypatch.setenv("VIDFIQA_WEIGHTS", str(shared_models))
    return shared_models


@pytest.fixture(scope="session")
def astronaut():
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image is a test dependency")
    return skimage_data.astronaut()  # RGB uint8, public domain (NASA)
