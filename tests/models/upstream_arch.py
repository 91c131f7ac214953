"""An independent re-implementation of the reference Pix2Pix/CycleGAN generators, for checkpoint-import tests.

Written from the description in ../shared/REFERENCE.md §1 with the reference's exact module nesting, so that
its ``state_dict`` keys (``model.model.1.model.1.weight``, ``model.10.conv_block.5.weight``, ...) and its
numerics (in-place activations, which make the U-Net skip connections carry the activated tensor) are those
of real ``latest_net_G.pth`` files. Built from stock ``torch.nn`` layers only; nothing here imports ganrt.
"""

from __future__ import annotations

import torch
from torch import nn


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level; ``forward`` returns ``cat([x, model(x)])`` except at the outermost level."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        use_bias = norm == "instance"
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)
        if outermost:
            assert submodule is not None
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            layers = [downrelu, downconv, uprelu, upconv, _norm(norm, outer_nc)]
        else:
            assert submodule is not None
            upconv = nn.ConvTranspose2d(
                inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias
            )
            layers = [
                downrelu,
                downconv,
                _norm(norm, inner_nc),
                submodule,
                uprelu,
                upconv,
                _norm(norm, outer_nc),
            ]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        # The list holds x itself; model(x) starts with an in-place LeakyReLU, so the cat sees activated x.
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        num_downs: int,
        ngf: int = 64,
        norm: str = "batch",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm=norm, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(
                ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout
            )
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(
            output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm=norm
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, norm: str, use_dropout: bool, use_bias: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
            _norm(norm, dim),
            nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
            _norm(norm, dim),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        ngf: int = 64,
        norm: str = "instance",
        use_dropout: bool = False,
        n_blocks: int = 9,
    ) -> None:
        super().__init__()
        use_bias = norm == "instance"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
            _norm(norm, ngf),
            nn.ReLU(True),
        ]
        for i in range(2):
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                _norm(norm, ngf * mult * 2),
                nn.ReLU(True),
            ]
        for _ in range(n_blocks):
            layers.append(ResnetBlock(ngf * 4, norm, use_dropout, use_bias))
        for i in range(2):
            mult = 2 ** (2 - i)
            out = ngf * mult // 2
            layers += [
                nn.ConvTranspose2d(ngf * mult, out, 3, stride=2, padding=1, output_padding=1, bias=use_bias),
                _norm(norm, out), nn.ReLU(True),
            ]  # fmt: skip
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def build(
    netG: str, *, ngf: int, norm: str, dropout: bool, input_nc: int = 3, output_nc: int = 3
) -> nn.Module:
    """The reference generator for a ``--netG`` name."""
    if netG == "unet_128":
        return UnetGenerator(input_nc, output_nc, 7, ngf, norm, dropout)
    if netG == "unet_256":
        return UnetGenerator(input_nc, output_nc, 8, ngf, norm, dropout)
    if netG == "resnet_6blocks":
        return ResnetGenerator(input_nc, output_nc, ngf, norm, dropout, 6)
    if netG == "resnet_9blocks":
        return ResnetGenerator(input_nc, output_nc, ngf, norm, dropout, 9)
    raise ValueError(f"unknown netG {netG!r}")


def randomize(model: nn.Module, generator: torch.Generator, calibration: torch.Tensor | None = None) -> None:
    """Random weights as after some training: conv N(0, 0.02)-ish, BN scales/shifts spread out, and BN running
    statistics near the statistics real inputs produce (so eval-mode outputs are neither saturated nor flat).

    ``calibration``: images to estimate running statistics from (train-mode passes, cumulative average);
    the estimates are then perturbed randomly.
    """
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                fan_in = (
                    m.weight[0].numel()
                    if isinstance(m, nn.Conv2d)
                    else m.weight.shape[0] * m.weight[0, 0].numel()
                )
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * (1.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=generator) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1.0 + 0.3 * torch.randn(m.weight.shape, generator=generator))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=generator))
                m.momentum = None  # cumulative average over the calibration passes
                m.reset_running_stats()
        if calibration is not None:
            model.train()
            for i in range(calibration.shape[0]):
                model(calibration[i : i + 1].clone())
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.add_(0.1 * torch.randn(m.running_mean.shape, generator=generator))
                m.running_var.mul_(torch.exp(0.2 * torch.randn(m.running_var.shape, generator=generator)))
                m.num_batches_tracked.fill_(1000)
                m.momentum = 0.1
