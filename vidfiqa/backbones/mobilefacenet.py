"""MobileFaceNet in the layout of foamliu/MobileFaceNet (128-d embedding).

The module names below are chosen so that the state_dict published by that repository
(``weights/mobilefacenet.pt``: 307 keys, 999,936 parameters) loads with ``strict=True``.

Details that the key names alone do not settle were fixed by comparing against an ONNX export
of the same weights (``mobilefacenet_foamliu.onnx``):

* every ``ConvBNReLU`` uses ReLU6 (the export shows ``Clip(0, 6)``), but the stem's
  depthwise-separable block ``dw_conv`` uses plain ReLU after both of its convolutions;
* the inverted residual blocks add their input only when stride is 1 and the channel count is
  unchanged (blocks 0, 5 and 12 have no skip);
* the global depthwise convolution (7x7, no padding) is followed by BN without activation,
  then a 1x1 convolution *with* bias, BN and a flatten - no activation at the end.

Input: RGB in [0, 1] normalised with ImageNet mean/std, shape (N, 3, 112, 112).
"""

from __future__ import annotations

import torch
from torch import nn

# Inverted residual settings: expansion t, output channels c, repeats n, first stride s.
_SETTINGS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class ConvBNReLU(nn.Sequential):
    """Conv (no bias) -> BN -> ReLU6; a Sequential so keys read ``<name>.0.weight``, ``<name>.1.*``."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, groups: int = 1):
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU6(inplace=True),
        )


class DepthwiseSeparableConv(nn.Module):
    """3x3 depthwise -> BN -> ReLU -> 1x1 pointwise -> BN -> ReLU (plain ReLU, as in the export)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.depthwise = nn.Conv2d(in_ch, in_ch, 3, 1, 1, groups=in_ch, bias=False)
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.pointwise = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.depthwise(x)))
        return self.relu(self.bn2(self.pointwise(x)))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise (with the stride), linear 1x1 projection."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = in_ch * expand_ratio
        self.use_residual = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU(in_ch, hidden, kernel_size=1))
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class GlobalDepthwiseConv(nn.Module):
    """7x7 depthwise convolution over the whole 7x7 map (a learned pooling) followed by BN."""

    def __init__(self, channels: int, kernel_size: int = 7):
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, kernel_size, groups=channels, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.depthwise(x))


class MobileFaceNet(nn.Module):
    """112x112 RGB (ImageNet-normalised) -> 128-d embedding (not L2-normalised)."""

    embedding_dim = 128

    def __init__(self, embedding_dim: int = 128):
        super().__init__()
        self.conv1 = ConvBNReLU(3, 64, kernel_size=3, stride=2)
        self.dw_conv = DepthwiseSeparableConv(64, 64)
        blocks: list[nn.Module] = []
        in_ch = 64
        for t, c, n, s in _SETTINGS:
            for i in range(n):
                blocks.append(InvertedResidual(in_ch, c, s if i == 0 else 1, t))
                in_ch = c
        self.features = nn.Sequential(*blocks)
        self.conv2 = ConvBNReLU(in_ch, 512, kernel_size=1)
        self.gdconv = GlobalDepthwiseConv(512, kernel_size=7)
        self.conv3 = nn.Conv2d(512, embedding_dim, 1)
        self.bn = nn.BatchNorm2d(embedding_dim)
        self.embedding_dim = embedding_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw_conv(self.conv1(x))
        x = self.conv2(self.features(x))
        x = self.bn(self.conv3(self.gdconv(x)))
        return torch.flatten(x, 1)


def mobilefacenet() -> MobileFaceNet:
    """Build an untrained MobileFaceNet (load weights with :func:`vidfiqa.backbones.load_backbone`)."""
    return MobileFaceNet()
