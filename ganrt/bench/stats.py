"""Latency statistics in the form trtexec and MLPerf report them.

Percentiles use linear interpolation between order statistics (numpy's default), which keeps
``min <= median <= p90 <= p95 <= p99 <= max`` for any sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

PERCENTILES: tuple[tuple[str, float], ...] = (("median", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0))
# Points of the latency-vs-percentile curve kept in the JSON (raw samples can number tens of thousands).
CURVE_POINTS: tuple[float, ...] = tuple(float(p) for p in range(101))


def latency_stats(seconds: Sequence[float], *, batch: int) -> dict[str, Any]:
    """Summarise per-call latencies.

    Args:
        seconds: wall time of each timed call, in seconds (at least one).
        batch: samples per call, for throughput.

    Returns:
        ``{"n", "min_ms", "mean_ms", "median_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "std_ms", "cv",
        "throughput_sps", "total_s", "curve_ms"}``; ``cv`` is std/mean (population std), ``throughput_sps`` is
        samples per second over the measured calls (``batch * n / total``), ``curve_ms`` the latency at each
        integer percentile 0..100.
    """
    if len(seconds) == 0:
        raise ValueError("latency_stats needs at least one sample, got 0")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    if not np.all(np.isfinite(ms)) or np.any(ms < 0):
        raise ValueError("latencies must be finite and non-negative")
    mean = float(ms.mean())
    std = float(ms.std())
    total_s = float(ms.sum()) / 1e3
    stats: dict[str, Any] = {
        "n": int(ms.size),
        "min_ms": float(ms.min()),
        "mean_ms": mean,
    }
    for name, q in PERCENTILES:
        stats[f"{name}_ms"] = float(np.percentile(ms, q))
    stats["max_ms"] = float(ms.max())
    stats["std_ms"] = std
    stats["cv"] = std / mean if mean > 0 else 0.0
    stats["throughput_sps"] = batch * ms.size / total_s if total_s > 0 else float("inf")
    stats["total_s"] = total_s
    stats["curve_ms"] = [float(v) for v in np.percentile(ms, CURVE_POINTS)]
    return stats


def phase_stats(phases: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Mean and median per phase (``pre``, ``h2d``, ``compute``, ``d2h``, ``post``), in milliseconds."""
    out = {}
    for name, values in phases.items():
        if values:
            ms = np.asarray(values, dtype=np.float64) * 1e3
            out[name] = {"mean_ms": float(ms.mean()), "median_ms": float(np.median(ms))}
    return out
