"""Convolutional VAE: encoder -> (mu, logvar), sampling through ``ganrt.ops.reparameterize``, decoder.

Encoder: stride-2 4x4 convs from ``image_size`` down to 4x4 (the first with LeakyReLU only, the rest with
per-image affine norm + LeakyReLU(0.2)), then two linear heads for ``mu`` and ``logvar``. Decoder: a linear
layer to a 4x4 map + ReLU (no norm there: a 4x4 map normalized per channel would lose the per-channel level
that z sets), stride-2 transposed convs with norm + ReLU, and a final transposed conv + tanh. Widths are
``base_channels * min(2**i, 8)`` at the i-th halving.

Sampling: ``z = mu + exp(logvar / 2) * eps`` with ``eps`` from ganrt's counter-based Philox generator, so a
given ``(seed, offset)`` draws the same noise on CPU and GPU, in training and in an exported graph (which
takes ``eps`` as an input).
"""

from __future__ import annotations

import torch
from torch import nn

from ganrt import ops
from ganrt.models.layers import (
    check_image_input,
    check_positive_int,
    check_power_of_two,
    init_weights,
    norm_act,
)

MIN_IMAGE_SIZE = 8


class VAE(nn.Module):
    """Variational autoencoder for square images.

    Args:
        image_size: height and width, a power of two >= 8.
        channels: image channels.
        latent_dim: length of z.
        base_channels: channels of the first encoder conv / last decoder stage.
        fused: run norm+activation sites (and the reparameterization) through the fused ganrt kernels.

    Shapes: images (N, channels, image_size, image_size) float in [-1, 1]; mu, logvar, z (N, latent_dim).
    """

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        latent_dim: int = 128,
        base_channels: int = 32,
        fused: bool = True,
    ) -> None:
        super().__init__()
        stages = check_power_of_two("image_size", image_size, MIN_IMAGE_SIZE) - 2
        check_positive_int("channels", channels)
        check_positive_int("latent_dim", latent_dim)
        check_positive_int("base_channels", base_channels)
        self.image_size = image_size
        self.latent_dim = latent_dim
        self.base_channels = base_channels
        self.fused = fused
        self.in_channels = self.out_channels = channels
        self.multiple, self.num_classes = image_size, 0
        self.spec = {
            "arch": "vae",
            "image_size": image_size,
            "channels": channels,
            "latent_dim": latent_dim,
            "base_channels": base_channels,
        }
        widths = [base_channels * min(2**i, 8) for i in range(stages)]
        self._top = widths[-1]
        self.enc = nn.ModuleList(
            nn.Conv2d(channels if i == 0 else widths[i - 1], widths[i], 4, 2, 1, bias=i == 0)
            for i in range(stages)
        )
        self.enc_norm = nn.ModuleList(
            norm_act(widths[i], "none" if i == 0 else "batch", "leaky_relu", fused=fused)
            for i in range(stages)
        )
        self.fc_mu = nn.Linear(self._top * 16, latent_dim)
        self.fc_logvar = nn.Linear(self._top * 16, latent_dim)
        self.fc_dec = nn.Linear(latent_dim, self._top * 16)
        self.dec = nn.ModuleList(
            nn.ConvTranspose2d(widths[i], widths[i - 1], 4, 2, 1, bias=False)
            for i in range(stages - 1, 0, -1)
        )
        self.dec_norm = nn.ModuleList(
            norm_act(widths[i - 1], "batch", "relu", fused=fused) for i in range(stages - 1, 0, -1)
        )
        self.head = nn.ConvTranspose2d(widths[0], channels, 4, 2, 1)
        init_weights(self)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, C, S, S) in [-1, 1] -> (mu, logvar), each (N, latent_dim)."""
        check_image_input(x, self.in_channels, 1, "VAE.encode", exact_size=self.image_size)
        h = x
        for conv, site in zip(self.enc, self.enc_norm):
            h = site(conv(h))
        h = h.flatten(1)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, latent_dim) -> images (N, C, S, S) in [-1, 1]."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"VAE.decode z must have shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        h = torch.relu(self.fc_dec(z)).view(z.shape[0], self._top, 4, 4)
        for conv, site in zip(self.dec, self.dec_norm):
            h = site(conv(h))
        return torch.tanh(self.head(h))

    def reparameterize(
        self, mu: torch.Tensor, logvar: torch.Tensor, *, seed: int, offset: int = 0
    ) -> torch.Tensor:
        """z = mu + exp(logvar / 2) * eps, eps ~ N(0, 1) from Philox(seed) at element ``offset + i``.

        fp16/bf16 mu and logvar (mixed precision) are sampled in fp32, as ``ops.reparameterize`` does under
        autocast, on both paths.
        """
        if mu.dtype in (torch.float16, torch.bfloat16):
            mu, logvar = mu.float(), logvar.float()
        if self.fused:
            return ops.reparameterize(mu, logvar, seed=seed, offset=offset)
        eps = ops.standard_normal(tuple(mu.shape), seed=seed, offset=offset, dtype=mu.dtype, device=mu.device)
        return ops.reparameterize_ref(mu, logvar, eps)

    def forward(
        self, x: torch.Tensor, *, seed: int, offset: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, C, S, S) -> (reconstruction (N, C, S, S), mu (N, latent_dim), logvar (N, latent_dim))."""
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar, seed=seed, offset=offset)), mu, logvar


def vae_loss_terms(
    recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image means of (reconstruction error, KL(q(z|x) || N(0, I))), both scalar tensors.

    The reconstruction error is the sum of squared errors over pixels: the negative log-likelihood of a
    Gaussian decoder with variance 1/2, up to a constant, so ``recon + kl`` is the negative ELBO (+ const).
    """
    if recon.shape != x.shape:
        raise ValueError(
            f"recon and x must have the same shape, got {tuple(recon.shape)} and {tuple(x.shape)}"
        )
    if mu.shape != logvar.shape or mu.dim() != 2:
        raise ValueError(
            f"mu and logvar must both be (N, latent_dim), got {tuple(mu.shape)} and {tuple(logvar.shape)}"
        )
    n = x.shape[0]
    rec = (recon - x).pow(2).sum() / n
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum() / n
    return rec, kl


def vae_loss(
    recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0
) -> torch.Tensor:
    """beta-VAE loss, a scalar: reconstruction (sum of squared errors per image) + beta * KL, batch mean.

    recon, x: (N, C, H, W); mu, logvar: (N, latent_dim). With ``beta=1`` this is the negative ELBO up to a
    constant (see :func:`vae_loss_terms` for the two terms separately).
    """
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    rec, kl = vae_loss_terms(recon, x, mu, logvar)
    return rec + beta * kl
