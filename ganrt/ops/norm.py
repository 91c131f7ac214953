"""Fused instance normalization + per-channel affine + residual add + activation.

``y = act(weight[c] * (x - mean[n, c]) * rstd[n, c] + bias[c] + residual)`` with per-(n, c)-plane statistics,
``rstd = 1 / sqrt(var + eps)`` (biased variance, as ``nn.InstanceNorm2d``). One op covers the norm sites of
the Pix2Pix U-Net (batch norm at batch size 1 equals affine instance norm), the CycleGAN ResNet generator
(``residual + IN(x)``, no activation) and the PatchGAN discriminator.

Registered as ``ganrt::instance_norm_act`` (returns ``y, mean, rstd``; the statistics are kept for the
backward pass) and ``ganrt::instance_norm_act_backward``. The backward pass reads the activation mask from the
saved output ``y`` (``y > 0``), which is why ``negative_slope`` must be >= 0.

Mixed precision: under ``torch.autocast`` the op runs in the autocast dtype (bf16 on CPU, fp16/bf16 on CUDA)
rather than being left to whatever dtype arrives; its statistics stay fp32 either way. On CPU a channels_last
tensor is normalized in its own layout (no transposing copies), which is what oneDNN's convolutions around it
produce and want.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ganrt.ops._common import (
    ACTIVATION_CODES,
    DTYPE_CODES,
    FLOAT_DTYPES,
    check_activation,
    check_finite_positive,
    check_float,
    check_rank4,
    check_same,
    cuda_workspace,
    eager_fast_path,
    memory_format_of,
    ptr,
    run_kernel,
)

__all__ = ["instance_norm_act", "instance_norm_act_ref"]


# The dtypes of the instance-norm kernels: the CPU kernel also stores bfloat16 (computing in float).
NORM_DTYPES: dict[str, tuple[torch.dtype, ...]] = {
    "cpu": (*FLOAT_DTYPES["cpu"], torch.bfloat16),
    "cuda": FLOAT_DTYPES["cuda"],
}


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulator dtype of the statistics: float64 for float64 inputs, float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_args(
    x: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    residual: Tensor | None,
    eps: float,
    activation: str,
    negative_slope: float,
) -> int:
    """Validate all arguments; return the activation code."""
    _check_tensors(x, weight, bias, residual)
    check_finite_positive("eps", eps)
    return check_activation(activation, negative_slope)


def _check_tensors(x: Tensor, weight: Tensor | None, bias: Tensor | None, residual: Tensor | None) -> None:
    check_float("x", x, NORM_DTYPES)
    check_rank4("x", x)
    channels = x.shape[1]
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None:
            check_same(name, t, "x", x)
            if tuple(t.shape) != (channels,):
                raise ValueError(
                    f"{name} must have shape ({channels},) (one value per channel of x), got {tuple(t.shape)}"
                )
    if residual is not None:
        check_same("residual", residual, "x", x)
        if residual.shape != x.shape:
            raise ValueError(
                f"residual must have the shape of x {tuple(x.shape)}, got {tuple(residual.shape)}"
            )
    if x.shape[2] * x.shape[3] == 0 and x.shape[0] * x.shape[1] > 0:
        raise ValueError(
            f"x must have H * W > 0 (statistics of an empty plane are undefined), got {tuple(x.shape)}"
        )


def _forward_impl(
    x: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    residual: Tensor | None,
    eps: float,
    activation: str,
    negative_slope: float,
    act: int | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The op's implementation; ``act`` is the activation code when the caller already checked the scalars."""
    if act is None:
        act = _check_args(x, weight, bias, residual, eps, activation, negative_slope)
    else:
        _check_tensors(x, weight, bias, residual)
    n, c, h, w = x.shape
    fmt = memory_format_of(x)
    nhwc = _kernel_nhwc(x, fmt)
    layout = fmt if nhwc else torch.contiguous_format
    xc = x.contiguous(memory_format=layout)
    y = torch.empty_like(xc, memory_format=layout)
    mean = x.new_empty((n, c), dtype=_acc_dtype(x.dtype))
    rstd = torch.empty_like(mean)
    if y.numel() > 0:
        wc = None if weight is None else weight.contiguous()
        bc = None if bias is None else bias.contiguous()
        rc = None if residual is None else residual.contiguous(memory_format=layout)
        ws = None if x.is_cpu else cuda_workspace("instance_norm_act_workspace", x, n, c, h * w, False)
        run_kernel(
            "instance_norm_act_forward", x, DTYPE_CODES[x.dtype], ptr(xc), ptr(wc), ptr(bc), ptr(rc), ptr(y),
            ptr(mean), ptr(rstd), n, c, h * w, eps, negative_slope, act, nhwc, workspace=ws,
        )  # fmt: skip
    if fmt != layout:
        y = y.contiguous(memory_format=fmt)
    return y, mean, rstd


def _kernel_nhwc(x: Tensor, fmt: torch.memory_format) -> bool:
    """Whether the kernel runs on x's own channels_last layout (CPU) instead of a contiguous copy (CUDA)."""
    return fmt == torch.channels_last and x.is_cpu


@torch.library.custom_op("ganrt::instance_norm_act", mutates_args=())
def _instance_norm_act(
    x: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    residual: Tensor | None,
    eps: float,
    activation: str,
    negative_slope: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """x, residual: (N, C, H, W); weight, bias: (C,) -> y (N, C, H, W) in x's layout, mean and rstd (N, C).

    mean/rstd are float64 for float64 x, float32 otherwise (statistics are accumulated in fp32 for fp16/bf16).
    """
    return _forward_impl(x, weight, bias, residual, eps, activation, negative_slope)


@_instance_norm_act.register_fake
def _instance_norm_act_fake(
    x: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    residual: Tensor | None,
    eps: float,
    activation: str,
    negative_slope: float,
) -> tuple[Tensor, Tensor, Tensor]:
    _check_args(x, weight, bias, residual, eps, activation, negative_slope)
    y = torch.empty_like(x, memory_format=memory_format_of(x))
    mean = x.new_empty((x.shape[0], x.shape[1]), dtype=_acc_dtype(x.dtype))
    return y, mean, torch.empty_like(mean)


def _backward_impl(
    grad_y: Tensor,
    x: Tensor,
    y: Tensor,
    weight: Tensor | None,
    mean: Tensor,
    rstd: Tensor,
    activation: str,
    negative_slope: float,
    need_grad_x: bool,
    need_grad_residual: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    act = _check_backward_args(grad_y, x, y, weight, mean, rstd, activation, negative_slope)
    grad_x, grad_res, sum_dy, sum_dy_xhat = _backward_kernel(
        grad_y, x, y, weight, mean, rstd, act, negative_slope, need_grad_x, need_grad_residual
    )
    empty = None if grad_x is not None and grad_res is not None else x.new_empty((0,))
    return (
        empty if grad_x is None else grad_x,
        empty if grad_res is None else grad_res,
        sum_dy,
        sum_dy_xhat,
    )


def _backward_kernel(
    grad_y: Tensor,
    x: Tensor,
    y: Tensor,
    weight: Tensor | None,
    mean: Tensor,
    rstd: Tensor,
    act: int,
    negative_slope: float,
    need_grad_x: bool,
    need_grad_residual: bool,
) -> tuple[Tensor | None, Tensor | None, Tensor, Tensor]:
    """The backward kernel call on checked arguments; grad_x / grad_residual are None when not requested."""
    n, c, h, w = x.shape
    fmt = memory_format_of(x)
    nhwc = _kernel_nhwc(x, fmt)
    layout = fmt if nhwc else torch.contiguous_format
    grad_x = torch.empty_like(x, memory_format=layout) if need_grad_x else None
    grad_res = torch.empty_like(x, memory_format=layout) if need_grad_residual else None
    sum_dy = torch.empty_like(mean)
    sum_dy_xhat = torch.empty_like(mean)
    if x.numel() > 0:
        gc, xc, yc = (t.contiguous(memory_format=layout) for t in (grad_y, x, y))
        wc = None if weight is None else weight.contiguous()
        ws = None if x.is_cpu else cuda_workspace("instance_norm_act_workspace", x, n, c, h * w, True)
        run_kernel(
            "instance_norm_act_backward", x, DTYPE_CODES[x.dtype], ptr(gc), ptr(xc), ptr(yc), ptr(wc),
            ptr(mean.contiguous()), ptr(rstd.contiguous()), ptr(grad_x), ptr(grad_res), ptr(sum_dy),
            ptr(sum_dy_xhat), n, c, h * w, negative_slope, act, nhwc, workspace=ws,
        )  # fmt: skip
    if fmt != layout:
        if grad_x is not None:
            grad_x = grad_x.contiguous(memory_format=fmt)
        if grad_res is not None:
            grad_res = grad_res.contiguous(memory_format=fmt)
    return grad_x, grad_res, sum_dy, sum_dy_xhat


@torch.library.custom_op("ganrt::instance_norm_act_backward", mutates_args=())
def _instance_norm_act_backward(
    grad_y: Tensor,
    x: Tensor,
    y: Tensor,
    weight: Tensor | None,
    mean: Tensor,
    rstd: Tensor,
    activation: str,
    negative_slope: float,
    need_grad_x: bool,
    need_grad_residual: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients of ``ganrt::instance_norm_act`` from its saved output y and statistics.

    Returns ``grad_x`` (x's shape and layout; empty (0,) unless ``need_grad_x``), ``grad_residual`` (= grad_y
    masked by the activation derivative; empty unless ``need_grad_residual``), and the per-plane sums
    ``sum_dy``, ``sum_dy_xhat`` (N, C) in the accumulator dtype, from which the caller forms
    ``grad_bias = sum_dy.sum(0)`` and ``grad_weight = sum_dy_xhat.sum(0)``.
    """
    return _backward_impl(
        grad_y, x, y, weight, mean, rstd, activation, negative_slope, need_grad_x, need_grad_residual
    )


def _check_backward_args(
    grad_y: Tensor,
    x: Tensor,
    y: Tensor,
    weight: Tensor | None,
    mean: Tensor,
    rstd: Tensor,
    activation: str,
    negative_slope: float,
) -> int:
    check_float("x", x, NORM_DTYPES)
    check_rank4("x", x)
    for name, t in (("grad_y", grad_y), ("y", y)):
        check_same(name, t, "x", x)
        if t.shape != x.shape:
            raise ValueError(f"{name} must have the shape of x {tuple(x.shape)}, got {tuple(t.shape)}")
    if weight is not None:
        check_same("weight", weight, "x", x)
        if tuple(weight.shape) != (x.shape[1],):
            raise ValueError(f"weight must have shape ({x.shape[1]},), got {tuple(weight.shape)}")
    acc = _acc_dtype(x.dtype)
    for name, t in (("mean", mean), ("rstd", rstd)):
        if t.shape != (x.shape[0], x.shape[1]) or t.dtype != acc or t.device != x.device:
            raise ValueError(
                f"{name} must be a {acc} tensor of shape {(x.shape[0], x.shape[1])} on {x.device}, "
                f"got {t.dtype} {tuple(t.shape)} on {t.device}"
            )
    return check_activation(activation, negative_slope)


@_instance_norm_act_backward.register_fake
def _instance_norm_act_backward_fake(
    grad_y: Tensor,
    x: Tensor,
    y: Tensor,
    weight: Tensor | None,
    mean: Tensor,
    rstd: Tensor,
    activation: str,
    negative_slope: float,
    need_grad_x: bool,
    need_grad_residual: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    _check_backward_args(grad_y, x, y, weight, mean, rstd, activation, negative_slope)
    fmt = memory_format_of(x)
    grad_x = torch.empty_like(x, memory_format=fmt) if need_grad_x else x.new_empty((0,))
    grad_res = torch.empty_like(x, memory_format=fmt) if need_grad_residual else x.new_empty((0,))
    return grad_x, grad_res, torch.empty_like(mean), torch.empty_like(mean)


def _save(ctx: Any, inputs: tuple[Any, ...], y: Tensor, mean: Tensor, rstd: Tensor) -> None:
    x, weight, bias, residual, eps, activation, negative_slope = inputs
    # Gradients of the statistics outputs are never used: let them arrive as None instead of zero tensors.
    ctx.set_materialize_grads(False)
    # bias and residual are kept only for the double-backward path (a recomputation through the reference).
    ctx.save_for_backward(x, weight, bias, residual, y, mean, rstd)
    ctx.eps = eps
    ctx.activation = activation
    ctx.negative_slope = negative_slope


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor, Tensor]) -> None:
    y, mean, rstd = output
    ctx.mark_non_differentiable(mean, rstd)
    _save(ctx, inputs, y, mean, rstd)


def _sum_over_batch(per_plane: Tensor) -> Tensor:
    """(N, C) per-plane sums -> (C,); N = 1 (the usual GAN batch) takes the row without a reduction kernel."""
    return per_plane[0] if per_plane.shape[0] == 1 else per_plane.sum(0)


def _backward(
    ctx: Any, grad_y: Tensor | None, _grad_mean: Tensor | None = None, _grad_rstd: Tensor | None = None
) -> tuple[Tensor | None, ...]:
    if grad_y is None:
        return (None,) * 7
    x, weight, bias, residual, y, mean, rstd = ctx.saved_tensors
    need_x, need_w, need_b, need_r = ctx.needs_input_grad[:4]
    if torch.is_grad_enabled():
        # create_graph=True (e.g. a WGAN-GP gradient penalty): differentiate a recomputation through the
        # pure-PyTorch reference so that the gradients are themselves differentiable.
        return _differentiable_backward(ctx, grad_y, x, weight, bias, residual)
    if (
        eager_fast_path(grad_y, x, y, weight)
        and grad_y.dtype is x.dtype
        and grad_y.device == x.device
        and grad_y.shape == x.shape
    ):
        # Everything but grad_y was checked by the forward pass and grad_y matches y: call the kernel without
        # the full re-check (any layout of grad_y is made contiguous there).
        grad_x, grad_res, sum_dy, sum_dy_xhat = _backward_kernel(
            grad_y, x, y, weight, mean, rstd, ACTIVATION_CODES[ctx.activation], ctx.negative_slope, need_x, need_r
        )
    else:
        args = (grad_y, x, y, weight, mean, rstd, ctx.activation, ctx.negative_slope, need_x, need_r)
        grad_x, grad_res, sum_dy, sum_dy_xhat = torch.ops.ganrt.instance_norm_act_backward(*args)
    grad_w = _sum_over_batch(sum_dy_xhat).to(weight.dtype) if need_w else None
    grad_b = _sum_over_batch(sum_dy).to(bias.dtype) if need_b else None
    return (grad_x if need_x else None), grad_w, grad_b, (grad_res if need_r else None), None, None, None


def _differentiable_backward(
    ctx: Any, grad_y: Tensor, x: Tensor, weight: Tensor | None, bias: Tensor | None, residual: Tensor | None
) -> tuple[Tensor | None, ...]:
    tensors = (x, weight, bias, residual)
    wanted = [t for t, need in zip(tensors, ctx.needs_input_grad[:4]) if need]
    y = instance_norm_act_ref(
        x, weight, bias, eps=ctx.eps, activation=ctx.activation, negative_slope=ctx.negative_slope,
        residual=residual,
    )  # fmt: skip
    grads = iter(torch.autograd.grad(y, wanted, grad_y, create_graph=True, allow_unused=True))
    out = [next(grads) if need else None for need in ctx.needs_input_grad[:4]]
    return (*out, None, None, None)


_instance_norm_act.register_autograd(_backward, setup_context=_setup_context)

# What autocast may cast (as autocast itself does: float64 tensors are left alone).
_AUTOCAST_ELIGIBLE = (torch.float32, torch.float16, torch.bfloat16)


def _autocast_dtype(device_type: str) -> torch.dtype:
    """The dtype the op runs in under autocast: autocast's own (bf16 on CPU, fp16 or bf16 on CUDA) when the
    device's kernel takes it, else float32 (e.g. fp16 autocast on CPU, where there is no fp16 kernel)."""
    dtype = torch.get_autocast_dtype(device_type)
    return dtype if dtype in NORM_DTYPES[device_type] else torch.float32


def _autocast_inputs(device_type: str, *tensors: Tensor | None) -> tuple[Tensor | None, ...]:
    dtype = _autocast_dtype(device_type)
    return tuple(
        t.to(dtype) if t is not None and t.dtype in _AUTOCAST_ELIGIBLE and t.dtype != dtype else t
        for t in tensors
    )


# Autocast rule of the registered op (torch.compile, export, direct torch.ops calls): like autocast's
# lower-precision ops, cast the floating inputs to the autocast dtype and run with autocast off, instead of
# falling through to whatever dtypes arrive (fp32 weights next to a bf16 activation would be a dtype error).
# Not torch.library.register_autocast: that fixes one dtype per device, and CUDA autocast may be fp16 or bf16.
_AUTOCAST_LIB = torch.library.Library("ganrt", "IMPL")


def _register_autocast(device_type: str, dispatch_key: str) -> None:
    def kernel(
        x: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        residual: Tensor | None,
        eps: float,
        activation: str,
        negative_slope: float,
    ) -> tuple[Tensor, Tensor, Tensor]:
        x, weight, bias, residual = _autocast_inputs(device_type, x, weight, bias, residual)
        with torch.autocast(device_type, enabled=False):
            return torch.ops.ganrt.instance_norm_act.default(x, weight, bias, residual, eps, activation,
                                                             negative_slope)

    _AUTOCAST_LIB.impl("instance_norm_act", kernel, dispatch_key)


_register_autocast("cpu", "AutocastCPU")
_register_autocast("cuda", "AutocastCUDA")


class _EagerInstanceNormAct(torch.autograd.Function):
    """Eager fast path: the registered op's implementation and backward, without the dispatcher."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        residual: Tensor | None,
        eps: float,
        activation: str,
        negative_slope: float,
    ) -> Tensor:
        inputs = (x, weight, bias, residual, eps, activation, negative_slope)
        y, mean, rstd = _forward_impl(*inputs, ACTIVATION_CODES[activation])
        _save(ctx, inputs, y, mean, rstd)
        return y

    @staticmethod
    def backward(ctx: Any, grad_y: Tensor | None) -> tuple[Tensor | None, ...]:
        return _backward(ctx, grad_y)


def instance_norm_act(
    x: Tensor,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    *,
    eps: float = 1e-5,
    activation: str = "leaky_relu",
    negative_slope: float = 0.2,
    residual: Tensor | None = None,
) -> Tensor:
    """Fused ``act(InstanceNorm(x) * weight + bias + residual)``.

    Args:
        x: (N, C, H, W) float32|float64|bfloat16 on CPU, float32|float16|bfloat16 on CUDA; any layout
            (contiguous, channels_last, strided views); the result has x's layout (channels_last stays
            channels_last, and on CPU is computed in that layout without copies). Under ``torch.autocast`` the
            floating inputs are cast to the autocast dtype first (float32 where the device has no kernel for
            it).
        weight, bias: (C,) per-channel affine, same dtype/device as x, or None (scale 1, shift 0).
        eps: added to the biased per-plane variance; finite and > 0.
        activation: "leaky_relu", "relu" or "none".
        negative_slope: slope of leaky_relu for negative inputs; must be >= 0.
        residual: (N, C, H, W) added after the affine and before the activation, or None.

    Returns:
        y: (N, C, H, W), dtype of x. Statistics and arithmetic are fp32 (fp64 for float64 inputs); fp16/bf16
        is only the storage.

    Under torch.compile / export / tracing this is the registered op ``ganrt::instance_norm_act``; in plain
    eager mode the same implementation is called without the dispatcher (see ``eager_fast_path``).
    """
    # Scalar checks up front so that a wrong type fails with our message rather than a schema mismatch.
    check_finite_positive("eps", eps)
    act = check_activation(activation, negative_slope)
    kind = x.device.type if isinstance(x, Tensor) else None
    if kind in NORM_DTYPES and torch.is_autocast_enabled(kind) and eager_fast_path(x):
        # The eager path bypasses the dispatcher, so it applies the op's autocast rule itself.
        x, weight, bias, residual = _autocast_inputs(kind, x, weight, bias, residual)
    args = (x, weight, bias, residual, float(eps), activation, float(negative_slope))
    if eager_fast_path(x, weight, bias, residual):
        if torch.is_grad_enabled() and (
            x.requires_grad
            or (weight is not None and weight.requires_grad)
            or (bias is not None and bias.requires_grad)
            or (residual is not None and residual.requires_grad)
        ):
            return _EagerInstanceNormAct.apply(*args)
        return _forward_impl(*args, act)[0]
    return torch.ops.ganrt.instance_norm_act(*args)[0]


def instance_norm_act_ref(
    x: Tensor,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    *,
    eps: float = 1e-5,
    activation: str = "leaky_relu",
    negative_slope: float = 0.2,
    residual: Tensor | None = None,
) -> Tensor:
    """Pure-PyTorch reference of :func:`instance_norm_act` (same arguments and result; differentiable).

    fp16/bf16 inputs are normalized in fp32 and the result cast back, like the fused kernel.
    """
    check_activation(activation, negative_slope)
    compute = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    xf = x.to(compute)
    mean = xf.mean(dim=(2, 3), keepdim=True)
    centered = xf - mean
    var = centered.square().mean(dim=(2, 3), keepdim=True)
    z = centered * torch.rsqrt(var + eps)
    if weight is not None:
        z = z * weight.to(compute).view(1, -1, 1, 1)
    if bias is not None:
        z = z + bias.to(compute).view(1, -1, 1, 1)
    if residual is not None:
        z = z + residual.to(compute)
    if activation == "leaky_relu":
        z = torch.nn.functional.leaky_relu(z, negative_slope)
    elif activation == "relu":
        z = torch.relu(z)
    return z.to(x.dtype)


def onnx_instance_norm_act(
    x: Any,
    weight: Any = None,
    bias: Any = None,
    residual: Any = None,
    eps: float = 1e-5,
    activation: str = "leaky_relu",
    negative_slope: float = 0.2,
) -> tuple[Any, Any, Any]:
    """ONNX translation of ``ganrt::instance_norm_act`` in standard opset-18 ops.

    ``y`` becomes InstanceNormalization (scale/B of ones/zeros when there is no affine) + Add(residual) +
    LeakyRelu/Relu. The op's statistics outputs are also produced (ReduceMean over H, W) because the exporter
    expects one value per op output; nothing consumes them in an inference graph, so the exporter's optimizer
    removes those nodes.
    """
    from onnxscript import ir
    from onnxscript import opset18 as op

    channels = op.Shape(x, start=1, end=2)
    scale = (
        weight if weight is not None else op.Expand(op.CastLike(op.Constant(value_float=1.0), x), channels)
    )
    shift = bias if bias is not None else op.Expand(op.CastLike(op.Constant(value_float=0.0), x), channels)
    y = op.InstanceNormalization(x, scale, shift, epsilon=eps)
    if residual is not None:
        y = op.Add(y, residual)
    if activation == "leaky_relu":
        y = op.LeakyRelu(y, alpha=negative_slope)
    elif activation == "relu":
        y = op.Relu(y)
    # Statistics in the op's accumulator dtype: float64 for float64 x, float32 otherwise.
    wide = (ir.DataType.FLOAT, ir.DataType.DOUBLE)
    xs = x if getattr(x, "dtype", None) in wide else op.Cast(x, to=ir.DataType.FLOAT)
    axes = op.Constant(value_ints=[2, 3])
    mean = op.ReduceMean(xs, axes, keepdims=1)
    centered = op.Sub(xs, mean)
    var = op.ReduceMean(op.Mul(centered, centered), axes, keepdims=0)
    rstd = op.Reciprocal(op.Sqrt(op.Add(var, op.CastLike(op.Constant(value_float=eps), var))))
    return y, op.Squeeze(mean, axes), rstd
