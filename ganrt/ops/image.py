"""Image pre/post-processing: uint8 NHWC pictures <-> (N, C, H, W) tensors in [-1, 1].

``images_to_tensor``: ``x = v / 127.5 - 1`` (the reference's Normalize(mean 0.5, std 0.5) of ``v / 255``).
``tensor_to_images``: ``v = round_to_nearest(clamp((x + 1) * 127.5, 0, 255))``.

The upstream pytorch-CycleGAN-and-pix2pix code writes ``((x + 1) / 2 * 255).astype(uint8)``, which
truncates (biasing every pixel down by half a level on average, so a round trip of a uint8 image is not the
identity) and does not clamp (values beyond [-1, 1] hit an out-of-range float-to-uint8 cast, which wraps on
x86: -1.01 becomes 255). ganrt rounds and clamps, so ``tensor_to_images(images_to_tensor(v)) == v`` and
out-of-range generator outputs saturate.

Registered as ``ganrt::images_to_tensor`` and ``ganrt::tensor_to_images``. Neither is differentiable (uint8
on one side), so no autograd formula is registered; they run before/after the network, not inside it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganrt.ops._common import (
    DTYPE_CODES,
    check_device,
    check_float,
    check_rank4,
    dtype_name,
    eager_fast_path,
    run_kernel,
)

__all__ = [
    "images_to_tensor",
    "images_to_tensor_into",
    "images_to_tensor_ref",
    "tensor_to_images",
    "tensor_to_images_into",
    "tensor_to_images_ref",
]

# CPU image kernels are float32 only; CUDA ones take the three GPU float types.
_IMAGE_FLOATS: dict[str, tuple[torch.dtype, ...]] = {
    "cpu": (torch.float32,),
    "cuda": (torch.float32, torch.float16, torch.bfloat16),
}


def _check_images(images: Tensor, dtype: torch.dtype) -> None:
    kind = check_device("images", images)
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8, got {dtype_name(images.dtype)}")
    if images.dim() != 4:
        raise ValueError(f"images must be 4-D (N, H, W, C), got {images.dim()}-D")
    if dtype not in _IMAGE_FLOATS[kind]:
        allowed = ", ".join(dtype_name(d) for d in _IMAGE_FLOATS[kind])
        raise TypeError(f"dtype must be one of {allowed} on {kind.upper()}, got {dtype_name(dtype)}")


def _check_pair(src: Tensor, dst: Tensor, want: tuple[int, ...], what: str) -> None:
    if dst.device != src.device:
        raise ValueError(f"{what}: out must be on the device of the input ({src.device}), got {dst.device}")
    if tuple(dst.shape) != want:
        raise ValueError(f"{what}: out must have shape {want}, got {tuple(dst.shape)}")
    if not dst.is_contiguous():
        raise ValueError(f"{what}: out must be contiguous")


def images_to_tensor_into(images: Tensor, out: Tensor, *, threads: int | None = None) -> Tensor:
    """:func:`images_to_tensor` into a caller-owned (preallocated) ``out``; returns ``out``.

    Args:
        images: uint8 (N, H, W, C) on CPU or CUDA.
        out: contiguous (N, C, H, W) floating tensor on the same device. A dtype the device's kernel does not
            write (e.g. float16 on CPU) goes through a float32 scratch tensor.
        threads: CPU threads for the kernel (default ``torch.get_num_threads()``).
    """
    n, h, w, c = images.shape if images.dim() == 4 else (0, 0, 0, 0)
    kind = check_device("out", out)
    if not out.is_floating_point():
        raise TypeError(f"images_to_tensor_into: out must be floating point, got {dtype_name(out.dtype)}")
    if out.dtype not in _IMAGE_FLOATS[kind]:
        if not out.is_contiguous():
            raise ValueError("images_to_tensor_into: out must be contiguous")
        scratch = torch.empty(out.shape, dtype=torch.float32, device=out.device)
        images_to_tensor_into(images, scratch, threads=threads)
        return out.copy_(scratch)
    _check_images(images, out.dtype)
    _check_pair(images, out, (n, c, h, w), "images_to_tensor_into")
    src = images.contiguous()
    if out.numel() > 0:
        run_kernel(
            "images_to_tensor", images, DTYPE_CODES[out.dtype], src.data_ptr(), out.data_ptr(), n, h, w, c,
            threads=threads,
        )  # fmt: skip
    return out


def _images_to_tensor_impl(images: Tensor, dtype: torch.dtype) -> Tensor:
    _check_images(images, dtype)
    n, h, w, c = images.shape
    return images_to_tensor_into(images, torch.empty((n, c, h, w), dtype=dtype, device=images.device))


@torch.library.custom_op("ganrt::images_to_tensor", mutates_args=())
def _images_to_tensor(images: Tensor, dtype: torch.dtype) -> Tensor:
    """images: uint8 (N, H, W, C) -> (N, C, H, W) of dtype, contiguous, values v / 127.5 - 1."""
    return _images_to_tensor_impl(images, dtype)


@_images_to_tensor.register_fake
def _images_to_tensor_fake(images: Tensor, dtype: torch.dtype) -> Tensor:
    _check_images(images, dtype)
    n, h, w, c = images.shape
    return images.new_empty((n, c, h, w), dtype=dtype)


def _check_tensor(x: Tensor) -> None:
    check_float("x", x, _IMAGE_FLOATS)
    check_rank4("x", x)


def tensor_to_images_into(x: Tensor, out: Tensor, *, threads: int | None = None) -> Tensor:
    """:func:`tensor_to_images` into a caller-owned (preallocated) ``out``; returns ``out``.

    Args:
        x: (N, C, H, W) floating tensor on CPU or CUDA; dtypes the device's kernel does not read are converted
            to float32 first.
        out: contiguous uint8 (N, H, W, C) on the same device.
        threads: CPU threads for the kernel (default ``torch.get_num_threads()``).
    """
    kind = check_device("x", x)
    if not x.is_floating_point():
        raise TypeError(f"tensor_to_images_into: x must be floating point, got {dtype_name(x.dtype)}")
    if x.dtype not in _IMAGE_FLOATS[kind]:
        x = x.to(torch.float32)
    _check_tensor(x)
    if out.dtype != torch.uint8:
        raise TypeError(f"tensor_to_images_into: out must be uint8, got {dtype_name(out.dtype)}")
    n, c, h, w = x.shape
    _check_pair(x, out, (n, h, w, c), "tensor_to_images_into")
    src = x.contiguous()
    if out.numel() > 0:
        run_kernel(
            "tensor_to_images", x, DTYPE_CODES[x.dtype], src.data_ptr(), out.data_ptr(), n, c, h, w,
            threads=threads,
        )  # fmt: skip
    return out


def _tensor_to_images_impl(x: Tensor) -> Tensor:
    _check_tensor(x)
    n, c, h, w = x.shape
    return tensor_to_images_into(x, torch.empty((n, h, w, c), dtype=torch.uint8, device=x.device))


@torch.library.custom_op("ganrt::tensor_to_images", mutates_args=())
def _tensor_to_images(x: Tensor) -> Tensor:
    """x: (N, C, H, W) -> uint8 (N, H, W, C), contiguous."""
    return _tensor_to_images_impl(x)


@_tensor_to_images.register_fake
def _tensor_to_images_fake(x: Tensor) -> Tensor:
    _check_tensor(x)
    n, c, h, w = x.shape
    return x.new_empty((n, h, w, c), dtype=torch.uint8)


def images_to_tensor(images: Tensor, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """uint8 pictures to network input.

    Args:
        images: uint8 (N, H, W, C) on CPU or CUDA, any layout.
        dtype: float32 on CPU; float32|float16|bfloat16 on CUDA.

    Returns:
        (N, C, H, W) tensor of ``dtype`` with values ``v / 127.5 - 1`` in [-1, 1], contiguous.
    """
    if eager_fast_path(images):
        return _images_to_tensor_impl(images, dtype)
    return torch.ops.ganrt.images_to_tensor(images, dtype)


def tensor_to_images(x: Tensor) -> Tensor:
    """Network output to uint8 pictures, clamped to [0, 255] and rounded to nearest (see module docstring).

    Args:
        x: (N, C, H, W) float32 (float64 is converted) on CPU; float32|float16|bfloat16 on CUDA.

    Returns:
        uint8 (N, H, W, C), contiguous.
    """
    if x.device.type == "cpu" and x.dtype == torch.float64:
        # float32 holds every (x + 1) * 127.5 closely enough to decide the nearest of 256 levels.
        x = x.float()
    if eager_fast_path(x):
        return _tensor_to_images_impl(x)
    return torch.ops.ganrt.tensor_to_images(x)


def images_to_tensor_ref(images: Tensor, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """Pure-PyTorch reference of :func:`images_to_tensor` (computed in float32, then cast)."""
    return (images.permute(0, 3, 1, 2).to(torch.float32) / 127.5 - 1.0).to(dtype).contiguous()


def tensor_to_images_ref(x: Tensor) -> Tensor:
    """Pure-PyTorch reference of :func:`tensor_to_images` (computed in float64 from x)."""
    v = ((x.to(torch.float64) + 1.0) * 127.5).clamp(0.0, 255.0).round()
    return v.to(torch.uint8).permute(0, 2, 3, 1).contiguous()
