"""CycleGAN ResNet generator (``resnet_6blocks`` / ``resnet_9blocks``) with reflection padding.

Layout as in the reference: a 7x7 stem, two stride-2 3x3 downsamplings, ``n_blocks`` residual blocks at 1/4
resolution, two stride-2 transposed convs back up, a 7x7 head and tanh. Each residual block computes
``x + norm(conv(pad(relu(norm(conv(pad(x)))))))``; its second norm has no activation and fuses the residual
add (``instance_norm_act(..., activation="none", residual=x)``), so a block touches its output once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganrt.models.layers import (
    check_image_input,
    check_norm,
    check_positive_int,
    conv_bias,
    init_weights,
    norm_act,
)

N_DOWNSAMPLING = 2


def _reflect(x: torch.Tensor, pad: int) -> torch.Tensor:
    return F.pad(x, (pad, pad, pad, pad), mode="reflect")


class ResnetBlock(nn.Module):
    """Residual block: (N, C, H, W) -> (N, C, H, W); dropout 0.5 between the convs when enabled."""

    def __init__(self, channels: int, *, norm: str, dropout: bool, fused: bool) -> None:
        super().__init__()
        bias = conv_bias(norm)
        self.conv1 = nn.Conv2d(channels, channels, 3, bias=bias)
        self.norm1 = norm_act(channels, norm, "relu", fused=fused)
        self.conv2 = nn.Conv2d(channels, channels, 3, bias=bias)
        self.norm2 = norm_act(channels, norm, "none", fused=fused)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(self.conv1(_reflect(x, 1)))
        if self.dropout:
            h = F.dropout(h, 0.5, self.training)
        return self.norm2(self.conv2(_reflect(h, 1)), residual=x)


class ResnetGenerator(nn.Module):
    """ResNet image-to-image generator.

    Args:
        in_channels, out_channels: image channels in and out.
        ngf: channels after the stem (x2, x4 after the downsamplings).
        norm: "instance" (the CycleGAN default), "batch" (per-image affine) or "none".
        dropout: dropout 0.5 inside every residual block while training.
        n_blocks: residual blocks (6 or 9 in the reference).
        fused: run norm+activation sites through the fused ganrt kernels.

    ``forward(x)``: x (N, in_channels, H, W) float in [-1, 1], H and W multiples of 4
    -> (N, out_channels, H, W) in [-1, 1].
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        norm: str = "instance",
        dropout: bool = False,
        n_blocks: int = 9,
        fused: bool = True,
    ) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("ngf", ngf)
        check_positive_int("n_blocks", n_blocks, 0)
        check_norm(norm)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.ngf = ngf
        self.norm = norm
        self.use_dropout = bool(dropout)
        self.n_blocks = n_blocks
        self.fused = fused
        self.multiple = 2**N_DOWNSAMPLING
        self.spec = {
            "arch": f"resnet_{n_blocks}blocks",
            "in_channels": in_channels,
            "out_channels": out_channels,
            "ngf": ngf,
            "norm": norm,
            "dropout": bool(dropout),
        }
        bias = conv_bias(norm)
        self.stem = nn.Conv2d(in_channels, ngf, 7, bias=bias)
        self.stem_norm = norm_act(ngf, norm, "relu", fused=fused)
        self.down = nn.ModuleList(
            nn.Conv2d(ngf * 2**i, ngf * 2 ** (i + 1), 3, 2, 1, bias=bias) for i in range(N_DOWNSAMPLING)
        )
        self.down_norm = nn.ModuleList(
            norm_act(ngf * 2 ** (i + 1), norm, "relu", fused=fused) for i in range(N_DOWNSAMPLING)
        )
        width = ngf * 2**N_DOWNSAMPLING
        self.blocks = nn.ModuleList(
            ResnetBlock(width, norm=norm, dropout=bool(dropout), fused=fused) for _ in range(n_blocks)
        )
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(width // 2**i, width // 2 ** (i + 1), 3, 2, 1, output_padding=1, bias=bias)
            for i in range(N_DOWNSAMPLING)
        )
        self.up_norm = nn.ModuleList(
            norm_act(width // 2 ** (i + 1), norm, "relu", fused=fused) for i in range(N_DOWNSAMPLING)
        )
        self.head = nn.Conv2d(ngf, out_channels, 7)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_input(x, self.in_channels, self.multiple, type(self).__name__)
        h = self.stem_norm(self.stem(_reflect(x, 3)))
        for conv, site in zip(self.down, self.down_norm):
            h = site(conv(h))
        for block in self.blocks:
            h = block(h)
        for conv, site in zip(self.up, self.up_norm):
            h = site(conv(h))
        return torch.tanh(self.head(_reflect(h, 3)))
