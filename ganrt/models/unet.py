"""Pix2Pix U-Net generator (``unet_64`` / ``unet_128`` / ``unet_256``: 6 / 7 / 8 downsamplings).

The same network as the reference's nested ``UnetSkipConnectionBlock`` stack, written as a flat list of levels
so that every normalization meets its activation in one place:

- level ``i`` downsamples with a 4x4 stride-2 conv; its output is normalized and (in the reference, by the
  next level's in-place ``LeakyReLU(0.2)``) activated. Because that activation is in place, the reference's
  skip connection carries the *activated* tensor, so ``down_norm`` fuses norm + LeakyReLU and the result is
  both the skip and the next level's input. Level 0 has no norm; the innermost level has no norm and uses
  ReLU.
- the upsampling path applies ``ReLU`` to ``cat([skip, up])`` before every transposed conv. ReLU of a
  concatenation is the concatenation of ReLUs, so ``up_norm`` fuses norm + ReLU and the skip half gets its own
  ReLU. Dropout (x2 scaling or zero) commutes with ReLU, so it follows the fused site.
- level 0's transposed conv ends in tanh.

Level ``i`` has ``ngf * min(2**i, 8)`` channels; dropout (when enabled) sits on levels ``4 .. num_downs-2``,
the three 512-channel levels next to the innermost one in ``unet_256``.
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

MIN_DOWNS = 5


def unet_channels(num_downs: int, ngf: int) -> list[int]:
    """Channels of each level's downsampling output, outermost first."""
    return [ngf * min(2**i, 8) for i in range(num_downs)]


class _UnetLevel(nn.Module):
    def __init__(
        self,
        down_in: int,
        inner: int,
        up_out: int,
        *,
        level: int,
        num_downs: int,
        norm: str,
        dropout: bool,
        fused: bool,
    ) -> None:
        super().__init__()
        outermost, innermost = level == 0, level == num_downs - 1
        self.down = nn.Conv2d(down_in, inner, 4, 2, 1, bias=conv_bias(norm))
        self.down_norm = norm_act(
            inner,
            "none" if outermost or innermost else norm,
            "relu" if innermost else "leaky_relu",
            fused=fused,
        )
        self.up = nn.ConvTranspose2d(
            inner if innermost else 2 * inner, up_out, 4, 2, 1, bias=outermost or conv_bias(norm)
        )
        self.up_norm = None if outermost else norm_act(up_out, norm, "relu", fused=fused)
        self.dropout = dropout and 4 <= level <= num_downs - 2


class UnetGenerator(nn.Module):
    """U-Net image-to-image generator.

    Args:
        in_channels, out_channels: image channels in and out.
        num_downs: number of stride-2 downsamplings (>= 5); H and W must be multiples of ``2**num_downs``.
        ngf: channels of the first level.
        norm: "batch" (per-image affine norm, the reference default), "instance" or "none".
        dropout: dropout 0.5 on the innermost 512-channel levels while training.
        fused: run norm+activation sites through the fused ganrt kernels.

    ``forward(x)``: x (N, in_channels, H, W) float in [-1, 1] -> (N, out_channels, H, W) in [-1, 1].
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        dropout: bool = False,
        fused: bool = True,
    ) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("num_downs", num_downs, MIN_DOWNS)
        check_positive_int("ngf", ngf)
        check_norm(norm)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_downs = num_downs
        self.ngf = ngf
        self.norm = norm
        self.use_dropout = bool(dropout)
        self.fused = fused
        self.multiple = 2**num_downs
        self.spec = {
            "arch": f"unet_{2**num_downs}",
            "in_channels": in_channels,
            "out_channels": out_channels,
            "ngf": ngf,
            "norm": norm,
            "dropout": bool(dropout),
        }
        ch = unet_channels(num_downs, ngf)
        self.levels = nn.ModuleList(
            _UnetLevel(
                in_channels if i == 0 else ch[i - 1],
                ch[i],
                out_channels if i == 0 else ch[i - 1],
                level=i,
                num_downs=num_downs,
                norm=norm,
                dropout=bool(dropout),
                fused=fused,
            )
            for i in range(num_downs)
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_input(x, self.in_channels, self.multiple, type(self).__name__)
        skips: list[torch.Tensor] = []
        h = x
        for level in self.levels:
            h = level.down_norm(level.down(h))
            skips.append(h)
        for i in range(self.num_downs - 1, 0, -1):
            level = self.levels[i]
            if i < self.num_downs - 1:
                h = torch.cat([F.relu(skips[i]), h], 1)
            h = level.up_norm(level.up(h))
            if level.dropout:
                h = F.dropout(h, 0.5, self.training)
        return torch.tanh(self.levels[0].up(torch.cat([F.relu(skips[0]), h], 1)))
