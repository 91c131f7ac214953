"""GAN losses, the WGAN-GP gradient penalty (with double backward through the fused norm), the VAE loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganrt.models import (
    DCGANDiscriminator,
    NLayerDiscriminator,
    gan_loss,
    gradient_penalty,
    vae_loss,
    vae_loss_terms,
)
from tests.tolerances import FUSED_FLOAT64_ATOL, FUSED_GRAD_RTOL, FUSED_OUTPUT_ATOL, GRAD_FLOOR_FRACTION


def test_gan_loss_values():
    logits = torch.tensor([[-2.0, 0.0], [0.5, 3.0]])
    sig = torch.sigmoid(logits)
    assert math.isclose(gan_loss(logits, True).item(), -torch.log(sig).mean().item(), rel_tol=1e-6)
    assert math.isclose(gan_loss(logits, False).item(), -torch.log(1 - sig).mean().item(), rel_tol=1e-6)
    assert math.isclose(
        gan_loss(logits, True, "lsgan").item(), ((logits - 1) ** 2).mean().item(), rel_tol=1e-6
    )
    assert math.isclose(gan_loss(logits, False, "lsgan").item(), (logits**2).mean().item(), rel_tol=1e-6)
    assert math.isclose(gan_loss(logits, True, "wgangp").item(), -0.375, rel_tol=1e-6)
    assert math.isclose(gan_loss(logits, False, "wgangp").item(), 0.375, rel_tol=1e-6)
    with pytest.raises(ValueError, match="mode must be one of"):
        gan_loss(logits, True, "hinge")


class _Linear(nn.Module):
    """D(x) = <w, x>: its input gradient is w everywhere, so the penalty is exactly (||w|| - 1)^2."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        out = (x * self.w).flatten(1).sum(1)
        return out if labels is None else out + labels.to(x.dtype)


def test_gradient_penalty_is_exact_for_a_linear_critic():
    w = torch.full((1, 2, 3, 3), 0.5, dtype=torch.float64)  # ||w|| = 0.5 * sqrt(18)
    d = _Linear(w.clone())
    real, fake = torch.randn(4, 2, 3, 3, dtype=torch.float64), torch.randn(4, 2, 3, 3, dtype=torch.float64)
    gp = gradient_penalty(d, real, fake, torch.tensor([0, 1, 2, 3]))
    norm = 0.5 * math.sqrt(18)
    assert math.isclose(gp.item(), (norm - 1) ** 2, rel_tol=1e-12)
    gp.backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    torch.testing.assert_close(d.w.grad, 2 * (norm - 1) * w / norm)


def test_gradient_penalty_is_seeded_and_checks_shapes():
    d = NLayerDiscriminator(3, ndf=4, n_layers=1, fused=False)
    real, fake = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    a = gradient_penalty(d, real, fake, generator=torch.Generator().manual_seed(1))
    b = gradient_penalty(d, real, fake, generator=torch.Generator().manual_seed(1))
    c = gradient_penalty(d, real, fake, generator=torch.Generator().manual_seed(2))
    assert a.item() == b.item() and a.item() != c.item()
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(d, real, fake[:1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_gradient_penalty_double_backward_fused_matches_stock(dtype):
    """WGAN-GP differentiates through D's input gradient: the fused norm's backward must be differentiable."""
    torch.manual_seed(0)
    fused = DCGANDiscriminator(channels=1, image_size=16, ndf=4, num_classes=3, fused=True).to(dtype)
    stock = DCGANDiscriminator(channels=1, image_size=16, ndf=4, num_classes=3, fused=False).to(dtype)
    stock.load_state_dict(fused.state_dict())
    g = torch.Generator().manual_seed(3)
    real, fake = (
        torch.randn(3, 1, 16, 16, generator=g, dtype=dtype),
        torch.randn(3, 1, 16, 16, generator=g, dtype=dtype),
    )
    labels = torch.tensor([0, 2, 1])
    results = []
    for d in (fused, stock):
        gp = gradient_penalty(d, real, fake, labels, generator=torch.Generator().manual_seed(5))
        gp.backward()
        # Parameters the input gradient does not depend on (the last bias) get no gradient at all.
        grads = {
            k: torch.zeros_like(p) if p.grad is None else p.grad.clone() for k, p in d.named_parameters()
        }
        results.append((gp.detach(), grads))
    (gp_f, grads_f), (gp_s, grads_s) = results
    atol = FUSED_OUTPUT_ATOL if dtype == torch.float32 else FUSED_FLOAT64_ATOL
    torch.testing.assert_close(gp_f, gp_s, atol=atol, rtol=0)
    assert grads_s["norms.1.weight"].abs().max() > 0  # the norm's parameters get second-order gradients
    rtol = FUSED_GRAD_RTOL if dtype == torch.float32 else FUSED_FLOAT64_ATOL
    floor = GRAD_FLOOR_FRACTION * max(v.abs().max() for v in grads_s.values())
    for key, gs in grads_s.items():
        err = (grads_f[key] - gs).abs().max() / torch.maximum(gs.abs().max(), floor)
        assert err <= rtol, f"gradient of {key} differs: {err:.2e}"


def test_vae_loss():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 4, 4, generator=g)
    recon = x + 0.1
    mu, logvar = torch.zeros(2, 3), torch.zeros(2, 3)
    rec, kl = vae_loss_terms(recon, x, mu, logvar)
    assert math.isclose(rec.item(), 16 * 0.01, rel_tol=1e-5) and kl.item() == 0.0
    mu = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0), 0.0], [0.0, 0.0, 0.0]])
    _, kl = vae_loss_terms(recon, x, mu, logvar)
    # KL per image: 0.5 * sum(mu^2 + var - 1 - log var); batch mean over 2 images.
    expected = 0.5 * (1.0 + (2.0 - 1.0 - math.log(2.0))) / 2
    assert math.isclose(kl.item(), expected, rel_tol=1e-6)
    assert math.isclose(
        vae_loss(recon, x, mu, logvar, beta=4.0).item(), rec.item() + 4 * expected, rel_tol=1e-6
    )
    # The KL term against the closed form of torch.distributions.
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    assert math.isclose(kl.item(), torch.distributions.kl_divergence(q, p).sum(1).mean().item(), rel_tol=1e-6)
    assert math.isclose(rec.item(), F.mse_loss(recon, x, reduction="sum").item() / 2, rel_tol=1e-6)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        vae_loss(recon, x, mu, logvar, beta=-1.0)
    with pytest.raises(ValueError, match="same shape"):
        vae_loss(recon[:1], x, mu, logvar)
