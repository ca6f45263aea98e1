"""The embedding stage: aligned crops -> face recognition embeddings.

An :class:`Embedder` takes a :class:`~vidfiqa.faces.Faces` with ``crops`` and returns it with
``embeddings`` added.  Embeddings are the backbone's **raw** output (not L2-normalised): quality
methods may use the norm, and normalising is one call away (:func:`vidfiqa.boxes.l2_normalize`);
:func:`cosine_similarity` normalises for you.  The :class:`Embedder` base class lives in
:mod:`vidfiqa.backbones.embedder` (so the dlib model can subclass it without importing this
module); it is re-exported here.

Backends: :class:`TorchEmbedder` (PyTorch, differentiable model available as ``.model``) and
:class:`OnnxEmbedder` (onnxruntime, faster on CPU).  :func:`make_embedder` builds either, and for
the ONNX backend exports the PyTorch model once into a cache keyed by the weights' sha256.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .backbones.embedder import DEFAULT_BATCH_SIZE, Embedder
from .backbones.onnx_export import export_onnx
from .backbones.preprocess import Preprocessing
from .backbones.registry import find_weights, get_spec, load_backbone, sha256_file
from .boxes import l2_normalize
from .errors import ConfigError, WeightsError

CACHE_ENV = "VIDFIQA_CACHE"
ONNX_OPSET = 17

__all__ = ["DEFAULT_BATCH_SIZE", "Embedder", "OnnxEmbedder", "TorchEmbedder", "cosine_similarity", "l2_normalize", "make_embedder", "onnx_cache_dir"]


class TorchEmbedder(Embedder):
    """A registry backbone run in PyTorch (``torch.inference_mode``)."""

    def __init__(self, name: str, weights: str | Path | None = None, device: str = "cpu", batch_size: int = DEFAULT_BATCH_SIZE):
        spec = get_spec(name)
        if spec.preprocessing is None:
            raise ConfigError(f"{name} is not a PyTorch backbone; use make_embedder({name!r})")
        model = load_backbone(name, weights, device)
        self._setup(model, spec.preprocessing, name, batch_size, spec.embedding_dim)

    @classmethod
    def from_module(cls, model, preprocessing: Preprocessing, name: str = "custom", batch_size: int = DEFAULT_BATCH_SIZE) -> "TorchEmbedder":
        """Wrap an already built module (e.g. one being trained or tested); it is put in eval mode."""
        self = cls.__new__(cls)
        self._setup(model.eval(), preprocessing, name, batch_size, getattr(model, "embedding_dim", None))
        return self

    def _setup(self, model, preprocessing: Preprocessing, name: str, batch_size: int, dim: int | None) -> None:
        import torch

        self.model = model
        self.preprocessing = preprocessing
        self.name = name
        self.batch_size = batch_size
        param = next(model.parameters(), None)
        self.device = param.device if param is not None else torch.device("cpu")
        if dim is None:  # unknown module: measure it once
            dim = self._embed_batch(np.zeros((1, preprocessing.input_size, preprocessing.input_size, 3), np.uint8)).shape[1]
        self.embedding_dim = int(dim)

    def _embed_batch(self, crops: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(self.preprocessing(crops)).to(self.device, non_blocking=True)
        with torch.inference_mode():
            out = self.model(x)
        return out.float().cpu().numpy()


class OnnxEmbedder(Embedder):
    """An ONNX model (N, 3, S, S) -> (N, D) run with onnxruntime.

    ``providers=None`` uses CUDA when this onnxruntime build offers it, else the CPU.
    """

    def __init__(
        self,
        onnx_path: str | Path,
        preprocessing: Preprocessing,
        providers: list[str] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        name: str | None = None,
        threads: int | None = None,
    ):
        from .onnx_session import make_session

        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            raise WeightsError(f"ONNX model {onnx_path} does not exist")
        # providers=None: CUDA when this onnxruntime build has it, else the CPU.
        self.session = make_session(onnx_path, device="auto", threads=threads, providers=providers)
        self.path = onnx_path
        self.preprocessing = preprocessing
        self.name = name or onnx_path.stem
        self.batch_size = batch_size
        self.input_name = self.session.get_inputs()[0].name
        dim = self.session.get_outputs()[0].shape[-1]
        if not isinstance(dim, int):  # symbolic output size: measure it once
            size = preprocessing.input_size
            dim = self._embed_batch(np.zeros((1, size, size, 3), np.uint8)).shape[1]
        self.embedding_dim = int(dim)

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def _embed_batch(self, crops: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input_name: self.preprocessing(crops)})[0]
        return out.reshape(len(crops), -1)


# ----------------------------------------------------------------------------- factory
def onnx_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Where exported ONNX models go: ``cache_dir``, else ``$VIDFIQA_CACHE/onnx``, else
    ``$XDG_CACHE_HOME/vidfiqa/onnx`` (``~/.cache/vidfiqa/onnx``)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "vidfiqa" / "onnx"


def make_embedder(
    name: str,
    weights: str | Path | None = None,
    backend: str = "torch",
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Embedder:
    """An embedder for registry model ``name``.

    ``backend='onnx'`` exports the PyTorch model once into :func:`onnx_cache_dir` (file name keyed
    by the weights' sha256, so new weights never reuse a stale export) and runs it with
    onnxruntime.  ``device``: cpu, cuda, cuda:N or auto.  ``name='dlib'`` ignores the backend.
    """
    spec = get_spec(name)
    if spec.name == "dlib":
        from .backbones.dlib_model import DlibEmbedder

        return DlibEmbedder(weights=weights, batch_size=batch_size)
    if backend == "torch":
        return TorchEmbedder(name, weights, device, batch_size)
    if backend != "onnx":
        raise ConfigError(f"unknown backend {backend!r}: use torch or onnx")
    if spec.preprocessing is None:
        raise ConfigError(f"{name} is not a PyTorch backbone and cannot be exported to ONNX")
    from .onnx_session import providers_for

    providers = providers_for(device)
    digest = sha256_file(find_weights(spec, weights))
    target = onnx_cache_dir(cache_dir) / f"{spec.name}-{digest[:16]}-opset{ONNX_OPSET}.onnx"
    if not target.is_file():
        model = load_backbone(name, weights, "cpu")
        try:
            export_onnx(model, target, spec.preprocessing.input_size, ONNX_OPSET)
        except OSError as exc:
            raise ConfigError(f"cannot write the ONNX cache {target.parent}: {exc}; set {CACHE_ENV} to a writable directory") from None
    return OnnxEmbedder(target, spec.preprocessing, providers, batch_size, name=spec.name)


# ----------------------------------------------------------------------------- comparing
def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of (N, D) and (N, D) (or broadcastable, e.g. (D,)) -> (N,)."""
    return np.sum(l2_normalize(a) * l2_normalize(b), axis=-1)
