"""Server limits shared by the embedded server and the PyTriton backend (no web-framework imports here)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """Limits of ``ganrt serve``; its CLI flags map onto these fields.

    ``max_batch`` rows per model call, ``max_delay_ms`` longest wait for batch partners, ``max_queue``
    requests waiting per model before 503, ``timeout_s`` per request (body upload, and queue + inference),
    ``max_body_bytes`` per request body (after decompression), ``max_pixels`` per decoded image,
    ``max_sample`` images per ``/v1 sample``, ``max_connections`` open at once (beyond it uvicorn answers
    503; memory for request bodies stays below about ``max_connections * max_body_bytes``),
    ``max_inflight_bytes`` for decoded images in flight (:mod:`ganrt.serve.budget`: beyond it 503), ``ui``
    serves the web page at ``/`` (:mod:`ganrt.serve.ui`).
    """

    max_batch: int = 8
    max_delay_ms: float = 2.0
    max_queue: int = 256
    timeout_s: float = 30.0
    max_body_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    max_sample: int = 64
    max_connections: int = 1024
    max_inflight_bytes: int = 1024 * 1024 * 1024
    retry_after_s: int = 1
    ui: bool = True

    def __post_init__(self) -> None:
        positive = (
            "max_batch",
            "max_queue",
            "max_body_bytes",
            "max_pixels",
            "max_sample",
            "max_connections",
            "max_inflight_bytes",
            "retry_after_s",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (math.isfinite(self.max_delay_ms) and self.max_delay_ms >= 0):
            raise ValueError(f"max_delay_ms must be a finite number >= 0, got {self.max_delay_ms}")
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ValueError(f"timeout_s must be a finite number > 0, got {self.timeout_s}")


def is_batchable(model: Any) -> bool:
    """Every input and output of ``model`` has a dynamic leading (batch) dimension, so requests
    concatenate."""
    return all(len(s.shape) >= 1 and s.shape[0] == -1 for s in [*model.inputs, *model.outputs])
