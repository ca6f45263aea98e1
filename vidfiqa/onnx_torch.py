"""Running our ONNX models with PyTorch: the GPU path where onnxruntime's GPU build is not at hand.

The detector (RetinaFace-MobileNet0.25) and the student (eDifFIQA T) ship as ONNX and run with
onnxruntime.  On a GPU that means onnxruntime-gpu, which is large, tied to one CUDA version and
often missing where PyTorch with CUDA is installed.  :class:`OnnxTorch` executes an ONNX graph node
by node with PyTorch operators instead, on any device PyTorch has: it supports the operators our
two models use (and no more: an unknown operator is a clear error), with the weights moved to the
device once.  Its outputs match onnxruntime's to float rounding (tests/backbones/test_onnx_torch.py).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np


def _attrs(node) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class OnnxTorch:
    """``OnnxTorch(model)(x) -> list of outputs``: an ONNX model (file, bytes or ``ModelProto``)
    run with PyTorch on ``device``; ``half`` runs the float work in float16 (GPU)."""

    def __init__(self, model: "str | os.PathLike | bytes | Any", device: str = "cpu", half: bool = False):
        import onnx
        import torch
        from onnx import numpy_helper

        if isinstance(model, (bytes, bytearray)):
            proto = onnx.load_from_string(bytes(model))
        elif isinstance(model, (str, os.PathLike)):
            proto = onnx.load(os.fspath(model))
        else:
            proto = model
        self.device = torch.device(device)
        self.dtype = torch.float16 if half else torch.float32
        graph = proto.graph
        self.nodes = list(graph.node)
        unknown = sorted({n.op_type for n in self.nodes} - set(_OPS))
        if unknown:
            raise ValueError(f"OnnxTorch: operators not supported: {', '.join(unknown)}")
        self.attrs = [_attrs(n) for n in self.nodes]
        self.weights: dict[str, Any] = {}
        for init in graph.initializer:
            array = numpy_helper.to_array(init)
            self.weights[init.name] = self._tensor(array)
        initialisers = {i.name for i in graph.initializer}
        self.inputs = [i.name for i in graph.input if i.name not in initialisers]
        self.outputs = [o.name for o in graph.output]
        self.output_shapes = {o.name: [d.dim_value or None for d in o.type.tensor_type.shape.dim] for o in graph.output}
        # Constant nodes once, ahead of time.
        for node, attrs in zip(self.nodes, self.attrs):
            if node.op_type == "Constant":
                self.weights[node.output[0]] = self._tensor(numpy_helper.to_array(attrs["value"]))
        self.nodes_to_run = [(n, a) for n, a in zip(self.nodes, self.attrs) if n.op_type != "Constant"]

    def _tensor(self, array: np.ndarray):
        import torch

        tensor = torch.from_numpy(np.array(array, copy=True))  # (ascontiguousarray makes a scalar 1-D)
        if tensor.is_floating_point():
            return tensor.to(self.device, self.dtype)
        return tensor  # integers (shapes, axes, indices) stay on the CPU: they steer the graph

    def __call__(self, *inputs: Any) -> list:
        import torch

        values = dict(self.weights)
        for name, value in zip(self.inputs, inputs):
            tensor = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(value))
            values[name] = tensor.to(self.device, self.dtype) if tensor.is_floating_point() else tensor
        with torch.inference_mode():
            for node, attrs in self.nodes_to_run:
                args = [values[name] if name else None for name in node.input]
                result = _OPS[node.op_type](args, attrs)
                if not isinstance(result, tuple):
                    result = (result,)
                for name, value in zip(node.output, result):
                    values[name] = value
        return [values[name] for name in self.outputs]


class _Input:
    def __init__(self, name: str, shape: list | None = None):
        self.name, self.shape = name, shape or []


class TorchSession:
    """The part of ``onnxruntime.InferenceSession`` vidfiqa uses (``run``, ``get_inputs``,
    ``get_providers``), over :class:`OnnxTorch`: what ``make_session`` gives on a GPU when
    onnxruntime has no CUDA provider but PyTorch has CUDA."""

    def __init__(self, model: "str | os.PathLike | bytes", device: str = "cuda"):
        self.graph = OnnxTorch(model, device=device)

    def get_inputs(self) -> list[_Input]:
        return [_Input(name) for name in self.graph.inputs]

    def get_outputs(self) -> list[_Input]:
        return [_Input(name, self.graph.output_shapes.get(name)) for name in self.graph.outputs]

    def get_providers(self) -> list[str]:
        return [f"PyTorch ({self.graph.device})"]

    def run(self, output_names: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        outputs = self.graph(*(feeds[name] for name in self.graph.inputs))
        return [out.float().cpu().numpy() if out.is_floating_point() else out.cpu().numpy() for out in outputs]


# ------------------------------------------------------------------------ the operators
def _ints(tensor) -> list[int]:
    return [int(v) for v in tensor.reshape(-1).tolist()]


def _conv(args, a):
    import torch.nn.functional as F

    x, w, b = args[0], args[1], args[2] if len(args) > 2 else None
    pads = a.get("pads", [0, 0, 0, 0])
    if pads[0] != pads[2] or pads[1] != pads[3]:
        x = F.pad(x, (pads[1], pads[3], pads[0], pads[2]))
        pads = [0, 0, 0, 0]
    return F.conv2d(x, w, b, stride=a.get("strides", [1, 1]), padding=(pads[0], pads[1]), dilation=a.get("dilations", [1, 1]),
                    groups=a.get("group", 1))


def _gemm(args, a):
    x, w = args[0], args[1]
    if a.get("transA", 0):
        x = x.t()
    w = w.t() if a.get("transB", 0) else w
    out = a.get("alpha", 1.0) * (x @ w)
    if len(args) > 2 and args[2] is not None:
        out = out + a.get("beta", 1.0) * args[2]
    return out


def _clip(args, a):
    import torch

    low = args[1] if len(args) > 1 and args[1] is not None else a.get("min")
    high = args[2] if len(args) > 2 and args[2] is not None else a.get("max")
    low = float(low) if low is not None else None
    high = float(high) if high is not None else None
    return torch.clamp(args[0], low, high)


def _reshape(args, a):
    shape = _ints(args[1])
    shape = [args[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return args[0].reshape(shape)


def _slice(args, a):
    x = args[0]
    starts, ends = _ints(args[1]), _ints(args[2])
    axes = _ints(args[3]) if len(args) > 3 and args[3] is not None else list(range(len(starts)))
    steps = _ints(args[4]) if len(args) > 4 and args[4] is not None else [1] * len(starts)
    index = [slice(None)] * x.dim()
    for start, end, axis, step in zip(starts, ends, axes, steps):
        size = x.shape[axis]
        index[axis] = slice(max(-size, min(start, size)), max(-size - 1, min(end, size)), step)
    return x[tuple(index)]


def _gather(args, a):
    import torch

    x, idx = args[0], args[1]
    axis = a.get("axis", 0)
    if idx.dim() == 0:
        return x.select(axis, int(idx))
    return torch.index_select(x, axis, idx.reshape(-1).to(x.device)).reshape(*x.shape[:axis], *idx.shape, *x.shape[axis + 1:])


def _resize(args, a):
    import torch.nn.functional as F

    x = args[0]
    mode = a.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    sizes = args[3] if len(args) > 3 and args[3] is not None and args[3].numel() else None
    if sizes is not None:
        size = _ints(sizes)[2:]
        return F.interpolate(x, size=size, mode="nearest" if mode == "nearest" else "bilinear")
    scales = [float(v) for v in args[2].reshape(-1).tolist()][2:]
    return F.interpolate(x, scale_factor=scales, mode="nearest" if mode == "nearest" else "bilinear")


def _shape(args, a):
    import torch

    return torch.tensor(list(args[0].shape), dtype=torch.int64)


def _unsqueeze(args, a):
    axes = a["axes"] if "axes" in a else _ints(args[1])
    x = args[0]
    for axis in sorted(axes):
        x = x.unsqueeze(axis)
    return x


def _squeeze(args, a):
    axes = a.get("axes") if "axes" in a else (_ints(args[1]) if len(args) > 1 and args[1] is not None else None)
    x = args[0]
    if axes is None:
        return x.squeeze()
    for axis in sorted(axes, reverse=True):
        x = x.squeeze(axis)
    return x


def _concat(args, a):
    import torch

    parts = [p for p in args if p is not None]
    devices = {p.device for p in parts}
    if len(devices) > 1:  # a shape (CPU) beside a computed tensor
        parts = [p.to(parts[0].device) for p in parts]
    return torch.cat(parts, dim=a.get("axis", 0))


def _cast(args, a):
    import torch

    to = {1: torch.float32, 6: torch.int32, 7: torch.int64, 10: torch.float16, 11: torch.float64, 9: torch.bool}[a["to"]]
    return args[0].to(to)


def _flatten(args, a):
    axis = a.get("axis", 1)
    x = args[0]
    return x.reshape(int(np.prod(x.shape[:axis])) if axis else 1, -1)


def _erf(args, a):
    import torch

    return torch.erf(args[0])


def _softmax(args, a):
    return args[0].softmax(dim=a.get("axis", -1))


def _leaky(args, a):
    import torch.nn.functional as F

    return F.leaky_relu(args[0], a.get("alpha", 0.01))


def _relu(args, a):
    return args[0].relu()


def _transpose(args, a):
    return args[0].permute(*a["perm"])


def _binary(fn: Callable) -> Callable:
    def op(args, a):
        x, y = args[0], args[1]
        if x.device != y.device:
            y = y.to(x.device) if y.dim() == 0 or y.numel() == 1 else y
            x = x.to(y.device)
        return fn(x, y)

    return op


_OPS: dict[str, Callable] = {
    "Conv": _conv, "Gemm": _gemm, "Clip": _clip, "Relu": _relu, "LeakyRelu": _leaky, "Erf": _erf, "Softmax": _softmax,
    "Add": _binary(lambda x, y: x + y), "Sub": _binary(lambda x, y: x - y), "Mul": _binary(lambda x, y: x * y),
    "Div": _binary(lambda x, y: x / y), "Reshape": _reshape, "Flatten": _flatten, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "Concat": _concat, "Slice": _slice, "Gather": _gather, "Shape": _shape, "Cast": _cast, "Resize": _resize,
    "Transpose": _transpose, "Identity": lambda args, a: args[0], "Constant": lambda args, a: None,
}
