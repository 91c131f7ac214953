"""Dynamic batching: concurrent requests for one model become one model call, run off the event loop.

One :class:`Batcher` per served model. Requests wait in a bounded queue; a single asyncio task takes the
oldest one and adds queued requests of the same kind and per-row signature (input names, dtypes and non-batch
dimensions) until the batch holds ``max_batch`` rows or ``max_delay_s`` has passed since the oldest arrived,
concatenates their inputs along dimension 0, runs the call on a worker thread of a free model instance (so the
event loop keeps accepting requests while the model computes), and hands every request its slice of the
outputs. With several instances (Triton's "instance group"), several batches run at once.

The delay is only spent when there is evidence of concurrent traffic (another request for the model in
flight, or the previous call merged several requests): a lone client is never made to wait for partners that
are not coming. Under load the queue fills while the instances compute, so the next call is large without any
waiting.

A full queue raises :class:`QueueFullError` (the server answers 503 with Retry-After) instead of growing; a
request whose deadline passes is dropped from the queue (or its result discarded when already running). If a
merged call fails, its requests are re-run one by one so one bad request cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ganrt.serve.metrics import ServerMetrics

Feeds = dict[str, np.ndarray]
# A model call: (model instance, feeds with the batch as dimension 0) -> outputs, batch as dimension 0.
Call = Callable[[Any, Feeds], Feeds]


class QueueFullError(Exception):
    """The model's queue holds ``max_queue`` requests already."""


class DrainingError(Exception):
    """The server is shutting down and accepts no new work."""


@dataclasses.dataclass(eq=False)
class _Job:
    future: asyncio.Future[Any]
    enqueued: float
    rows: int
    feeds: Feeds
    fn: Call
    mergeable: bool
    signature: tuple[Any, ...]


def _signature(kind: str, feeds: Feeds) -> tuple[Any, ...]:
    return (kind, *sorted((name, a.dtype.str, a.shape[1:]) for name, a in feeds.items()))


def _graph_call(model: Any, feeds: Feeds) -> Feeds:
    return model.infer(feeds)


class Batcher:
    """Queue, batch and execute requests for one model.

    Args:
        name: model name (metric label, worker thread names).
        instances: loaded copies of the model (``ganrt.runtime.Model``); each gets one worker thread and runs
            one call at a time, so ``len(instances)`` calls run concurrently.
        max_batch: most rows per merged call (1 disables merging).
        max_delay_s: longest time the oldest queued request waits for partners.
        max_queue: most requests waiting (not yet executing); beyond it :class:`QueueFullError`.
        batchable: False when the graph has no dynamic batch dimension; :meth:`infer` requests then run alone.
        metrics: where executed batch sizes, compute and queue times are recorded.
    """

    def __init__(
        self,
        name: str,
        instances: Sequence[Any],
        *,
        max_batch: int,
        max_delay_s: float,
        max_queue: int,
        batchable: bool = True,
        metrics: ServerMetrics | None = None,
    ) -> None:
        if not instances:
            raise ValueError("instances must hold at least one model")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        if max_delay_s < 0:
            raise ValueError(f"max_delay_s must be >= 0, got {max_delay_s}")
        self.name = name
        self.instances = list(instances)
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self.max_queue = max_queue
        self.batchable = batchable
        self._metrics = metrics
        self._queue: collections.deque[_Job] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._free: asyncio.Queue[int] | None = None
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._executors = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ganrt-serve-{name}-{i}")
            for i in range(len(self.instances))
        ]
        self._closing = False
        self._in_flight = 0
        self._last_merged = 1

    # ---- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the batching task on the running event loop."""
        if self._task is not None:
            raise RuntimeError(f"batcher {self.name!r} is already started")
        self._wake = asyncio.Event()
        self._free = asyncio.Queue()
        for index in range(len(self.instances)):
            self._free.put_nowait(index)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"ganrt-batcher-{self.name}")

    async def close(self) -> None:
        """Refuse new work, finish everything queued or running, then stop the worker threads."""
        self._closing = True
        if self._task is not None:
            assert self._wake is not None
            self._wake.set()
            await self._task
        if self._running:
            await asyncio.gather(*self._running)
        loop = asyncio.get_running_loop()
        for executor in self._executors:
            await loop.run_in_executor(None, executor.shutdown, True)

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def queue_depth(self) -> int:
        return sum(1 for job in self._queue if not job.future.done())

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """Count one request for this model as in flight (received, not yet answered) inside the block."""
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._wake is not None:
                self._wake.set()

    # ---- submitting ----------------------------------------------------------------------------------------
    def _enqueue(self, job: _Job) -> None:
        if self._closing:
            raise DrainingError(f"model {self.name!r} is shutting down")
        if self._task is None or self._wake is None:
            raise RuntimeError(f"batcher {self.name!r} is not started")
        if self.queue_depth >= self.max_queue:
            raise QueueFullError(f"model {self.name!r} has {self.max_queue} requests queued (--max-queue)")
        self._queue.append(job)
        self._wake.set()

    async def infer(self, feeds: Feeds, *, timeout_s: float | None) -> Feeds:
        """Run ``feeds`` through the model's graph, merged with other requests when the model is batchable.

        Raises:
            QueueFullError, DrainingError: the request was not queued.
            TimeoutError: no result within ``timeout_s`` (queue wait included).
        """
        return await self.run(_graph_call, feeds, kind="infer", mergeable=self.batchable, timeout_s=timeout_s)

    async def run(
        self, fn: Call, feeds: Feeds, *, kind: str, mergeable: bool = True, timeout_s: float | None
    ) -> Feeds:
        """Run ``fn(instance, feeds)`` on a free instance's worker thread, in queue order.

        Requests of the same ``kind`` whose tensors agree beyond dimension 0 are concatenated into one call
        when ``mergeable``; ``fn`` must then map N rows in to N rows out (dimension 0 of every output).
        """
        rows = int(next(iter(feeds.values())).shape[0]) if mergeable else 1
        loop = asyncio.get_running_loop()
        job = _Job(
            loop.create_future(),
            loop.time(),
            rows,
            feeds,
            fn,
            mergeable and self.max_batch > 1,
            _signature(kind, feeds),
        )
        self._enqueue(job)
        # wait_for cancels the future on timeout; the batcher skips cancelled jobs still in the queue
        return await asyncio.wait_for(job.future, timeout_s)

    # ---- the batching task ---------------------------------------------------------------------------------
    async def _next_job(self) -> _Job | None:
        assert self._wake is not None
        while True:
            while self._queue:
                job = self._queue.popleft()
                if not job.future.done():
                    return job
            if self._closing:
                return None
            self._wake.clear()
            await self._wake.wait()

    async def _gather(self, batch: list[_Job]) -> None:
        """Add compatible queued jobs to ``batch`` until it is full, the delay passes or none is coming."""
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        first = batch[0]
        rows = first.rows
        deadline = first.enqueued + self.max_delay_s
        while True:
            kept: collections.deque[_Job] = collections.deque()
            while self._queue:
                job = self._queue.popleft()
                if job.future.done():
                    continue
                if job.mergeable and job.signature == first.signature and rows + job.rows <= self.max_batch:
                    batch.append(job)
                    rows += job.rows
                else:
                    kept.append(job)
            self._queue = kept
            concurrent = self._in_flight > len(batch) or self._last_merged > 1
            remaining = deadline - loop.time()
            if rows >= self.max_batch or self._closing or not concurrent or remaining <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)

    async def _run(self) -> None:
        assert self._free is not None
        while True:
            # take an instance first: while all are busy, requests keep queueing and the next batch grows
            slot = await self._free.get()
            job = await self._next_job()
            if job is None:
                return
            batch = [job]
            if job.mergeable and job.rows < self.max_batch:
                await self._gather(batch)
            task = asyncio.get_running_loop().create_task(self._execute(batch, slot))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _record(self, batch: list[_Job], rows: int, started: float, seconds: float) -> None:
        if self._metrics is None:
            return
        self._metrics.batch_size.observe(rows, model=self.name)
        self._metrics.batch_requests.observe(len(batch), model=self.name)
        self._metrics.compute.observe(seconds, model=self.name)
        for job in batch:
            self._metrics.queue_wait.observe(max(0.0, started - job.enqueued), model=self.name)

    async def _execute(self, batch: list[_Job], slot: int) -> None:
        """Run ``batch`` on instance ``slot``, then give the instance back."""
        assert self._free is not None
        try:
            await self._call(batch, slot)
        finally:
            self._free.put_nowait(slot)

    async def _call(self, batch: list[_Job], slot: int) -> None:
        loop = asyncio.get_running_loop()
        batch = [job for job in batch if not job.future.done()]
        if not batch:
            return
        self._last_merged = len(batch)
        started = loop.time()
        t0 = time.perf_counter()
        try:
            feeds = batch[0].feeds
            if len(batch) > 1:
                feeds = {name: np.concatenate([job.feeds[name] for job in batch]) for name in feeds}
            outputs = await loop.run_in_executor(
                self._executors[slot], batch[0].fn, self.instances[slot], feeds
            )
            rows = sum(job.rows for job in batch)
            self._record(batch, rows, started, time.perf_counter() - t0)
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_result(outputs)
                return
            for name, value in outputs.items():
                if value.ndim == 0 or value.shape[0] != rows:
                    raise RuntimeError(
                        f"model {self.name!r} output {name!r} has shape {list(value.shape)}, expected batch "
                        f"dimension {rows} to split among {len(batch)} merged requests"
                    )
            start = 0
            for job in batch:
                stop = start + job.rows
                if not job.future.done():
                    job.future.set_result({name: value[start:stop] for name, value in outputs.items()})
                start = stop
        except Exception as exc:  # noqa: BLE001 - handed to the waiting request(s), never swallowed
            if len(batch) > 1:
                # isolate the failure: one malformed request must not fail the others merged with it
                for job in batch:
                    await self._call([job], slot)
                return
            if not batch[0].future.done():
                batch[0].future.set_exception(exc)
