"""insightface-style IResNet backbones (iresnet18/34/50/100), 112x112 RGB -> 512-d embedding.

Module names match the official insightface ``arcface_torch`` checkpoints and those published
with FIQA methods built on them (CR-FIQA, eDifFIQA, ...), so such a plain state_dict loads with
``strict=True``: ``conv1``, ``bn1``, ``prelu``, ``layer1..layer4`` (``IBasicBlock``: ``bn1``,
``conv1``, ``bn2``, ``prelu``, ``conv2``, ``bn3``, ``downsample.0/1``), ``bn2``, ``dropout``,
``fc``, ``features``.

Input: RGB scaled as ``(x / 255 - 0.5) / 0.5``, shape (N, 3, 112, 112).  Output: the raw 512-d
embedding (after the ``features`` BatchNorm1d), not L2-normalised.

Weights are left at PyTorch's default initialisation: these models are only ever used with a
loaded checkpoint, and the default keeps activations of an untrained net finite (useful in tests).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

LAYERS = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
}


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)


class IBasicBlock(nn.Module):
    """Pre-activation-style residual block: BN -> conv3x3 -> BN -> PReLU -> conv3x3(stride) -> BN."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch, eps=1e-5)
        self.conv1 = _conv3x3(in_ch, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch, eps=1e-5)
        self.prelu = nn.PReLU(out_ch)
        self.conv2 = _conv3x3(out_ch, out_ch, stride)
        self.bn3 = nn.BatchNorm2d(out_ch, eps=1e-5)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(x)
        out = self.prelu(self.bn2(self.conv1(out)))
        out = self.bn3(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class IResNet(nn.Module):
    """The insightface IResNet trunk with its 512-d embedding head."""

    fc_scale = 7 * 7  # spatial size after four stride-2 stages on a 112x112 input
    # The four stages, set in __init__ with setattr (their names are the checkpoints' keys);
    # declared for type checkers.
    layer1: nn.Sequential
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, layers: Sequence[int], num_features: int = 512, dropout: float = 0.0):
        super().__init__()
        self.embedding_dim = num_features
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        in_ch = 64
        for i, (width, blocks) in enumerate(zip((64, 128, 256, 512), layers), start=1):
            setattr(self, f"layer{i}", self._make_layer(in_ch, width, blocks, stride=2))
            in_ch = width
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        # Dropout has no parameters and is inactive in eval mode; kept so the layout matches.
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(512 * self.fc_scale, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)

    @staticmethod
    def _make_layer(in_ch: int, out_ch: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or in_ch != out_ch:
            downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False),
                nn.BatchNorm2d(out_ch, eps=1e-5),
            )
        layers = [IBasicBlock(in_ch, out_ch, stride, downsample)]
        layers += [IBasicBlock(out_ch, out_ch) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.bn2(x), 1)
        x = self.fc(self.dropout(x))
        return self.features(x)


def iresnet18(**kwargs) -> IResNet:
    return IResNet(LAYERS["iresnet18"], **kwargs)


def iresnet34(**kwargs) -> IResNet:
    return IResNet(LAYERS["iresnet34"], **kwargs)


def iresnet50(**kwargs) -> IResNet:
    return IResNet(LAYERS["iresnet50"], **kwargs)


def iresnet100(**kwargs) -> IResNet:
    return IResNet(LAYERS["iresnet100"], **kwargs)
