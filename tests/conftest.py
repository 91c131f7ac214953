"""Central skipping of hardware-bound tests: nothing touches CUDA at import or collection time."""

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


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("tensorrt"):
        reason = _tensorrt_reason()
    elif item.get_closest_marker("cuda"):
        reason = _cuda_reason()
    else:
        return
    if reason:
        pytest.skip(reason)
