"""Memory per backend while several backends share one process.

Host: Linux keeps the process's peak resident set (``VmHWM``) and lets a process reset it by writing ``5``
to ``/proc/self/clear_refs``; resetting before each stretch of one backend's work and reading afterwards gives
the peak of that stretch exactly, with no sampling thread competing for the cores being measured. Elsewhere
the RSS is read with psutil at the end of each stretch (a lower bound on the peak; ``method`` says which).

Because all backends stay loaded side by side, a backend's footprint is reported as what loading it added
(``load_mb``: RSS after load + first inference minus RSS before) plus the largest transient rise while it ran
(``working_mb``: peak of a stretch minus RSS at its start). ``peak_rss_mb`` is the absolute process peak seen
while the backend ran, other backends included. CUDA memory follows the same scheme with torch's allocator
counters (torch modules and the TensorRT runner's buffers) and adds ``cuda_device_used_mb`` (driver free vs
total), which also sees ONNX Runtime's arena and TensorRT's own allocations.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

_MB = 1024 * 1024


def _read_hwm_kb() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


class BackendMemory:
    """One backend's memory figures, accumulated over the stretches of work it runs in.

    Wrap the load + first inference in ``track(load=True)`` and every later stretch in ``track()``.
    """

    def __init__(self, *, cuda: bool) -> None:
        import psutil

        self._process = psutil.Process()
        self._cuda = cuda
        self.method = "VmHWM" if _read_hwm_kb() is not None and _reset_hwm() else "psutil-rss"
        self.load_mb = 0.0
        self.working_mb = 0.0
        self.peak_rss_mb = 0.0
        self.cuda_load_mb = 0.0
        self.cuda_working_mb = 0.0
        self.cuda_device_used_mb = 0.0

    def _rss_mb(self) -> float:
        return self._process.memory_info().rss / _MB

    def _peak_mb(self, fallback: float) -> float:
        if self.method == "VmHWM":
            hwm = _read_hwm_kb()
            if hwm is not None:
                return max(hwm / 1024, fallback)
        return fallback

    @contextlib.contextmanager
    def track(self, *, load: bool = False) -> Iterator[None]:
        """Record the enclosed work's figures (also when it raises)."""
        if self._cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            cuda_start = torch.cuda.memory_allocated() / _MB
        start = self._rss_mb()
        if self.method == "VmHWM":
            _reset_hwm()
        try:
            yield
        finally:
            end = self._rss_mb()
            peak = self._peak_mb(end)
            self.peak_rss_mb = max(self.peak_rss_mb, peak)
            if load:
                self.load_mb = max(end - start, 0.0)
                self.working_mb = max(self.working_mb, peak - end)
            else:
                self.working_mb = max(self.working_mb, peak - start)
            if self._cuda:
                import torch

                torch.cuda.synchronize()
                cuda_end = torch.cuda.memory_allocated() / _MB
                cuda_peak = torch.cuda.max_memory_allocated() / _MB
                free, total = torch.cuda.mem_get_info()
                self.cuda_device_used_mb = max(self.cuda_device_used_mb, (total - free) / _MB)
                if load:
                    self.cuda_load_mb = max(cuda_end - cuda_start, 0.0)
                    self.cuda_working_mb = max(self.cuda_working_mb, cuda_peak - cuda_end)
                else:
                    self.cuda_working_mb = max(self.cuda_working_mb, cuda_peak - cuda_start)

    def result(self) -> dict[str, Any]:
        """Figures in MiB: ``method``, ``load_mb``, ``working_mb``, ``footprint_mb`` (their sum),
        ``peak_rss_mb`` and, on CUDA, ``cuda_load_mb``, ``cuda_working_mb``, ``cuda_footprint_mb``,
        ``cuda_device_used_mb``."""
        out: dict[str, Any] = {
            "method": self.method,
            "load_mb": round(self.load_mb, 1),
            "working_mb": round(self.working_mb, 1),
            "footprint_mb": round(self.load_mb + self.working_mb, 1),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
        }
        if self._cuda:
            out["cuda_load_mb"] = round(self.cuda_load_mb, 1)
            out["cuda_working_mb"] = round(self.cuda_working_mb, 1)
            out["cuda_footprint_mb"] = round(self.cuda_load_mb + self.cuda_working_mb, 1)
            out["cuda_device_used_mb"] = round(self.cuda_device_used_mb, 1)
        return out
