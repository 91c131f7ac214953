"""Building blocks shared by the ganrt networks: the norm+activation site, weight init, argument checks.

Every place where a network normalizes and then activates goes through :func:`norm_act`, so one switch
(``fused``) decides whether it runs the fused ``ganrt.ops.instance_norm_act`` kernel or stock PyTorch ops.
Both variants are the same :class:`ganrt.nn.InstanceNormAct2d` module with the same parameter names, so a
state_dict trained with one loads into the other.

Norm names (``norm=``):

- ``"batch"``: per-image normalization with a learned per-channel affine (the parameters are called
  ``weight``/``bias``, as in ``BatchNorm2d``). This is what the reference Pix2Pix/CycleGAN code computes with
  its default batch size 1 and at test time without ``--eval``: train-mode BatchNorm over a single image
  equals affine instance norm. ganrt keeps it per image at every batch size, so results never depend on which
  other images share a batch (and the exported graph equals the trained network).
- ``"instance"``: per-image normalization without affine parameters (reference ``InstanceNorm2d``).
- ``"none"``: no normalization, the site only activates; convolutions then carry biases. Upstream checkpoints
  imported with ``stats="running"`` use it: their eval-mode BatchNorm is a fixed per-channel affine that is
  folded into the preceding convolution.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ganrt.families import NORMS
from ganrt.nn import InstanceNormAct2d

Norm = Literal["batch", "instance", "none"]
Activation = Literal["relu", "leaky_relu", "none"]
ACTIVATIONS: tuple[str, ...] = ("relu", "leaky_relu", "none")
LEAKY_SLOPE = 0.2
INIT_STD = 0.02


class Act(nn.Module):
    """Activation-only site (norm ``"none"``): ``act(x + residual)``; has no parameters.

    Same call signature as :class:`ganrt.nn.InstanceNormAct2d` so networks treat every site alike.
    """

    def __init__(self, activation: Activation, negative_slope: float = LEAKY_SLOPE) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """x, residual: (N, C, H, W) -> (N, C, H, W)."""
        if residual is not None:
            x = x + residual
        if self.activation == "relu":
            return F.relu(x)
        if self.activation == "leaky_relu":
            return F.leaky_relu(x, self.negative_slope)
        return x

    def extra_repr(self) -> str:
        if self.activation == "leaky_relu":
            return f"activation=leaky_relu, negative_slope={self.negative_slope}"
        return f"activation={self.activation}"


def check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def norm_act(
    num_features: int, norm: str, activation: Activation, *, fused: bool, negative_slope: float = LEAKY_SLOPE
) -> nn.Module:
    """The module for one normalization + activation site (``forward(x, residual=None)``).

    ``norm`` "batch" -> affine per-image norm, "instance" -> plain per-image norm, "none" -> :class:`Act`.
    """
    check_norm(norm)
    if norm == "none":
        return Act(activation, negative_slope)
    return InstanceNormAct2d(
        num_features,
        affine=norm == "batch",
        activation=activation,
        negative_slope=negative_slope,
        fused=fused,
    )


def conv_bias(norm: str) -> bool:
    """Whether a conv followed by this norm carries a bias (a per-channel affine norm makes it moot)."""
    return norm != "batch"


def init_weights(module: nn.Module) -> None:
    """The reference initialization: conv/linear weights N(0, 0.02), biases 0, norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, INIT_STD)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, InstanceNormAct2d) and getattr(m, "weight", None) is not None:
            nn.init.normal_(m.weight, 1.0, INIT_STD)
            nn.init.zeros_(m.bias)


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_power_of_two(name: str, value: object, minimum: int) -> int:
    """Check a fixed image size: a power of two >= ``minimum``; returns log2(value)."""
    check_positive_int(name, value, minimum)
    assert isinstance(value, int)
    if value & (value - 1):
        raise ValueError(f"{name} must be a power of two >= {minimum}, got {value}")
    return int(math.log2(value))


def check_image_input(
    x: torch.Tensor, channels: int, multiple: int, owner: str, exact_size: int | None = None
) -> None:
    """Validate a (N, C, H, W) image batch for ``owner`` (a network name used in the message)."""
    if x.dim() != 4:
        raise ValueError(f"{owner} input must be 4-D (N, C, H, W), got {x.dim()}-D of shape {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"{owner} input must have {channels} channels, got {x.shape[1]}")
    h, w = x.shape[-2], x.shape[-1]
    if exact_size is not None:
        if h != exact_size or w != exact_size:
            raise ValueError(f"{owner} input must be {exact_size}x{exact_size}, got {h}x{w}")
    elif h % multiple or w % multiple:
        raise ValueError(f"{owner} input height and width must be multiples of {multiple}, got {h}x{w}")
