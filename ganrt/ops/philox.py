"""Counter-based standard normal numbers: Philox4x32-10 + Box-Muller, identical on CPU and CUDA.

Element ``i`` of a call uses the global index ``g = offset + i``: Philox counter ``g // 4`` (a 128-bit
counter, low 64 bits used), key ``seed`` (low 32 bits, high 32 bits), output lane ``g % 4``; lanes (0, 1) and
(2, 3) are Box-Muller pairs. Hence
``standard_normal(n, seed=s, offset=k) == standard_normal(n + k, seed=s)[k:]``
element-wise (row-major), and the same ``(seed, offset)`` gives the same numbers on every device and thread
count, which ``torch.randn`` does not promise.

Registered as ``ganrt::standard_normal``. Operator schemas carry int64, so the 64-bit ``seed``/``offset``
cross the dispatcher in two's complement and are turned back into uint64 before they reach the kernel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ganrt.ops._common import (
    DTYPE_CODES,
    FLOAT_DTYPES,
    check_u64,
    dtype_name,
    eager_fast_path,
    i64_to_u64,
    run_kernel,
    u64_to_i64,
)

__all__ = ["philox4x32_10_ref", "standard_normal", "standard_normal_ref"]


def check_offset_range(numel: int, offset: int) -> None:
    """The stream positions ``offset .. offset + numel`` must stay below 2**64 (no silent wrap-around)."""
    if offset + numel >= 1 << 64:
        raise ValueError(f"offset + numel must be < 2**64 (Philox index space), got {offset} + {numel}")


def _check(shape: Sequence[int], dtype: torch.dtype, device: torch.device) -> None:
    if device.type not in FLOAT_DTYPES:
        raise ValueError(f"device must be a CPU or CUDA device, got {device}")
    if dtype not in FLOAT_DTYPES[device.type]:
        allowed = ", ".join(dtype_name(d) for d in FLOAT_DTYPES[device.type])
        raise TypeError(f"dtype must be one of {allowed} on {device.type.upper()}, got {dtype_name(dtype)}")
    if any(s < 0 for s in shape):
        raise ValueError(f"shape must have non-negative sizes, got {tuple(shape)}")


def _impl(shape: Sequence[int], seed: int, offset: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    _check(shape, dtype, device)
    out = torch.empty(tuple(shape), dtype=dtype, device=device)
    seed_u, offset_u = i64_to_u64(seed), i64_to_u64(offset)
    check_offset_range(out.numel(), offset_u)
    if out.numel() > 0:
        run_kernel("standard_normal", out, DTYPE_CODES[dtype], out.data_ptr(), out.numel(), seed_u, offset_u)
    return out


@torch.library.custom_op("ganrt::standard_normal", mutates_args=())
def _standard_normal(
    shape: Sequence[int], seed: int, offset: int, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """shape -> Tensor of N(0, 1) numbers; seed/offset are int64 two's-complement views of uint64."""
    return _impl(shape, seed, offset, dtype, device)


@_standard_normal.register_fake
def _standard_normal_fake(
    shape: Sequence[int], seed: int, offset: int, dtype: torch.dtype, device: torch.device
) -> Tensor:
    _check(shape, dtype, device)
    return torch.empty(tuple(shape), dtype=dtype, device=device)


def standard_normal(
    shape: int | Sequence[int],
    *,
    seed: int,
    offset: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Reproducible N(0, 1) samples from Philox4x32-10 + Box-Muller.

    Args:
        shape: output shape (an int for 1-D).
        seed: Philox key, an int in [0, 2**64 - 1].
        offset: index of the first element in the stream of ``seed``; offset + numel < 2**64.
        dtype: float32|float64 on CPU, float32|float16|bfloat16 on CUDA.
        device: "cpu", "cuda", "cuda:1", ...

    Returns:
        Tensor of ``shape``, contiguous. Element i (row-major) is normal number ``offset + i`` of ``seed``.
    """
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    check_u64("seed", seed)
    check_u64("offset", offset)
    args = (dims, u64_to_i64(seed), u64_to_i64(offset), dtype, torch.device(device))
    if eager_fast_path():
        return _impl(*args)
    return torch.ops.ganrt.standard_normal(*args)


# Philox4x32 round multipliers and Weyl key increments (Salmon et al., SC'11).
_PHILOX_M = (0xD2511F53, 0xCD9E8D57)
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32_10_ref(counter: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """Reference Philox4x32-10 in NumPy.

    Args:
        counter: (..., 4) integers < 2**32, word 0 least significant (Random123's convention).
        key: (low word, high word).

    Returns:
        (..., 4) uint64 array holding the four 32-bit outputs.
    """
    c = np.asarray(counter, dtype=np.uint64) & _MASK32
    c0, c1, c2, c3 = (c[..., i] for i in range(4))
    k0, k1 = np.uint64(key[0] & 0xFFFFFFFF), np.uint64(key[1] & 0xFFFFFFFF)
    m0, m1 = np.uint64(_PHILOX_M[0]), np.uint64(_PHILOX_M[1])
    for i in range(10):
        if i:
            k0 = (k0 + np.uint64(_PHILOX_W[0])) & _MASK32
            k1 = (k1 + np.uint64(_PHILOX_W[1])) & _MASK32
        p0 = m0 * c0  # a 32 x 32 -> 64-bit product, exact in uint64
        p1 = m1 * c2
        c0, c1, c2, c3 = (
            (p1 >> np.uint64(32)) ^ c1 ^ k0,
            p1 & _MASK32,
            (p0 >> np.uint64(32)) ^ c3 ^ k1,
            p0 & _MASK32,
        )
    return np.stack([c0, c1, c2, c3], axis=-1)


def standard_normal_ref(
    shape: int | Sequence[int], *, seed: int, offset: int = 0, dtype: torch.dtype = torch.float64
) -> Tensor:
    """NumPy/float64 reference of :func:`standard_normal` on CPU (slow; for tests).

    Box-Muller on the Philox words (a, b) of each pair: ``u = (a + 0.5) / 2**32``, ``t = b / 2**32``,
    lanes ``sqrt(-2 ln u) * cos(2 pi t)`` and ``sqrt(-2 ln u) * sin(2 pi t)``.
    """
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    numel = int(np.prod(dims, dtype=np.int64))
    first, last = offset // 4, (offset + numel + 3) // 4
    groups = np.arange(last - first, dtype=np.uint64) + np.uint64(first)
    counter = np.stack(
        [groups & _MASK32, groups >> np.uint64(32), np.zeros_like(groups), np.zeros_like(groups)], axis=-1
    )
    words = philox4x32_10_ref(counter, (seed & 0xFFFFFFFF, seed >> 32)).astype(np.float64)
    out = np.empty(words.shape, dtype=np.float64)
    for lane in (0, 2):
        radius = np.sqrt(-2.0 * np.log((words[:, lane] + 0.5) / 2.0**32))
        angle = 2.0 * np.pi * (words[:, lane + 1] / 2.0**32)
        out[:, lane] = radius * np.cos(angle)
        out[:, lane + 1] = radius * np.sin(angle)
    start = offset - first * 4
    flat = out.reshape(-1)[start : start + numel]
    return torch.from_numpy(flat.copy()).reshape(dims).to(dtype)
