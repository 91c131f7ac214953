"""uint8 <-> normalized tensors through ganrt's fused kernels, written into caller-owned (preallocated)
buffers.

The kernels (contract 1, ``ganrt._C``) take raw addresses, so the runtime keeps one set of buffers per shape
and never allocates on the hot path. CPU kernels take float32 (other graph dtypes go through a float32 scratch
tensor); CUDA kernels take float32, float16 and bfloat16 and run on the runner's stream.
"""

from __future__ import annotations

import torch

_DTYPE_CODES = {torch.float32: 0, torch.float64: 1, torch.float16: 2, torch.bfloat16: 3}
_CUDA_DTYPES = {torch.float32, torch.float16, torch.bfloat16}


def _kernel_dtype_ok(tensor: torch.Tensor) -> bool:
    if tensor.device.type == "cuda":
        return tensor.dtype in _CUDA_DTYPES
    return tensor.dtype == torch.float32


def images_to_tensor_into(src: torch.Tensor, dst: torch.Tensor, *, stream: int = 0, threads: int = 1) -> None:
    """uint8 ``src`` (N, H, W, C) -> ``dst`` (N, C, H, W) = src / 127.5 - 1, both contiguous on one device."""
    from ganrt import _C

    if not _kernel_dtype_ok(dst):
        scratch = torch.empty(dst.shape, dtype=torch.float32, device=dst.device)
        images_to_tensor_into(src, scratch, stream=stream, threads=threads)
        dst.copy_(scratch)
        return
    n, h, w, c = src.shape
    _C.images_to_tensor(
        src.device.type, _DTYPE_CODES[dst.dtype], src.data_ptr(), dst.data_ptr(), n, h, w, c, stream, threads
    )


def tensor_to_images_into(src: torch.Tensor, dst: torch.Tensor, *, stream: int = 0, threads: int = 1) -> None:
    """``src`` (N, C, H, W) in [-1, 1] -> uint8 ``dst`` (N, H, W, C), clamped and rounded to nearest."""
    from ganrt import _C

    if not _kernel_dtype_ok(src):
        src = src.to(torch.float32)
    n, c, h, w = src.shape
    _C.tensor_to_images(
        src.device.type, _DTYPE_CODES[src.dtype], src.data_ptr(), dst.data_ptr(), n, c, h, w, stream, threads
    )
