"""Drop-in modules built on the fused ops."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganrt.ops._common import check_activation, check_finite_positive
from ganrt.ops.norm import NORM_DTYPES

__all__ = ["InstanceNormAct2d"]


class InstanceNormAct2d(nn.Module):
    """``act(InstanceNorm2d(x) + residual)``, fused into one kernel when ``fused=True``.

    Equivalent to ``nn.InstanceNorm2d(num_features, eps, affine=affine, track_running_stats=False)`` followed
    by the optional residual add and ``nn.LeakyReLU(negative_slope)`` / ``nn.ReLU()`` / identity. With
    ``affine=True`` the parameters are named ``weight`` and ``bias`` (shape (C,)), as in ``nn.InstanceNorm2d``
    and ``nn.BatchNorm2d``, so state dicts carry over (batch norm at batch size 1 in train mode equals affine
    instance norm).

    ``fused=True`` runs ``ganrt.ops.instance_norm_act`` where ganrt has a kernel for the input (CPU float32/
    float64/bfloat16, any layout; CUDA float32/float16/bfloat16 when the CUDA kernels were built) and the
    stock PyTorch ops otherwise; ``fused=False`` always runs the stock ops (``F.instance_norm`` + activation),
    which also export to ONNX without a translation table.

    Shapes: x, residual (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(
        self,
        num_features: int,
        *,
        affine: bool = False,
        activation: str = "leaky_relu",
        negative_slope: float = 0.2,
        eps: float = 1e-5,
        fused: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features <= 0:
            raise ValueError(f"num_features must be a positive int, got {num_features!r}")
        check_activation(activation, negative_slope)
        self.num_features = num_features
        self.affine = affine
        self.activation = activation
        self.negative_slope = float(negative_slope)
        self.eps = check_finite_positive("eps", eps)
        self.fused = fused
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def _has_kernel(self, x: Tensor) -> bool:
        kind = x.device.type
        if kind not in NORM_DTYPES or x.dtype not in NORM_DTYPES[kind]:
            return False
        if kind == "cuda":
            from ganrt import _C

            return bool(_C.cuda_compiled)
        return True

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"x must be 4-D (N, C, H, W), got {x.dim()}-D")
        if x.shape[1] != self.num_features:
            raise ValueError(f"x must have {self.num_features} channels (dim 1), got {x.shape[1]}")
        if self.fused and self._has_kernel(x):
            from ganrt.ops import instance_norm_act

            weight, bias = self.weight, self.bias
            if weight is not None and weight.dtype != x.dtype:
                # Mixed precision (autocast, .half() activations with float32 parameters): the kernel takes
                # one dtype and accumulates in fp32 anyway; the casts are differentiable.
                weight, bias = weight.to(x.dtype), bias.to(x.dtype)
            if residual is not None and residual.dtype != x.dtype:
                residual = residual.to(x.dtype)
            return instance_norm_act(
                x, weight, bias, eps=self.eps, activation=self.activation, negative_slope=self.negative_slope,
                residual=residual,
            )  # fmt: skip
        y = F.instance_norm(x, weight=self.weight, bias=self.bias, use_input_stats=True, eps=self.eps)
        if residual is not None:
            y = y + residual
        if self.activation == "leaky_relu":
            return F.leaky_relu(y, self.negative_slope)
        if self.activation == "relu":
            return F.relu(y)
        return y

    def extra_repr(self) -> str:
        act = self.activation
        if act == "leaky_relu":
            act = f"leaky_relu({self.negative_slope})"
        return (
            f"{self.num_features}, eps={self.eps}, affine={self.affine}, activation={act}, fused={self.fused}"
        )
