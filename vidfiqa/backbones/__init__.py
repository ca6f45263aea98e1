"""Face recognition backbones: architectures, preprocessing, the model registry, ONNX export.

``load_backbone(name)`` gives a PyTorch model with its weights; ``vidfiqa.embed`` turns aligned
crops into embeddings with it.

Every name is imported lazily, on first use (PEP 562): ``vidfiqa.backbones.preprocess`` and the
registry need no PyTorch, and the ONNX scorers that import them must not pay torch's import
(seconds, and a couple of hundred MiB) in `vidfiqa run` and `watch`.  ``DlibEmbedder`` needs the
optional dlib.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real names, for type checkers
    from .dlib_model import DlibEmbedder
    from .iresnet import IBasicBlock, IResNet, iresnet18, iresnet34, iresnet50, iresnet100
    from .mobilefacenet import MobileFaceNet, mobilefacenet
    from .onnx_export import export_onnx
    from .preprocess import ARCFACE, IMAGENET, Preprocessing
    from .registry import REGISTRY, WEIGHTS_ENV, ModelSpec, available_models, find_weights, get_spec, load_backbone, sha256_file

_WHERE = {
    **dict.fromkeys(("IBasicBlock", "IResNet", "iresnet18", "iresnet34", "iresnet50", "iresnet100"), "iresnet"),
    **dict.fromkeys(("MobileFaceNet", "mobilefacenet"), "mobilefacenet"),
    "export_onnx": "onnx_export",
    **dict.fromkeys(("ARCFACE", "IMAGENET", "Preprocessing"), "preprocess"),
    **dict.fromkeys(("REGISTRY", "WEIGHTS_ENV", "ModelSpec", "available_models", "find_weights", "get_spec", "load_backbone",
                     "sha256_file"), "registry"),
    "DlibEmbedder": "dlib_model",
}

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



def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
