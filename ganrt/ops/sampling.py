"""VAE reparameterization ``z = mu + exp(0.5 * logvar) * eps`` with eps drawn in the kernel from Philox.

eps is element ``offset + i`` of the :func:`ganrt.ops.standard_normal` stream of ``seed`` (row-major flat
index i), so ``reparameterize(mu, logvar, seed=s, offset=k)`` equals
``reparameterize_ref(mu, logvar, standard_normal(mu.shape, seed=s, offset=k))`` on every device.

Backward: ``grad_mu = grad_z``, ``grad_logvar = grad_z * 0.5 * exp(0.5 * logvar) * eps``. eps is recomputed
from (seed, offset) in the backward kernel instead of being saved: the forward pass then stores nothing beyond
logvar (no numel-sized eps tensor kept alive per VAE step, no write + read of it), at the price of a second
Philox + Box-Muller evaluation, which is bit-identical to the first.

Registered as ``ganrt::reparameterize`` and ``ganrt::reparameterize_backward``. For export, eps is an explicit
graph input: export :func:`reparameterize_ref` (standard Exp/Mul/Add), never the sampling op.

Under ``torch.autocast`` the op runs in float32, like autocast's own ``exp``: ``exp(0.5 * logvar)`` overflows
fp16 from logvar = 22, and the sampled z should not be coarser than the fp32 noise it is made of.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ganrt.ops._common import (
    DTYPE_CODES,
    check_float,
    check_same,
    check_u64,
    eager_fast_path,
    i64_to_u64,
    run_kernel,
    u64_to_i64,
)
from ganrt.ops.philox import check_offset_range

__all__ = ["reparameterize", "reparameterize_ref"]


def _check(mu: Tensor, logvar: Tensor) -> None:
    check_float("mu", mu)
    check_same("logvar", logvar, "mu", mu)
    if logvar.shape != mu.shape:
        raise ValueError(f"logvar must have the shape of mu {tuple(mu.shape)}, got {tuple(logvar.shape)}")


def _forward_impl(mu: Tensor, logvar: Tensor, seed: int, offset: int) -> Tensor:
    _check(mu, logvar)
    seed_u, offset_u = i64_to_u64(seed), i64_to_u64(offset)
    check_offset_range(mu.numel(), offset_u)
    muc, lvc = mu.contiguous(), logvar.contiguous()
    z = torch.empty_like(muc, memory_format=torch.contiguous_format)
    if z.numel() > 0:
        run_kernel(
            "reparameterize_forward", mu, DTYPE_CODES[mu.dtype], muc.data_ptr(), lvc.data_ptr(), z.data_ptr(),
            0, z.numel(), seed_u, offset_u,
        )  # fmt: skip
    return z


def _backward_impl(grad_z: Tensor, logvar: Tensor, seed: int, offset: int) -> Tensor:
    _check(grad_z, logvar)
    seed_u, offset_u = i64_to_u64(seed), i64_to_u64(offset)
    check_offset_range(logvar.numel(), offset_u)
    gc, lvc = grad_z.contiguous(), logvar.contiguous()
    grad_logvar = torch.empty_like(lvc, memory_format=torch.contiguous_format)
    if grad_logvar.numel() > 0:
        run_kernel(
            "reparameterize_backward", logvar, DTYPE_CODES[logvar.dtype], gc.data_ptr(), lvc.data_ptr(),
            grad_logvar.data_ptr(), grad_logvar.numel(), seed_u, offset_u,
        )  # fmt: skip
    return grad_logvar


@torch.library.custom_op("ganrt::reparameterize", mutates_args=())
def _reparameterize(mu: Tensor, logvar: Tensor, seed: int, offset: int) -> Tensor:
    """mu, logvar: same shape -> z, contiguous; seed/offset are int64 views of uint64."""
    return _forward_impl(mu, logvar, seed, offset)


@_reparameterize.register_fake
def _reparameterize_fake(mu: Tensor, logvar: Tensor, seed: int, offset: int) -> Tensor:
    _check(mu, logvar)
    return torch.empty_like(mu, memory_format=torch.contiguous_format)


@torch.library.custom_op("ganrt::reparameterize_backward", mutates_args=())
def _reparameterize_backward(grad_z: Tensor, logvar: Tensor, seed: int, offset: int) -> Tensor:
    """grad_z, logvar: same shape -> grad_logvar = grad_z * 0.5 * exp(0.5 * logvar) * eps(seed, offset)."""
    return _backward_impl(grad_z, logvar, seed, offset)


@_reparameterize_backward.register_fake
def _reparameterize_backward_fake(grad_z: Tensor, logvar: Tensor, seed: int, offset: int) -> Tensor:
    _check(grad_z, logvar)
    return torch.empty_like(logvar, memory_format=torch.contiguous_format)


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    _, logvar, seed, offset = inputs
    ctx.save_for_backward(logvar)
    ctx.seed = seed
    ctx.offset = offset


def _backward(ctx: Any, grad_z: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
    (logvar,) = ctx.saved_tensors
    need_mu, need_logvar = ctx.needs_input_grad[:2]
    grad_logvar = None
    if need_logvar:
        if torch.is_grad_enabled():
            # create_graph=True: a differentiable formula with eps regenerated from the same stream.
            eps = torch.ops.ganrt.standard_normal(
                logvar.shape, ctx.seed, ctx.offset, logvar.dtype, logvar.device
            )
            grad_logvar = grad_z * 0.5 * torch.exp(0.5 * logvar) * eps
        elif eager_fast_path(grad_z, logvar):
            grad_logvar = _backward_impl(grad_z, logvar, ctx.seed, ctx.offset)
        else:
            grad_logvar = torch.ops.ganrt.reparameterize_backward(grad_z, logvar, ctx.seed, ctx.offset)
    return (grad_z if need_mu else None), grad_logvar, None, None


_reparameterize.register_autograd(_backward, setup_context=_setup_context)
# Autocast rule of the registered op (torch.compile, export, direct calls); the eager path applies it itself.
_reparameterize.register_autocast("cpu", torch.float32)
_reparameterize.register_autocast("cuda", torch.float32)
_HALF = (torch.float16, torch.bfloat16)


class _EagerReparameterize(torch.autograd.Function):
    """Eager fast path: the registered op's implementation and backward, without the dispatcher."""

    @staticmethod
    def forward(ctx: Any, mu: Tensor, logvar: Tensor, seed: int, offset: int) -> Tensor:
        z = _forward_impl(mu, logvar, seed, offset)
        _setup_context(ctx, (mu, logvar, seed, offset), z)
        return z

    @staticmethod
    def backward(ctx: Any, grad_z: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        return _backward(ctx, grad_z)


def reparameterize(mu: Tensor, logvar: Tensor, *, seed: int, offset: int = 0) -> Tensor:
    """Sample ``z = mu + exp(0.5 * logvar) * eps`` with eps ~ N(0, 1) from the Philox stream of ``seed``.

    Args:
        mu, logvar: same shape (any rank, any layout), float32|float64 on CPU, float32|float16|bfloat16 on
            CUDA, same device.
        seed: int in [0, 2**64 - 1].
        offset: index of the first eps in the stream, >= 0 (offset + numel < 2**64); give consecutive calls
            disjoint ranges (e.g. ``offset = step * mu.numel()``) to draw independent noise from one seed.

    Returns:
        z: shape of mu, contiguous, dtype of mu (float32 for fp16/bf16 inputs under autocast).
        Differentiable in mu and logvar.
    """
    check_u64("seed", seed)
    check_u64("offset", offset)
    kind = mu.device.type if isinstance(mu, Tensor) else None
    if kind in ("cpu", "cuda") and torch.is_autocast_enabled(kind) and eager_fast_path(mu, logvar):
        mu, logvar = (t.float() if t.dtype in _HALF else t for t in (mu, logvar))
    args = (mu, logvar, u64_to_i64(seed), u64_to_i64(offset))
    if eager_fast_path(mu, logvar):
        if torch.is_grad_enabled() and (mu.requires_grad or logvar.requires_grad):
            return _EagerReparameterize.apply(*args)
        return _forward_impl(*args)
    return torch.ops.ganrt.reparameterize(*args)


def reparameterize_ref(mu: Tensor, logvar: Tensor, eps: Tensor) -> Tensor:
    """Plain-PyTorch ``mu + exp(0.5 * logvar) * eps``; the form exported to ONNX, with eps a graph input."""
    return mu + torch.exp(0.5 * logvar) * eps
