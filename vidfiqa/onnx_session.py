"""One place that creates onnxruntime sessions, so providers and threading are chosen consistently."""

from __future__ import annotations

import os

import onnxruntime as ort

from .errors import ConfigError


def providers_for(device: str = "cpu") -> list[str]:
    """``cpu`` -> CPU only; ``cuda`` -> CUDA (error if absent); ``auto`` -> CUDA when present."""
    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device in ("cuda", "gpu"):
        if "CUDAExecutionProvider" not in available:
            raise ConfigError(
                "--device cuda: onnxruntime has no CUDA provider here; install the gpu extra "
                '(pip uninstall -y onnxruntime && pip install -e ".[gpu]") or use --device cpu'
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "auto":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"] if "CUDAExecutionProvider" in available else ["CPUExecutionProvider"]
    raise ConfigError(f"unknown device {device!r}: use cpu, cuda or auto")


def make_session(model: bytes | str | os.PathLike, device: str = "cpu", threads: int | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    threads = threads or int(os.environ.get("VIDFIQA_THREADS", "0")) or None
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # onnxruntime's warnings are not the user's business
    source = model if isinstance(model, bytes) else os.fspath(model)
    return ort.InferenceSession(source, sess_options=options, providers=providers_for(device))
