"""One place that creates onnxruntime sessions, so providers and threading are chosen consistently."""

from __future__ import annotations

import os

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


def make_session(model: bytes | str | os.PathLike, device: str = "cpu", threads: int | None = None, providers: list | None = None) -> ort.InferenceSession:
    """An inference session for an ONNX file or bytes; ``providers`` overrides ``device``."""
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
