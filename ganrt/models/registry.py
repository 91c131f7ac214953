"""``build_net(spec)``: networks from the JSON-able specs stored in run directories.

A spec is ``{"arch": NAME, **constructor kwargs}``; every network records its own spec as ``module.spec``, so
``build_net(net.spec)`` rebuilds it. Architectures:

=================================  =====================================================
``unet_64`` / ``unet_128`` / ``unet_256``  :class:`UnetGenerator` with 6 / 7 / 8 downsamplings
``resnet_6blocks`` / ``resnet_9blocks``    :class:`ResnetGenerator`
``patchgan``                               :class:`NLayerDiscriminator`
``vae``                                    :class:`VAE`
``dcgan_g`` / ``dcgan_d``                  :class:`DCGANGenerator` / :class:`DCGANDiscriminator`
=================================  =====================================================
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Any

from torch import nn

from ganrt.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganrt.models.patchgan import NLayerDiscriminator
from ganrt.models.resnet import ResnetGenerator
from ganrt.models.unet import MIN_DOWNS, UnetGenerator
from ganrt.models.vae import VAE

ARCHS: tuple[str, ...] = (
    "unet_64",
    "unet_128",
    "unet_256",
    "resnet_6blocks",
    "resnet_9blocks",
    "patchgan",
    "vae",
    "dcgan_g",
    "dcgan_d",
)
_FIXED: dict[str, type[nn.Module]] = {
    "patchgan": NLayerDiscriminator,
    "vae": VAE,
    "dcgan_g": DCGANGenerator,
    "dcgan_d": DCGANDiscriminator,
}


class SpecError(ValueError):
    """A network spec names an unknown architecture or carries arguments its constructor does not take."""


def _resolve(arch: str) -> tuple[type[nn.Module], dict[str, Any]]:
    """Constructor and the arguments implied by the architecture name."""
    if arch in _FIXED:
        return _FIXED[arch], {}
    m = re.fullmatch(r"unet_(\d+)", arch)
    if m:
        size = int(m.group(1))
        depth = size.bit_length() - 1
        if size == 2**depth and depth >= MIN_DOWNS:
            return UnetGenerator, {"num_downs": depth}
    m = re.fullmatch(r"resnet_(\d+)blocks", arch)
    if m:
        return ResnetGenerator, {"n_blocks": int(m.group(1))}
    raise SpecError(
        f"unknown architecture {arch!r}; known: {', '.join(ARCHS)} (also unet_<2**k>, k >= {MIN_DOWNS}, "
        "and resnet_<n>blocks)"
    )


def _kwargs(spec: Mapping[str, Any]) -> tuple[type[nn.Module], dict[str, Any]]:
    if not isinstance(spec, Mapping) or "arch" not in spec:
        raise SpecError(f"a network spec must be a mapping with an 'arch' key, got {spec!r}")
    arch = spec["arch"]
    if not isinstance(arch, str):
        raise SpecError(f"spec 'arch' must be a string, got {arch!r}")
    cls, implied = _resolve(arch)
    kwargs = {k: v for k, v in spec.items() if k != "arch"}
    for key, value in implied.items():
        if key in kwargs and kwargs[key] != value:
            raise SpecError(
                f"spec for {arch!r} has {key}={kwargs[key]!r}, but the architecture implies {value!r}"
            )
        kwargs[key] = value
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "fused"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise SpecError(
            f"spec for {arch!r} has unknown keys {unknown}; {cls.__name__} takes {sorted(accepted)}"
        )
    return cls, kwargs


def check_spec(spec: Mapping[str, Any]) -> None:
    """Raise :class:`SpecError` unless ``spec`` names a known architecture with arguments it accepts."""
    _kwargs(spec)


def build_net(spec: Mapping[str, Any], *, fused: bool = True) -> nn.Module:
    """Build a freshly initialized network from ``spec`` (see the module docstring).

    ``fused`` selects the fused kernels for the norm+activation sites.

    Invalid values (e.g. ``ngf=0``) raise the constructor's ``ValueError``/``TypeError``.
    """
    cls, kwargs = _kwargs(spec)
    return cls(**kwargs, fused=fused)
