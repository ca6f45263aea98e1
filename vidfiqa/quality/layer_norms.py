"""Per-sample L2 norms of intermediate activations, collected with forward hooks (for FROQ).

A *layer* is one call of one module: most modules run once per forward pass and are named as in
``model.named_modules()`` (``features.3.conv.1``); a module that runs more than once (the shared
ReLU of MobileFaceNet's ``dw_conv`` runs twice) gets ``name#1``, ``name#2``... for its later calls,
so every activation has a stable name that inference can hook again.

Norms are computed inside the hook, at the moment the module returns.  That matters: with
in-place activations (``ReLU6(inplace=True)`` after a BatchNorm) the tensor a hook receives is
overwritten by the next module, so a reference kept for later would hold the wrong values.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import torch
from torch import nn


def split_layer(layer: str) -> tuple[str, int]:
    """``'a.b#2'`` -> ``('a.b', 2)``; ``'a.b'`` -> ``('a.b', 0)``."""
    name, _, call = layer.partition("#")
    return name, int(call) if call else 0


def layer_name(module_name: str, call: int) -> str:
    return module_name if call == 0 else f"{module_name}#{call}"


class NormRecorder:
    """Context manager: hooks ``model`` and records each layer's per-sample activation norms.

    ``layers=None`` hooks every module except the root (the root's output is the embedding,
    which the final modules already expose); otherwise only the modules of the named layers.
    Outputs that are not a single tensor with the batch as first dimension (tuples, lists) are
    skipped, as are the containers that return them.
    """

    def __init__(self, model: nn.Module, layers: Iterable[str] | None = None):
        self.model = model
        wanted = None if layers is None else {split_layer(layer)[0] for layer in layers}
        modules = dict(model.named_modules())
        if wanted is not None:
            missing = sorted(wanted - set(modules))
            if missing:
                raise KeyError(f"model has no module(s) {', '.join(missing)}")
        self.names = [n for n in modules if n and (wanted is None or n in wanted)]
        self._modules = modules
        self._handles: list = []
        self._batch: dict[str, list[torch.Tensor]] = defaultdict(list)
        self._records: dict[str, list[torch.Tensor]] = defaultdict(list)

    def __enter__(self) -> "NormRecorder":
        for name in self.names:
            self._handles.append(self._modules[name].register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str):
        def hook(module, inputs, output):
            if isinstance(output, torch.Tensor) and output.dim() >= 1 and output.is_floating_point():
                out = output.detach()
                # Reduce over all but the batch dimension in place of flatten(1), which would copy
                # every channels-last activation; torch's reduction is accurate in float32.
                norms = torch.linalg.vector_norm(out, dim=tuple(range(1, out.dim()))) if out.dim() > 1 else out.abs()
                self._batch[name].append(norms.double().cpu())

        return hook

    def run(self, forward, *args) -> torch.Tensor:
        """Call ``forward(*args)`` once, file the norms of that call, return its output."""
        self._batch.clear()
        out = forward(*args)
        n = len(out)
        for name, calls in self._batch.items():
            for call, norms in enumerate(calls):
                if norms.shape == (n,):
                    self._records[layer_name(name, call)].append(norms)
        self._batch.clear()
        return out

    def norms(self) -> dict[str, torch.Tensor]:
        """Layer name -> float64 (N,) norms over every :meth:`run` so far, in hook order."""
        return {layer: torch.cat(parts) for layer, parts in self._records.items()}
