"""Central skipping of hardware-bound tests (CUDA, TensorRT, a CPU with native bf16): nothing touches CUDA at
import or collection time."""

from __future__ import annotations

import functools

import pytest


@functools.cache
def _cuda_reason() -> str | None:
    from ganrt import _C

    if not _C.cuda_compiled:
        return "ganrt._C was built without CUDA kernels (GANRT_CUDA=OFF or no nvcc at build time)"
    if _C.cuda_device_count() == 0:
        return "no CUDA device visible to the CUDA runtime"
    import torch

    if not torch.cuda.is_available():
        return "this torch build has no CUDA support (CPU wheel)"
    return None


@functools.cache
def _tensorrt_reason() -> str | None:
    # Building and running engines needs a GPU and TensorRT, not ganrt's own CUDA kernels.
    from ganrt import _C

    if _C.cuda_compiled and _C.cuda_device_count() == 0:
        return "no CUDA device visible to the CUDA runtime"
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "TensorRT is not installed (pip install tensorrt on a machine with a CUDA GPU)"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device visible to torch (TensorRT tests move data with torch.cuda)"
    return None


@functools.cache
def _bf16_reason() -> str | None:
    import torch

    from ganrt.train.precision import device_support

    support = device_support(torch.device("cpu"))
    if support.bf16:
        return None
    return f"this CPU has {support.detail}: bf16 training needs AMX-BF16 or AVX512_BF16"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("tensorrt"):
        reason = _tensorrt_reason()
    elif item.get_closest_marker("cuda"):
        reason = _cuda_reason()
    elif item.get_closest_marker("bf16"):
        reason = _bf16_reason()
    else:
        return
    if reason:
        pytest.skip(reason)
