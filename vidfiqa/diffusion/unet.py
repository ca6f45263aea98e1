"""The denoising UNet of DifFIQA, laid out so the authors' checkpoint loads with ``strict=True``.

DifFIQA (Babnik et al., IJCB 2023) trained the UNet of lucidrains' ``denoising-diffusion-pytorch``
as it was in late 2022 / early 2023.  This is an independent re-implementation whose module
tree - and therefore every ``state_dict`` key and shape - matches that version:

* ``init_conv`` (7x7), ``time_mlp`` = [sinusoidal embedding, Linear, GELU, Linear]
  (keys ``time_mlp.1.*`` and ``time_mlp.3.*``);
* ``downs[i]`` = [ResnetBlock, ResnetBlock, Residual(PreNorm(LinearAttention)), down], where
  ``down`` is a strided 4x4 convolution (``downs.i.3.weight``), or a 3x3 convolution that only
  changes the width at the last stage (no downsampling there);
* ``mid_block1``, ``mid_attn`` = Residual(PreNorm(Attention)), ``mid_block2``;
* ``ups[i]`` = [ResnetBlock, ResnetBlock, Residual(PreNorm(LinearAttention)), up], where ``up`` is
  nearest x2 upsampling + 3x3 convolution (``ups.i.3.1.weight``), or a 3x3 convolution at the
  last stage;
* ``final_res_block`` and ``final_conv`` (1x1).

With ``dim_mults=(1, 2, 4, 8)`` only the first three stages downsample, so a 112x112 face goes
112 -> 56 -> 28 -> 14 and the middle blocks run at 14x14; any size divisible by
``2 ** (len(dim_mults) - 1)`` works.

Two numerical details of that library version matter for loading its weights (they change the
function, not the keys), so they are reproduced here: convolutions inside the ResNet blocks are
weight-standardised, and the full attention in the middle L2-normalises queries and keys along
the *spatial* axis (a quirk of that version) and multiplies the similarities by a fixed 10.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class UNetConfig:
    """Everything that fixes the UNet's architecture (and so its state_dict layout).

    ``heads`` x ``dim_head`` is the width inside every attention layer; the library fixed them at
    4 x 32, and changing them is only meant for tiny test models.
    """

    dim: int = 128
    dim_mults: tuple[int, ...] = (1, 2, 4, 8)
    channels: int = 3
    init_dim: int | None = None
    resnet_block_groups: int = 8
    heads: int = 4
    dim_head: int = 32
    image_size: int = 112
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dim_mults", tuple(int(m) for m in self.dim_mults))
        widths = [self.init_dim or self.dim] + [self.dim * m for m in self.dim_mults]
        bad = [w for w in widths if w % self.resnet_block_groups]
        if bad:
            raise ValueError(f"UNet widths {bad} are not divisible by resnet_block_groups={self.resnet_block_groups}")
        if self.image_size % (2 ** (len(self.dim_mults) - 1)):
            raise ValueError(f"image_size {self.image_size} is not divisible by 2^{len(self.dim_mults) - 1}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dim_mults"] = list(self.dim_mults)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


#: The architecture of the authors' ``diff_pretrain.pt`` (their train_config.yaml).
AUTHORS_CONFIG = UNetConfig(dim=128, dim_mults=(1, 2, 4, 8), name="authors")
#: The model we train on CPU ourselves: same layout at a quarter of the width (~1/16 the weights).
SMALL_CONFIG = UNetConfig(dim=32, dim_mults=(1, 2, 4, 8), name="small")
#: A toy model for tests and smoke runs.  Four stages like the real ones so that the full
#: attention in the middle runs at 14x14, not at a costly 56x56.
TINY_CONFIG = UNetConfig(dim=8, dim_mults=(1, 2, 2, 2), heads=2, dim_head=8, name="tiny")

CONFIGS: dict[str, UNetConfig] = {"authors": AUTHORS_CONFIG, "small": SMALL_CONFIG, "tiny": TINY_CONFIG}


# ------------------------------------------------------------------------------ building blocks
class SinusoidalPosEmb(nn.Module):
    """Transformer-style embedding of the (integer) timestep: [sin(t f_k), cos(t f_k)]."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * (-math.log(10000) / (half - 1)))
        angles = t.float()[:, None] * freqs[None, :]
        return torch.cat((angles.sin(), angles.cos()), dim=-1)


class WeightStandardizedConv2d(nn.Conv2d):
    """Conv2d whose kernel is standardised per output channel at every call (pairs well with
    GroupNorm); the stored weight is the raw one, as in the checkpoint."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eps = 1e-5 if x.dtype == torch.float32 else 1e-3
        w = self.weight
        mean = w.mean(dim=(1, 2, 3), keepdim=True)
        var = w.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
        w = (w - mean) * (var + eps).rsqrt()
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ChannelLayerNorm(nn.Module):
    """LayerNorm over channels of an NCHW map with a gain ``g`` only (key ``g``, no bias)."""

    def __init__(self, dim: int):
        super().__init__()
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eps = 1e-5 if x.dtype == torch.float32 else 1e-3
        var, mean = torch.var_mean(x, dim=1, unbiased=False, keepdim=True)
        return (x - mean) * (var + eps).rsqrt() * self.g


class PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.fn = fn
        self.norm = ChannelLayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class Residual(nn.Module):
    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) + x


class Block(nn.Module):
    """WS-conv 3x3 -> GroupNorm -> (FiLM from the time embedding) -> SiLU."""

    def __init__(self, dim: int, dim_out: int, groups: int = 8):
        super().__init__()
        self.proj = WeightStandardizedConv2d(dim, dim_out, 3, padding=1)
        self.norm = nn.GroupNorm(groups, dim_out)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, scale_shift: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        x = self.norm(self.proj(x))
        if scale_shift is not None:
            scale, shift = scale_shift
            x = x * (scale + 1) + shift
        return self.act(x)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, dim_out: int, *, time_emb_dim: int | None = None, groups: int = 8):
        super().__init__()
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(time_emb_dim, dim_out * 2)) if time_emb_dim else None
        self.block1 = Block(dim, dim_out, groups)
        self.block2 = Block(dim_out, dim_out, groups)
        self.res_conv = nn.Conv2d(dim, dim_out, 1) if dim != dim_out else nn.Identity()

    def forward(self, x: torch.Tensor, time_emb: torch.Tensor | None = None) -> torch.Tensor:
        scale_shift = None
        if self.mlp is not None and time_emb is not None:
            scale_shift = self.mlp(time_emb)[:, :, None, None].chunk(2, dim=1)
        h = self.block1(x, scale_shift)
        h = self.block2(h)
        return h + self.res_conv(x)


def _split_heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, heads*d, H, W) -> (B, heads, d, H*W)."""
    b, c, h, w = t.shape
    return t.reshape(b, heads, c // heads, h * w)


class LinearAttention(nn.Module):
    """Linear-cost attention (softmax over features for q, over positions for k); used at every
    resolution, where full attention over 112^2 positions would be far too expensive."""

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32):
        super().__init__()
        self.scale = dim_head**-0.5
        self.heads = heads
        hidden = dim_head * heads
        self.to_qkv = nn.Conv2d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Sequential(nn.Conv2d(hidden, dim, 1), ChannelLayerNorm(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q, k, v = (_split_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=1))
        q = q.softmax(dim=-2) * self.scale
        k = k.softmax(dim=-1)
        v = v / (h * w)
        context = torch.einsum("bhdn,bhen->bhde", k, v)
        out = torch.einsum("bhde,bhdn->bhen", context, q)
        return self.to_out(out.reshape(b, -1, h, w))


class Attention(nn.Module):
    """Full self-attention in the middle block, "cosine-sim" flavour with a fixed scale of 10.

    q and k are L2-normalised along the last axis of (B, heads, d, positions), i.e. over
    positions, exactly like the library version the checkpoint was trained with.
    """

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32, scale: float = 10.0):
        super().__init__()
        self.scale = scale
        self.heads = heads
        hidden = dim_head * heads
        self.to_qkv = nn.Conv2d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q, k, v = (_split_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=1))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        sim = torch.einsum("bhdi,bhdj->bhij", q, k) * self.scale
        out = torch.einsum("bhij,bhdj->bhid", sim.softmax(dim=-1), v)  # (B, heads, n, d)
        out = out.permute(0, 1, 3, 2).reshape(b, -1, h, w)
        return self.to_out(out)


def _downsample(dim: int, dim_out: int) -> nn.Module:
    return nn.Conv2d(dim, dim_out, 4, 2, 1)


def _upsample(dim: int, dim_out: int) -> nn.Module:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(dim, dim_out, 3, padding=1))


# ------------------------------------------------------------------------------ the UNet
class UNet(nn.Module):
    """``UNet(config)(x, t)``: x (B, 3, H, W) noisy images in about [-1, 1], t (B,) integer
    timesteps -> (B, 3, H, W), here the predicted clean image x0."""

    def __init__(self, config: UNetConfig = AUTHORS_CONFIG):
        super().__init__()
        self.config = config
        dim, groups = config.dim, config.resnet_block_groups
        init_dim = config.init_dim or dim
        self.channels = config.channels
        self.out_dim = config.channels

        self.init_conv = nn.Conv2d(config.channels, init_dim, 7, padding=3)
        dims = [init_dim, *(dim * m for m in config.dim_mults)]
        in_out = list(zip(dims[:-1], dims[1:]))
        time_dim = dim * 4
        self.time_mlp = nn.Sequential(SinusoidalPosEmb(dim), nn.Linear(dim, time_dim), nn.GELU(), nn.Linear(time_dim, time_dim))

        def resblock(a: int, b: int) -> ResnetBlock:
            return ResnetBlock(a, b, time_emb_dim=time_dim, groups=groups)

        def linear_attn(d: int) -> nn.Module:
            return Residual(PreNorm(d, LinearAttention(d, config.heads, config.dim_head)))

        self.downs = nn.ModuleList()
        for i, (d_in, d_out) in enumerate(in_out):
            last = i == len(in_out) - 1
            self.downs.append(nn.ModuleList([
                resblock(d_in, d_in),
                resblock(d_in, d_in),
                linear_attn(d_in),
                nn.Conv2d(d_in, d_out, 3, padding=1) if last else _downsample(d_in, d_out),
            ]))

        mid = dims[-1]
        self.mid_block1 = resblock(mid, mid)
        self.mid_attn = Residual(PreNorm(mid, Attention(mid, config.heads, config.dim_head)))
        self.mid_block2 = resblock(mid, mid)

        self.ups = nn.ModuleList()
        for i, (d_in, d_out) in enumerate(reversed(in_out)):
            last = i == len(in_out) - 1
            self.ups.append(nn.ModuleList([
                resblock(d_out + d_in, d_out),
                resblock(d_out + d_in, d_out),
                linear_attn(d_out),
                nn.Conv2d(d_out, d_in, 3, padding=1) if last else _upsample(d_out, d_in),
            ]))

        self.final_res_block = resblock(init_dim * 2, dim)
        self.final_conv = nn.Conv2d(dim, self.out_dim, 1)

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        x = self.init_conv(x)
        r = x.clone()
        t = self.time_mlp(time)
        skips = []
        # Each stage is a ModuleList of (block1, block2, attn, down/up); cast() only tells type checkers.
        for block1, block2, attn, down in cast(Iterable[nn.ModuleList], self.downs):
            x = block1(x, t)
            skips.append(x)
            x = attn(block2(x, t))
            skips.append(x)
            x = down(x)
        x = self.mid_block2(self.mid_attn(self.mid_block1(x, t)), t)
        for block1, block2, attn, up in cast(Iterable[nn.ModuleList], self.ups):
            x = block1(torch.cat((x, skips.pop()), dim=1), t)
            x = attn(block2(torch.cat((x, skips.pop()), dim=1), t))
            x = up(x)
        x = self.final_res_block(torch.cat((x, r), dim=1), t)
        return self.final_conv(x)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
