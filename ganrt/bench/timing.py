"""The interleaved timing loop shared by ``ganrt bench``'s quick comparisons, ``benchmarks/`` and the demo.

Every variant runs once per round and the order rotates every round, so drift on a shared, noisy machine
(other processes, frequency changes) hits all variants alike and their ratios hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any


def calibrate(fn: Callable[[], Any], min_sample_s: float, clock: Callable[[], float] = time.perf_counter) -> int:
    """Calls per timed sample so that one sample of a fast function lasts at least ``min_sample_s`` (timer
    resolution and call overhead then stay small against it)."""
    for _ in range(3):
        fn()
    start = clock()
    fn()
    once = max(clock() - start, 1e-7)
    return max(1, int(min_sample_s / once + 0.5))


def interleaved(
    variants: Mapping[str, Callable[[], Any]],
    *,
    seconds: float | None = None,
    rounds: int | None = None,
    min_rounds: int = 5,
    warmup: int = 2,
    repeat: Mapping[str, int] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    on_round: Callable[[int], None] | None = None,
    settle_s: float = 0.0,
) -> dict[str, list[float]]:
    """Seconds per call of each variant, one sample per round: ``{name: [seconds, ...]}``.

    Each variant is first called ``warmup`` times untimed (arenas, thread pools, first-call allocations). Then
    rounds run until ``rounds`` are done, or until ``seconds`` have passed and at least ``min_rounds`` ran
    (with both given, whichever comes first after ``min_rounds``). A sample times ``repeat[name]`` calls in a
    row (default 1; see :func:`calibrate`) and records their mean. ``clock`` is the time source
    (``time.thread_time`` for CPU time). ``on_round(i)`` is called after round ``i`` (progress bars).
    ``settle_s``: untimed idle time before each sample. Backends with their own thread pools (ONNX Runtime,
    OpenVINO) leave workers spinning for milliseconds after a call; on few cores the next variant's threads
    then wait for those cores, so without a pause each variant is charged for its predecessor's spinning
    (measured on 2 cores: OpenVINO 0.42 ms alone, 5.1 ms right after ONNX Runtime, on a 32x32 U-Net).
    """
    if not variants:
        raise ValueError("interleaved() needs at least one variant")
    if seconds is None and rounds is None:
        raise ValueError("interleaved() needs seconds= or rounds=")
    if min_rounds < 1 or warmup < 0 or (rounds is not None and rounds < 1):
        raise ValueError(f"need rounds >= 1, min_rounds >= 1 and warmup >= 0, got {rounds}, {min_rounds}, {warmup}")
    if not settle_s >= 0:
        raise ValueError(f"settle_s must be >= 0 seconds, got {settle_s}")
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    start = time.perf_counter()
    r = 0
    while True:
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            fn, calls = variants[name], (repeat or {}).get(name, 1)
            if settle_s:
                time.sleep(settle_s)
            t0 = clock()
            for _ in range(calls):
                fn()
            times[name].append((clock() - t0) / calls)
        r += 1
        if on_round is not None:
            on_round(r)
        if rounds is not None and r >= rounds:
            break
        if seconds is not None and r >= min_rounds and time.perf_counter() - start >= seconds:
            break
    return times
