"""GAN objectives: vanilla (BCE with logits), LSGAN (least squares) and WGAN-GP, plus the gradient penalty."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ganrt.families import GAN_MODES


def gan_loss(logits: torch.Tensor, target_is_real: bool, mode: str = "vanilla") -> torch.Tensor:
    """Scalar loss pushing discriminator ``logits`` (any shape, raw scores) towards "real" or "fake".

    - ``vanilla``: binary cross-entropy with logits against 1 (real) or 0 (fake);
    - ``lsgan``: mean squared error against 1 or 0 (Mao et al.; the CycleGAN default);
    - ``wgangp``: the Wasserstein critic objective, ``-mean(logits)`` for real, ``mean(logits)`` for fake.

    The generator loss is ``gan_loss(D(fake), True, mode)``; the discriminator loss is
    ``gan_loss(D(real), True) + gan_loss(D(fake.detach()), False)`` (halved in Pix2Pix), plus
    ``lambda * gradient_penalty(...)`` for WGAN-GP.
    """
    if mode == "vanilla":
        target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, target)
    if mode == "lsgan":
        target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
        return F.mse_loss(logits, target)
    if mode == "wgangp":
        return -logits.mean() if target_is_real else logits.mean()
    raise ValueError(f"mode must be one of {GAN_MODES}, got {mode!r}")


def gradient_penalty(
    D: Callable[..., torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty ``mean((||grad_x D(x)||_2 - 1)^2)`` at random interpolates of real and fake images.

    real, fake: (N, C, H, W) of the same shape; labels: (N,) int64 for a conditional D, passed as ``D(x,
    labels)``. The mixing weights come from ``generator`` (torch's default generator when None). Returns an
    unweighted scalar; multiply by lambda (10 in Gulrajani et al.). Differentiable w.r.t. D's parameters.
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    alpha_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(alpha_shape, generator=generator, dtype=real.dtype, device=real.device)
    x = (alpha * real.detach() + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    out = D(x) if labels is None else D(x, labels)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1.0).pow(2).mean()
