"""DCGAN generator and discriminator, optionally class-conditional (CGAN).

Generator: ``z`` (plus, for a CGAN, a learned label embedding concatenated to it) -> a 4x4 map through a
4x4 transposed conv, then stride-2 transposed convs with norm + ReLU up to ``image_size``, ending in tanh.
The label embedding has ``num_classes`` dimensions, the capacity of the one-hot code of Mirza & Osindero.

Discriminator: stride-2 convs with norm + LeakyReLU(0.2) down to 4x4 (no norm on the first, as in DCGAN),
then a 4x4 conv to one raw logit per image. A CGAN discriminator adds the projection term of Miyato &
Koyama (2018), ``<embed(label), sum_hw(features)>``, which conditions without widening the input.

Norm "batch" is ganrt's per-image affine norm (see ``ganrt.models.layers``), so discriminator outputs never
mix images of a batch, which WGAN-GP's per-sample gradient penalty requires.
"""

from __future__ import annotations

import torch
from torch import nn

from ganrt.models.layers import (
    check_image_input,
    check_norm,
    check_positive_int,
    check_power_of_two,
    conv_bias,
    init_weights,
    norm_act,
)

MIN_IMAGE_SIZE = 8


def _check_labels(owner: str, labels: torch.Tensor | None, n: int, num_classes: int) -> None:
    if num_classes == 0:
        if labels is not None:
            raise ValueError(f"{owner} is unconditional (num_classes=0) but labels were given")
        return
    if labels is None:
        raise ValueError(f"{owner} is class-conditional (num_classes={num_classes}) and needs labels")
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"{owner} labels must have shape ({n},), got {tuple(labels.shape)}")
    if labels.dtype != torch.int64:
        raise TypeError(f"{owner} labels must be int64, got {labels.dtype}")


def _stage_widths(base: int, stages: int) -> list[int]:
    """Channels per resolution stage from 4x4 upwards: base * min(2**(stages-1-j), 8)."""
    return [base * min(2 ** (stages - 1 - j), 8) for j in range(stages)]


class DCGANGenerator(nn.Module):
    """DCGAN / CGAN generator.

    Args:
        latent_dim: length of z.
        channels: output image channels.
        image_size: output height and width, a power of two >= 8.
        ngf: channels of the last hidden stage (x2 per halving of resolution, at most x8).
        num_classes: 0 for an unconditional DCGAN, else the number of classes of a CGAN.
        norm: "batch" (per-image affine), "instance" or "none".
        fused: run norm+activation sites through the fused ganrt kernels.

    ``forward(z, labels=None)``: z (N, latent_dim) float, labels (N,) int64 (CGAN only)
    -> (N, channels, image_size, image_size) in [-1, 1].
    """

    def __init__(
        self,
        latent_dim: int = 100,
        channels: int = 3,
        image_size: int = 64,
        ngf: int = 64,
        num_classes: int = 0,
        norm: str = "batch",
        fused: bool = True,
    ) -> None:
        super().__init__()
        check_positive_int("latent_dim", latent_dim)
        check_positive_int("channels", channels)
        stages = check_power_of_two("image_size", image_size, MIN_IMAGE_SIZE) - 2
        check_positive_int("ngf", ngf)
        check_positive_int("num_classes", num_classes, 0)
        check_norm(norm)
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.image_size = image_size
        self.ngf = ngf
        self.norm = norm
        self.in_channels = latent_dim  # z viewed as a (N, latent_dim, 1, 1) map; there is no input image
        self.out_channels = channels
        self.multiple = image_size
        self.fused = fused
        self.spec = {
            "arch": "dcgan_g",
            "latent_dim": latent_dim,
            "channels": channels,
            "image_size": image_size,
            "ngf": ngf,
            "num_classes": num_classes,
            "norm": norm,
        }
        self.embed = nn.Embedding(num_classes, num_classes) if num_classes else None
        widths = _stage_widths(ngf, stages)
        bias = conv_bias(norm)
        self.project = nn.ConvTranspose2d(latent_dim + num_classes, widths[0], 4, 1, 0, bias=bias)
        self.project_norm = norm_act(widths[0], norm, "relu", fused=fused)
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[j], widths[j + 1], 4, 2, 1, bias=bias) for j in range(stages - 1)
        )
        self.up_norm = nn.ModuleList(
            norm_act(widths[j + 1], norm, "relu", fused=fused) for j in range(stages - 1)
        )
        self.head = nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1)
        init_weights(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"DCGANGenerator z must have shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        _check_labels("DCGANGenerator", labels, z.shape[0], self.num_classes)
        if self.embed is not None:
            assert labels is not None
            z = torch.cat([z, self.embed(labels).to(z.dtype)], 1)
        h = self.project_norm(self.project(z[:, :, None, None]))
        for conv, site in zip(self.up, self.up_norm):
            h = site(conv(h))
        return torch.tanh(self.head(h))


class DCGANDiscriminator(nn.Module):
    """DCGAN / CGAN (projection) discriminator.

    Args:
        channels: input image channels.
        image_size: input height and width, a power of two >= 8.
        ndf: channels of the first conv (x2 per halving of resolution, at most x8).
        num_classes: 0 for an unconditional DCGAN, else the number of classes of a CGAN.
        norm: "batch" (per-image affine), "instance" or "none".
        fused: run norm+activation sites through the fused ganrt kernels.

    ``forward(x, labels=None)``: x (N, channels, image_size, image_size), labels (N,) int64 (CGAN only)
    -> logits (N,) float.
    """

    def __init__(
        self,
        channels: int = 3,
        image_size: int = 64,
        ndf: int = 64,
        num_classes: int = 0,
        norm: str = "batch",
        fused: bool = True,
    ) -> None:
        super().__init__()
        check_positive_int("channels", channels)
        stages = check_power_of_two("image_size", image_size, MIN_IMAGE_SIZE) - 2
        check_positive_int("ndf", ndf)
        check_positive_int("num_classes", num_classes, 0)
        check_norm(norm)
        self.channels = channels
        self.image_size = image_size
        self.ndf = ndf
        self.num_classes = num_classes
        self.norm = norm
        self.fused = fused
        self.spec = {
            "arch": "dcgan_d",
            "channels": channels,
            "image_size": image_size,
            "ndf": ndf,
            "num_classes": num_classes,
            "norm": norm,
        }
        widths = _stage_widths(ndf, stages)[::-1]
        bias = conv_bias(norm)
        convs: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1)]
        sites: list[nn.Module] = [norm_act(widths[0], "none", "leaky_relu", fused=fused)]
        for j in range(1, stages):
            convs.append(nn.Conv2d(widths[j - 1], widths[j], 4, 2, 1, bias=bias))
            sites.append(norm_act(widths[j], norm, "leaky_relu", fused=fused))
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(sites)
        self.head = nn.Conv2d(widths[-1], 1, 4, 1, 0)
        self.embed = nn.Embedding(num_classes, widths[-1]) if num_classes else None
        init_weights(self)
        if self.embed is not None:
            # The projection term starts at the scale of the other weights rather than Embedding's N(0, 1).
            nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        check_image_input(x, self.channels, 1, "DCGANDiscriminator", exact_size=self.image_size)
        _check_labels("DCGANDiscriminator", labels, x.shape[0], self.num_classes)
        h = x
        for conv, site in zip(self.convs, self.norms):
            h = site(conv(h))
        logits = self.head(h).flatten()
        if self.embed is not None:
            assert labels is not None
            logits = logits + (self.embed(labels).to(h.dtype) * h.sum((2, 3))).sum(1)
        return logits
