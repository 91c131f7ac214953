"""PatchGAN discriminator: the reference's ``basic`` (n_layers=3, 70x70 receptive field) and ``n_layers``.

``Conv(in, ndf, 4, s2) + LeakyReLU``, then ``n_layers - 1`` stride-2 convs and one stride-1 conv, each with
norm + LeakyReLU(0.2) (channels ``ndf * min(2**n, 8)``), then ``Conv(., 1, 4, s1)`` giving raw logits: one per
overlapping patch, a 30x30 map for a 256x256 input with ``n_layers=3``.
"""

from __future__ import annotations

import torch
from torch import nn

from ganrt.models.layers import check_norm, check_positive_int, conv_bias, init_weights, norm_act


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator.

    Args:
        in_channels: input channels (Pix2Pix feeds ``cat([input, output])``, i.e. in + out channels).
        ndf: channels of the first conv.
        n_layers: stride-2 convs after the first (3 gives the 70x70 PatchGAN).
        norm: "batch" (per-image affine), "instance" or "none".
        fused: run norm+activation sites through the fused ganrt kernels.

    ``forward(x)``: x (N, in_channels, H, W) -> logits (N, 1, H', W') (H' = H/8 - 2 for n_layers=3).
    """

    def __init__(
        self, in_channels: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch", fused: bool = True
    ) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("ndf", ndf)
        check_positive_int("n_layers", n_layers)
        check_norm(norm)
        self.in_channels = in_channels
        self.ndf = ndf
        self.n_layers = n_layers
        self.norm = norm
        self.fused = fused
        self.spec = {
            "arch": "patchgan",
            "in_channels": in_channels,
            "ndf": ndf,
            "n_layers": n_layers,
            "norm": norm,
        }
        widths = [ndf * min(2**n, 8) for n in range(n_layers + 1)]
        bias = conv_bias(norm)
        convs: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1)]
        sites: list[nn.Module] = [norm_act(ndf, "none", "leaky_relu", fused=fused)]
        for n in range(1, n_layers + 1):
            stride = 2 if n < n_layers else 1
            convs.append(nn.Conv2d(widths[n - 1], widths[n], 4, stride, 1, bias=bias))
            sites.append(norm_act(widths[n], norm, "leaky_relu", fused=fused))
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(sites)
        self.head = nn.Conv2d(widths[-1], 1, 4, 1, 1)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"NLayerDiscriminator input must be (N, {self.in_channels}, H, W), got shape {tuple(x.shape)}"
            )
        h = x
        for conv, site in zip(self.convs, self.norms):
            h = site(conv(h))
        return self.head(h)
