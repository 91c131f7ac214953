"""Device strings and machine facts shared by the backends."""

from __future__ import annotations

import functools
import os


def parse_device(device: str) -> tuple[str, int]:
    """``"auto"`` -> ("auto", 0), ``"cpu"`` -> ("cpu", 0), ``"cuda"``/``"cuda:1"`` -> ("cuda", index)."""
    if not isinstance(device, str):
        raise TypeError(f"device must be a string ('auto', 'cpu', 'cuda' or 'cuda:<index>'), got {device!r}")
    if device in ("auto", "cpu"):
        return device, 0
    if device == "cuda":
        return "cuda", 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return "cuda", int(device[5:])
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got {device!r}")


def cuda_device_count() -> int:
    """CUDA devices usable through torch (the runtime's CUDA buffers, streams and graphs are torch's); 0 on a
    CPU build."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def require_cuda(index: int, *, what: str) -> None:
    """Raise a clear error when CUDA device ``index`` cannot be used for ``what``."""
    from ganrt.errors import BackendUnavailableError

    count = cuda_device_count()
    if count == 0:
        import torch

        reason = (
            "this torch build has no CUDA support (CPU wheel)"
            if torch.version.cuda is None
            else "no CUDA device is visible"
        )
        raise BackendUnavailableError(f"{what} needs a CUDA device, but {reason}")
    if index >= count:
        raise BackendUnavailableError(
            f"{what}: device cuda:{index} requested, but only {count} CUDA device(s) are visible"
        )


@functools.cache
def physical_cores() -> int:
    """Physical cores this process may run on: more intra-op threads only contend for the same cores."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or allowed
    except ImportError:
        physical = allowed
    # A container may see the host's cores but be allowed only a few of them; hyper-threads share a core.
    logical = os.cpu_count() or allowed
    per_core = max(1, logical // max(1, physical))
    return max(1, min(physical, allowed // per_core if allowed >= per_core else allowed))


@functools.cache
def cpu_flags() -> frozenset[str] | None:
    """The CPU feature flags the kernel reports (``/proc/cpuinfo``: ``avx512_bf16``, ``amx_bf16``, ...);
    ``None`` where the operating system does not say (non-Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


@functools.cache
def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo``), else :func:`platform.processor`."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
