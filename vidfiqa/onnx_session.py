"""One place that creates onnxruntime sessions, so providers and threading are chosen consistently."""

from __future__ import annotations

import os
from typing import Any

import onnxruntime as ort

from .errors import ConfigError, WeightsError


def providers_for(device: str = "cpu") -> list:
    """``cpu`` -> CPU only; ``cuda`` / ``cuda:N`` -> that GPU first (error if onnxruntime has no
    CUDA provider); ``auto`` -> CUDA when present, else the CPU."""
    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device in ("cuda", "gpu") or device.startswith("cuda:"):
        if "CUDAExecutionProvider" not in available:
            raise ConfigError(
                f"--device {device}: onnxruntime has no CUDA provider here; install the gpu extra "
                '(pip uninstall -y onnxruntime && pip install -e ".[gpu]") or use --device cpu'
            )
        device_id = int(device.split(":", 1)[1]) if ":" in device else 0
        return [("CUDAExecutionProvider", {"device_id": device_id}), "CPUExecutionProvider"]
    if device == "auto":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"] if "CUDAExecutionProvider" in available else ["CPUExecutionProvider"]
    raise ConfigError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto")


def default_threads() -> int:
    """CPUs this process may use (respects affinity and container limits, not the host's count)."""
    env = int(os.environ.get("VIDFIQA_THREADS", "0") or 0)
    if env:
        return env
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def torch_cuda_instead(device: str) -> bool:
    """A GPU asked for, onnxruntime without its CUDA provider, PyTorch with CUDA: the models then
    run through PyTorch (onnx_torch.py) rather than fail."""
    if device == "cpu" or "CUDAExecutionProvider" in ort.get_available_providers():
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def make_session(model: bytes | str | os.PathLike, device: str = "cpu", threads: int | None = None, providers: list | None = None) -> Any:
    """An inference session for an ONNX file or bytes; ``providers`` overrides ``device``.  On a
    GPU without onnxruntime's CUDA provider, a PyTorch session of the same model (onnx_torch.py)."""
    if providers is None and torch_cuda_instead(device):
        from .onnx_torch import TorchSession

        return TorchSession(model, device=device if device.startswith("cuda") else "cuda")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1  # one graph at a time; the parallelism is inside the operators
    # Idle pool threads sleep instead of spinning: vidfiqa always has other threads (the decoder,
    # other cameras) that need the cores.  Spinning made two threads slower than one in the video
    # pipeline; without it two are faster (benchmarks/bench_run.py).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # onnxruntime's warnings are not the user's business
    source = model if isinstance(model, bytes) else os.fspath(model)
    try:
        return ort.InferenceSession(source, sess_options=options, providers=providers or providers_for(device))
    except Exception as err:  # onnxruntime raises its own exception types
        where = "model bytes" if isinstance(model, bytes) else os.fsdecode(source)
        raise WeightsError(f"cannot load ONNX model {where}: {' '.join(str(err).split())[:200]}") from None
