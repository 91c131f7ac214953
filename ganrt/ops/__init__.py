"""Fused ops of ganrt, registered with PyTorch as ``torch.ops.ganrt.*``.

Each op runs the C++ kernel of ``ganrt._C`` for CPU tensors and the CUDA kernel (on torch's current stream)
for CUDA tensors, supports autograd, ``torch.compile`` (fake kernels) and ONNX export through
:func:`onnx_translation_table`. Every op has a pure-PyTorch reference ``<op>_ref`` next to it.

Public API:
    instance_norm_act(x, weight=None, bias=None, *, eps=1e-5, activation="leaky_relu", negative_slope=0.2,
                      residual=None) -> Tensor
    reparameterize(mu, logvar, *, seed, offset=0) -> Tensor
    standard_normal(shape, *, seed, offset=0, dtype=torch.float32, device="cpu") -> Tensor
    images_to_tensor(images, *, dtype=torch.float32) -> Tensor
    tensor_to_images(x) -> Tensor
    images_to_tensor_into(images, out, *, threads=None) / tensor_to_images_into(x, out, *, threads=None)
    onnx_translation_table() -> dict
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ganrt.ops.image import (
    images_to_tensor,
    images_to_tensor_into,
    images_to_tensor_ref,
    tensor_to_images,
    tensor_to_images_into,
    tensor_to_images_ref,
)
from ganrt.ops.norm import instance_norm_act, instance_norm_act_ref, onnx_instance_norm_act
from ganrt.ops.philox import philox4x32_10_ref, standard_normal, standard_normal_ref
from ganrt.ops.sampling import reparameterize, reparameterize_ref


def onnx_translation_table() -> dict[Any, Callable[..., Any]]:
    """Translations of ganrt ops into standard ONNX ops for ``torch.onnx.export(..., dynamo=True)``.

    Usage:
    ``torch.onnx.export(model, args, f, dynamo=True, custom_translation_table=onnx_translation_table())``.

    Only ``ganrt::instance_norm_act`` appears inside networks and is translated (InstanceNormalization, Add,
    LeakyRelu/Relu). The sampling ops are deliberately absent: ONNX/TensorRT random ops ignore seeds, so an
    exported graph takes the noise as an input and uses :func:`reparameterize_ref`; the image conversions run
    outside the graph.
    """
    return {torch.ops.ganrt.instance_norm_act.default: onnx_instance_norm_act}


__all__ = [
    "images_to_tensor",
    "images_to_tensor_into",
    "images_to_tensor_ref",
    "instance_norm_act",
    "instance_norm_act_ref",
    "onnx_translation_table",
    "philox4x32_10_ref",
    "reparameterize",
    "reparameterize_ref",
    "standard_normal",
    "standard_normal_ref",
    "tensor_to_images",
    "tensor_to_images_into",
    "tensor_to_images_ref",
]
