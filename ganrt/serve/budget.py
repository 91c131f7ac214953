"""A byte budget on decoded images in flight: the server's memory is bounded by what it admits, not only by
the queue length (one 4096 x 4096 upload costs about 400 MB once decoded and run through a model).

A request reserves its cost from the image's declared size (its header; no pixel decompressed) before it is
decoded, and returns it when its answer is encoded. A reservation that does not fit next to those in flight
is refused with 503 + Retry-After; one larger than the whole budget with 413. Used from the event loop and
worker threads alike, so it takes a lock.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

# Bytes a decoded pixel costs while a /v1 translate request is in flight: the decoded uint8 image, the model's
# float32 input and output tensors, the uint8 result and its PNG encoding (measured: a 4096 x 4096 RGB upload
# raised the server's peak memory by about 400 MB, i.e. 24 bytes per pixel).
BYTES_PER_PIXEL = 24


class BudgetExceeded(Exception):
    """The reservation does not fit now (``permanent`` False: retry later) or ever (``permanent`` True)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class MemoryBudget:
    """At most ``limit_bytes`` reserved at once."""

    def __init__(self, limit_bytes: int, *, option: str = "--max-inflight-mb") -> None:
        if limit_bytes < 1:
            raise ValueError(f"limit_bytes must be >= 1, got {limit_bytes}")
        self.limit = limit_bytes
        self.option = option
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    @contextlib.contextmanager
    def hold(self, nbytes: int, what: str = "this request") -> Iterator[None]:
        """Reserve ``nbytes`` for the block; raises :class:`BudgetExceeded` when they do not fit."""
        mib = nbytes / 2**20
        if nbytes > self.limit:
            raise BudgetExceeded(
                f"{what} needs about {mib:.0f} MiB in flight, more than the server's whole budget of "
                f"{self.limit / 2**20:.0f} MiB ({self.option}); send a smaller image",
                permanent=True,
            )
        with self._lock:
            if self._used + nbytes > self.limit:
                raise BudgetExceeded(
                    f"the server is at its memory budget for images in flight ({self.limit / 2**20:.0f} MiB, "
                    f"{self.option}; {what} needs about {mib:.0f} MiB); retry later",
                    permanent=False,
                )
            self._used += nbytes
        try:
            yield
        finally:
            with self._lock:
                self._used -= nbytes
