"""Export a backbone to ONNX for fast inference with onnxruntime."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

from ..atomic import plain_mode

INPUT_NAME = "input"
OUTPUT_NAME = "embedding"


def export_onnx(model, path: str | Path, input_size: int = 112, opset: int = 17, output_names: tuple[str, ...] = (OUTPUT_NAME,)) -> Path:
    """Write ``model`` (N, 3, S, S) -> (N, D) to ``path`` as ONNX with a dynamic batch axis.

    ``output_names`` names the model's outputs (e.g. ``("embedding", "quality")``); every output
    gets a dynamic batch axis.

    The file is written to a temporary name beside ``path``, checked with ``onnx.checker`` and
    then renamed into place, so a crash or a concurrent export never leaves a truncated model
    where a cache lookup would find it.  Uses the TorchScript-based exporter: the newer dynamo
    exporter needs ``onnxscript``, which is not a dependency.
    """
    import onnx
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dummy = torch.zeros(1, 3, input_size, input_size, device=device)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".onnx.tmp")
    plain_mode(fd)  # the exporter rewrites the file in place: it keeps this mode
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # The legacy exporter announces its own deprecation on every call; nothing to act on.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            torch.onnx.export(
                model,
                (dummy,),
                tmp,
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=list(output_names),
                dynamic_axes={INPUT_NAME: {0: "batch"}, **{name: {0: "batch"} for name in output_names}},
                do_constant_folding=True,
            )
        onnx.checker.check_model(tmp)  # by path: also works for models over 2 GB
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        model.train(was_training)
    return path
