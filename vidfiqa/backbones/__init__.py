"""Face recognition backbones: architectures, preprocessing, the model registry, ONNX export.

``load_backbone(name)`` gives a PyTorch model with its weights; ``vidfiqa.embed`` turns aligned
crops into embeddings with it.  ``DlibEmbedder`` (optional dlib model) is imported lazily: it
needs dlib, which is optional.
"""

from .iresnet import IBasicBlock, IResNet, iresnet18, iresnet34, iresnet50, iresnet100
from .mobilefacenet import MobileFaceNet, mobilefacenet
from .onnx_export import export_onnx
from .preprocess import ARCFACE, IMAGENET, Preprocessing
from .registry import (
    REGISTRY,
    WEIGHTS_ENV,
    ModelSpec,
    available_models,
    find_weights,
    get_spec,
    load_backbone,
    sha256_file,
)

__all__ = [
    "ARCFACE",
    "IMAGENET",
    "REGISTRY",
    "WEIGHTS_ENV",
    "DlibEmbedder",
    "IBasicBlock",
    "IResNet",
    "MobileFaceNet",
    "ModelSpec",
    "Preprocessing",
    "available_models",
    "export_onnx",
    "find_weights",
    "get_spec",
    "iresnet18",
    "iresnet34",
    "iresnet50",
    "iresnet100",
    "load_backbone",
    "mobilefacenet",
    "sha256_file",
]


def __getattr__(name: str):
    if name == "DlibEmbedder":
        from .dlib_model import DlibEmbedder

        return DlibEmbedder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
