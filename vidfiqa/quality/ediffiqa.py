"""eDifFIQA: a face recognition backbone with a small MLP quality head (Babnik et al., TBIOM 2024).

The model returns both the backbone's embedding and the quality, so one forward pass gives
what the video pipeline needs: quality to rank frames, embedding to keep the chosen frames
different from each other.

Layout (the authors' state_dict keys load unchanged): ``base_model.*`` (the FR backbone),
``mlp.l1`` = Linear(d -> 1024), GELU, ``mlp.l2`` = Linear(1024 -> 1).  Variants: T on
MobileFaceNet, S on iresnet18, M on iresnet50, L on iresnet100.  The authors' T variant is a
512-d PReLU MobileFaceNet; ours is the 128-d foamliu MobileFaceNet (the only MobileFaceNet
weights we may use), so official T checkpoints do not load into our T - S, M and L do.

:class:`EDifFIQA` is the scorer.  Without options it runs the student we trained and ship in
``vidfiqa/models/`` (ONNX, see its model card); ``checkpoint=`` runs an official or our own
PyTorch checkpoint of any variant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..backbones.preprocess import ARCFACE, IMAGENET, Preprocessing
from ..errors import ConfigError, WeightsError
from ..faces import Faces
from .base import QualityScorer
from .options import reject_unknown

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
BUNDLED_ONNX = MODELS_DIR / "ediffiqa_t_mfn.onnx"
BUNDLED_META = MODELS_DIR / "ediffiqa_t_mfn.json"
# The same student with int8 convolutions (training/quantise_student.py): the same ranking within
# measurement (benchmarks/student_int8.py), twice as fast on a CPU; the video pipeline's default.
BUNDLED_INT8 = MODELS_DIR / "ediffiqa_t_mfn_int8.onnx"

VARIANTS = {
    # variant -> (backbone registry name, preprocessing of its input)
    "T": ("mobilefacenet", IMAGENET),
    "S": ("iresnet18", ARCFACE),
    "M": ("iresnet50", ARCFACE),
    "L": ("iresnet100", ARCFACE),
}
CPU_MICRO_BATCH = 8


def build_model(variant: str = "T"):
    """An untrained eDifFIQA network of the given variant (PyTorch)."""
    import torch
    from torch import nn

    from ..backbones.registry import get_spec

    if variant not in VARIANTS:
        raise ConfigError(f"unknown eDifFIQA variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    spec = get_spec(VARIANTS[variant][0])
    if spec.builder is None:  # pragma: no cover - every variant's backbone is a torch model
        raise ConfigError(f"eDifFIQA {variant}: backbone {spec.name} has no PyTorch builder")
    builder: Callable[[], Any] = spec.builder  # narrowed once, for the class below

    class MLPHead(nn.Module):
        def __init__(self, dim: int, hidden: int = 1024):
            super().__init__()
            self.l1 = nn.Linear(dim, hidden)
            self.act = nn.GELU()
            self.l2 = nn.Linear(hidden, 1)

        def forward(self, x):
            return self.l2(self.act(self.l1(x)))

    class EDifFIQAModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.base_model = builder()
            self.mlp = MLPHead(spec.embedding_dim)
            self.embedding_dim = spec.embedding_dim

        def forward(self, x: torch.Tensor):
            embedding = self.base_model(x)
            return embedding, self.mlp(embedding).squeeze(1)

        # Split forward for MobileFaceNet (training on a CPU freezes the stem and caches its
        # output): stem(x, k) runs conv1, dw_conv and features[:k]; top(h, k) runs the rest.
        def stem(self, x: torch.Tensor, k: int) -> torch.Tensor:
            b = self.base_model
            return b.features[:k](b.dw_conv(b.conv1(x)))

        def stem_parameters(self, k: int):
            b = self.base_model
            return [*b.conv1.parameters(), *b.dw_conv.parameters(), *b.features[:k].parameters()]

        def top(self, h: torch.Tensor, k: int):
            b = self.base_model
            h = b.bn(b.conv3(b.gdconv(b.conv2(b.features[k:](h)))))
            embedding = torch.flatten(h, 1)
            return embedding, self.mlp(embedding).squeeze(1)

    return EDifFIQAModel()


def load_checkpoint(model, path: str | Path) -> None:
    """Load an eDifFIQA state_dict (official keys ``base_model.*``, ``mlp.l1.*``, ``mlp.l2.*``)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"eDifFIQA checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file
        raise WeightsError(f"{path}: not a PyTorch checkpoint ({type(err).__name__})") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # our training checkpoints wrap the weights
    state = {k.removeprefix("module."): v for k, v in state.items()}
    result = model.load_state_dict(state, strict=False)
    bad = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if bad or result.unexpected_keys:
        raise WeightsError(f"{path}: not an eDifFIQA checkpoint of this variant (missing {bad[:3]}, unexpected {result.unexpected_keys[:3]})")


def export_onnx(model, path: str | Path, opset: int = 17) -> Path:
    """ONNX with two outputs, ``embedding`` (N, D) and ``quality`` (N,), dynamic batch."""
    from ..backbones.onnx_export import export_onnx as export_backbone

    return export_backbone(model, path, opset=opset, output_names=("embedding", "quality"))


class EDifFIQA(QualityScorer):
    """eDifFIQA quality (and embedding) for aligned crops.

    Options: ``onnx`` (path; default the bundled student, ``int8=True``: its int8 version), or
    ``checkpoint`` (a PyTorch state_dict) with ``variant``; ``device`` cpu|cuda|auto; ``batch_size``.
    """

    name = "ediffiqa"
    embeds = True

    def __init__(self, onnx: str | Path | None = None, checkpoint: str | Path | None = None, variant: str = "T", device: str = "cpu", batch_size: int = 64, threads: int | None = None,
                 int8: bool = False, **unknown):
        reject_unknown(self.name, unknown, EDifFIQA)
        self.batch_size = int(batch_size)
        self._torch = None
        if checkpoint is not None:
            from ..backbones.registry import torch_device

            model = build_model(variant)  # refuses an unknown variant
            self.preprocessing = VARIANTS[variant][1]
            load_checkpoint(model, checkpoint)
            self.model_name = Path(checkpoint).stem
            self.device = torch_device(device)
            self._torch = model.eval().to(self.device)
            self.embedding_dim = model.embedding_dim
            return
        from ..onnx_session import make_session

        path = Path(onnx) if onnx is not None else BUNDLED_INT8 if int8 else BUNDLED_ONNX
        if not path.is_file():
            raise WeightsError(f"eDifFIQA model not found: {path}" + (" (the bundled student is missing from this install: reinstall vidfiqa)" if onnx is None else ""))
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        pre = meta.get("preprocessing", {"mean": IMAGENET.mean, "std": IMAGENET.std})
        self.preprocessing = Preprocessing(tuple(pre["mean"]), tuple(pre["std"]))
        self.session = make_session(path, device=device, threads=threads)
        self.model_name = path.stem
        # On a CPU, onnxruntime is fastest here with ~8 faces per call: larger batches push the
        # early 56x56 activations out of the caches (measured: 1.4 ms/face at 8, 2.2 at 64).
        on_cpu = self.session.get_providers()[0] == "CPUExecutionProvider"
        self.micro_batch = CPU_MICRO_BATCH if on_cpu else self.batch_size
        self.embedding_dim = int(self.session.get_outputs()[0].shape[1] or meta.get("embedding_dim", 0))
        self.meta = meta

    def score_and_embed(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(quality (N,), embedding (N, D)) for uint8 RGB crops (N, 112, 112, 3)."""
        crops = np.asarray(crops, dtype=np.uint8)
        if len(crops) == 0:
            return np.zeros(0, np.float32), np.zeros((0, self.embedding_dim), np.float32)
        qs, es = [], []
        step = self.batch_size if self._torch is not None else max(1, min(self.batch_size, self.micro_batch))
        for i in range(0, len(crops), step):
            x = self.preprocessing(crops[i : i + step])
            if self._torch is not None:
                import torch

                with torch.inference_mode():
                    e, q = self._torch(torch.from_numpy(x).to(self.device))
                e, q = e.float().cpu().numpy(), q.float().cpu().numpy()
            else:
                e, q = self.session.run(None, {"input": x})
            qs.append(q.reshape(-1))
            es.append(e)
        return np.concatenate(qs).astype(np.float32), np.concatenate(es).astype(np.float32)

    def score(self, crops: np.ndarray, faces: Faces | None = None) -> np.ndarray:
        return self.score_and_embed(crops)[0]

    def __call__(self, faces: Faces, frames=None) -> Faces:
        """Sets both ``quality`` and ``embeddings`` (the student's embedding) on ``faces``."""
        if len(faces) == 0:
            return faces.replace(quality=np.zeros(0, np.float32), embeddings=np.zeros((0, self.embedding_dim), np.float32))
        if faces.crops is None:
            raise ValueError("ediffiqa: faces have no crops; run alignment before scoring")
        quality, embedding = self.score_and_embed(faces.crops)
        return faces.replace(quality=quality, embeddings=embedding)
