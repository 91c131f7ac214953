"""Prometheus metrics in the text exposition format (version 0.0.4), with no client library.

Three metric kinds, each a family of labelled series: counters, histograms (cumulative ``_bucket{le=...}``,
``_sum``, ``_count``) and gauges read at scrape time from a callback (queue depth is the batcher's state, not
a number to keep in sync). Updates take a lock because the model worker threads and the event loop both
record.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# request latency: sub-millisecond health checks up to multi-second batches of 256x256 translations
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt_labels(labels: Labels, extra: tuple[str, str] | None = None) -> str:
    items = list(labels) + ([extra] if extra else [])
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}"


def _fmt_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class _Family:
    def __init__(self, name: str, help_text: str, kind: str, label_names: Sequence[str]) -> None:
        self.name = name
        self.help = help_text
        self.kind = kind
        self.label_names = tuple(label_names)

    def _key(self, labels: dict[str, str]) -> Labels:
        if set(labels) != set(self.label_names):
            raise ValueError(f"metric {self.name} takes labels {self.label_names}, got {tuple(labels)}")
        return tuple((k, str(labels[k])) for k in self.label_names)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Family):
    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, "counter", label_names)
        self._values: dict[Labels, float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return self.header() + [f"{self.name}{_fmt_labels(k)} {_fmt_value(v)}" for k, v in items]


class Histogram(_Family):
    def __init__(
        self, name: str, help_text: str, label_names: Sequence[str], buckets: Iterable[float]
    ) -> None:
        super().__init__(name, help_text, "histogram", label_names)
        self.buckets = tuple(sorted(buckets))
        # per series: [count per bucket (non-cumulative, last = +Inf), sum]
        self._series: dict[Labels, tuple[list[int], list[float]]] = {}
        self._lock = threading.Lock()

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        index = bisect.bisect_left(self.buckets, value)
        with self._lock:
            counts, total = self._series.setdefault(key, ([0] * (len(self.buckets) + 1), [0.0]))
            counts[index] += 1
            total[0] += value

    def counts(self, **labels: str) -> dict[float, int]:
        """Non-cumulative observation count per bucket upper bound (``math.inf`` last)."""
        with self._lock:
            counts, _ = self._series.get(self._key(labels), ([0] * (len(self.buckets) + 1), [0.0]))
            return dict(zip((*self.buckets, math.inf), list(counts), strict=True))

    def render(self) -> list[str]:
        lines = self.header()
        with self._lock:
            items = sorted((k, (list(c), t[0])) for k, (c, t) in self._series.items())
        for key, (counts, total) in items:
            running = 0
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                running += count
                lines.append(f"{self.name}_bucket{_fmt_labels(key, ('le', _fmt_value(bound)))} {running}")
            lines.append(f"{self.name}_sum{_fmt_labels(key)} {_fmt_value(total)}")
            lines.append(f"{self.name}_count{_fmt_labels(key)} {running}")
        return lines


class Gauge(_Family):
    """A gauge whose series are read from ``callback() -> {labels: value}`` at scrape time."""

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str],
        callback: Callable[[], dict[Labels, float]],
    ) -> None:
        super().__init__(name, help_text, "gauge", label_names)
        self._callback = callback

    def render(self) -> list[str]:
        items = sorted(self._callback().items())
        return self.header() + [f"{self.name}{_fmt_labels(k)} {_fmt_value(v)}" for k, v in items]


class ServerMetrics:
    """The metrics ``ganrt serve`` exports on ``GET /metrics``."""

    def __init__(
        self, queue_depths: Callable[[], dict[str, int]], in_flight: Callable[[], dict[str, int]]
    ) -> None:
        self.requests = Counter(
            "ganrt_requests_total",
            "HTTP requests answered, by model, endpoint and status code.",
            ("model", "endpoint", "code"),
        )
        self.latency = Histogram(
            "ganrt_request_duration_seconds",
            "Time from receiving a request to answering it, in seconds.",
            ("model", "endpoint"),
            LATENCY_BUCKETS,
        )
        self.batch_size = Histogram(
            "ganrt_batch_size", "Rows (batch dimension) per executed model call.", ("model",), BATCH_BUCKETS
        )
        self.batch_requests = Histogram(
            "ganrt_batch_requests", "Requests merged into one executed model call.", ("model",), BATCH_BUCKETS
        )
        self.compute = Histogram(
            "ganrt_inference_duration_seconds",
            "Time spent in one executed model call, in seconds.",
            ("model",),
            LATENCY_BUCKETS,
        )
        self.queue_wait = Histogram(
            "ganrt_queue_duration_seconds",
            "Time a request waited in the batching queue, in seconds.",
            ("model",),
            LATENCY_BUCKETS,
        )
        self.rejected = Counter(
            "ganrt_rejected_total",
            "Requests refused before inference, by reason (queue_full, timeout, draining, memory).",
            ("model", "reason"),
        )
        self.queue_depth = Gauge(
            "ganrt_queue_depth",
            "Requests waiting in the batching queue.",
            ("model",),
            lambda: {(("model", m),): float(v) for m, v in queue_depths().items()},
        )
        self.in_flight = Gauge(
            "ganrt_requests_in_flight",
            "Requests being processed (received, not yet answered).",
            ("model",),
            lambda: {(("model", m),): float(v) for m, v in in_flight().items()},
        )

    def render(self) -> str:
        families: list[_Family] = [
            self.requests,
            self.latency,
            self.batch_size,
            self.batch_requests,
            self.compute,
            self.queue_wait,
            self.rejected,
            self.queue_depth,
            self.in_flight,
        ]
        lines: list[str] = []
        for family in families:
            lines.extend(family.render())  # type: ignore[attr-defined]
        return "\n".join(lines) + "\n"
