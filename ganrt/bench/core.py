"""The benchmark driver: every requested backend in one process, on the same inputs, in interleaved rounds.

For each case (precision x batch): create every runner (a backend that cannot run is recorded with its
reason), cold-start each (load + first inference), compare their outputs, warm each up, then measure in
rounds: each round gives every backend a short time slice, in an order rotated every round, until each has
``duration_s`` of measured calls (and at least ``min_iters``). Noise that comes and goes on a shared machine
(other processes, thermal or frequency changes) then hits all backends alike, so their ratios hold.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ganrt.bench.backends import BACKENDS, PRECISIONS, BenchRunner, create_runner
from ganrt.bench.loadgen import SCENARIOS, run_scenarios
from ganrt.bench.memory import BackendMemory
from ganrt.bench.stats import latency_stats, phase_stats
from ganrt.bench.target import Artifacts, Target, Unavailable, resolve_target
from ganrt.cli_checks import thread_count

FORMAT = "ganrt-bench/1"


@dataclasses.dataclass
class BenchSettings:
    """What ``ganrt bench`` measures; the CLI flags map one to one.

    ``size``: image height/width (``None``: the family's reference size or the model's native size);
    ``width``: a FAMILY's generator width (``ngf``; ``base_channels`` for the VAE), ``None`` = reference;
    ``threads``: intra-op threads for every backend (``None``: torch's current setting, for all of them);
    ``server_p99_ms``: LoadGen Server latency bound (``None``: twice the slowest backend's measured p99);
    ``compile_mode``: the ``torch.compile`` mode of the ``compile`` backend.
    """

    backends: tuple[str, ...] = BACKENDS
    batches: tuple[int, ...] = (1,)
    size: int | None = None
    precisions: tuple[str, ...] = ("fp32",)
    device: str = "cpu"
    warmup_s: float = 1.0
    duration_s: float = 5.0
    min_iters: int = 5
    include_io: bool = False
    scenarios: tuple[str, ...] = ()
    scenario_duration_s: float | None = None
    server_p99_ms: float | None = None
    server_steps: int = 4
    threads: int | None = None
    width: int | None = None
    seed: int = 0
    compile_mode: str = "default"

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid setting."""
        from ganrt.backends.torch import COMPILE_MODES

        _check_choices("backends", self.backends, BACKENDS)
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}, got {self.compile_mode!r}")
        _check_choices("precisions", self.precisions, PRECISIONS)
        _check_choices("scenarios", self.scenarios, SCENARIOS, allow_empty=True)
        if not self.batches or any(b < 1 for b in self.batches):
            raise ValueError(f"batches must be one or more integers >= 1, got {list(self.batches)}")
        if self.device != "cpu" and not (self.device == "cuda" or self.device.startswith("cuda:")):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:<index>', got {self.device!r}")
        for name in ("warmup_s", "duration_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (name == "duration_s" and value == 0):
                raise ValueError(
                    f"{name} must be {'> 0' if name == 'duration_s' else '>= 0'} seconds, got {value}"
                )
        if self.min_iters < 1:
            raise ValueError(f"min_iters must be >= 1, got {self.min_iters}")
        thread_count(self.threads)
        if self.server_p99_ms is not None and not self.server_p99_ms > 0:
            raise ValueError(f"server_p99_ms must be > 0, got {self.server_p99_ms}")
        if self.server_steps < 1:
            raise ValueError(f"server_steps must be >= 1, got {self.server_steps}")
        if self.scenario_duration_s is not None and not self.scenario_duration_s > 0:
            raise ValueError(f"scenario_duration_s must be > 0, got {self.scenario_duration_s}")


def _check_choices(
    name: str, values: tuple[str, ...], allowed: tuple[str, ...], *, allow_empty: bool = False
) -> None:
    if not values and not allow_empty:
        raise ValueError(f"{name} must name at least one of {', '.join(allowed)}")
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(f"{name} must be drawn from {', '.join(allowed)}; got unknown {', '.join(bad)}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} lists a value twice: {', '.join(values)}")


def _check_device(device: str) -> None:
    if device == "cpu":
        return
    import torch

    if not torch.cuda.is_available():
        reason = (
            "this torch build has no CUDA support (CPU wheel)"
            if torch.version.cuda is None
            else "no CUDA device is visible"
        )
        raise ValueError(f"device {device!r} was requested, but {reason}")
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise ValueError(
            f"device {device!r} was requested, but only {torch.cuda.device_count()} CUDA device(s) "
            f"are visible"
        )


class _Progress:
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=Console(file=sys.stderr),
                transient=True,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def start(self, description: str, total: float) -> None:
        if self._progress is not None:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._task = self._progress.add_task(description, total=total)

    def update(self, description: str | None = None, advance: float = 0.0) -> None:
        if self._progress is not None and self._task is not None:
            kwargs: dict[str, Any] = {"advance": advance}
            if description is not None:
                kwargs["description"] = description
            self._progress.update(self._task, **kwargs)


@dataclasses.dataclass
class _Entry:
    """One backend in one case while it is being measured."""

    backend: str
    result: dict[str, Any]
    runner: BenchRunner | None = None
    memory: BackendMemory | None = None
    prepared: Any = None
    samples: list[float] = dataclasses.field(default_factory=list)
    phases: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    output: dict[str, np.ndarray] | None = None

    @property
    def ok(self) -> bool:
        return self.runner is not None and self.result["status"] == "ok"

    def fail(self, exc: BaseException) -> None:
        self.result["status"] = "failed"
        self.result["reason"] = f"{type(exc).__name__}: {_one_line(exc)}"
        self.close()

    def close(self) -> None:
        if self.runner is not None:
            with contextlib.suppress(Exception):
                self.runner.close()
        self.runner = None
        self.prepared = None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:500] if text else type(exc).__name__


def _timed_call(entry: _Entry) -> None:
    assert entry.runner is not None
    t0 = time.perf_counter()
    _, phases = entry.runner.infer(entry.prepared)
    entry.samples.append(time.perf_counter() - t0)
    for name, seconds in phases.items():
        entry.phases.setdefault(name, []).append(seconds)


def benchmark(
    target: str | Path,
    settings: BenchSettings | None = None,
    *,
    progress: bool = False,
    workdir: str | Path | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Benchmark ``target`` (a FAMILY name, run directory, .onnx or .engine) on every backend in ``settings``.

    Returns the JSON-ready report (format ``ganrt-bench/1``): ``target``, ``settings``, ``machine``, and
    ``results``, one entry per (precision, batch, backend) with ``status`` ``ok`` | ``unavailable`` |
    ``failed`` and, for ``ok``, ``latency_ms``, ``throughput_sps``, ``cold_start_s``, ``memory``,
    ``phases_ms`` and ``loadgen``. ``workdir`` keeps the generated run directory and exported artifacts
    (default: a temporary folder removed afterwards).
    """
    import torch

    from ganrt.bench.machine import machine_info

    settings = settings or BenchSettings()
    settings.validate()
    _check_device(settings.device)
    device = "cuda:0" if settings.device == "cuda" else settings.device
    # Every backend gets this many threads for its own calls; the process-wide setting is left alone.
    threads = settings.threads if settings.threads is not None else torch.get_num_threads()
    started = time.time()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ganrt-bench-")))
        else:
            work = Path(workdir)
            work.mkdir(parents=True, exist_ok=True)
        resolved = resolve_target(target, size=settings.size, width=settings.width, workdir=work)
        artifacts = Artifacts(resolved, workdir=work, batches=settings.batches)
        results = []
        with _Progress(progress) as bar:
            for precision in settings.precisions:
                for batch in settings.batches:
                    results.extend(
                        _run_case(
                            resolved,
                            artifacts,
                            settings,
                            batch=batch,
                            precision=precision,
                            device=device,
                            threads=threads,
                            bar=bar,
                        )
                    )
    report_settings = dataclasses.asdict(settings)
    report_settings["threads"] = threads
    return {
        "format": FORMAT,
        "command": command,
        "target": resolved.describe(),
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in report_settings.items()},
        "machine": machine_info(),
        "wall_s": time.time() - started,
        "results": results,
    }


def _base_result(backend: str, batch: int, precision: str, settings: BenchSettings) -> dict[str, Any]:
    return {
        "backend": backend,
        "batch": batch,
        "precision": precision,
        "device": settings.device,
        "include_io": settings.include_io,
        "status": "ok",
        "reason": None,
    }


def _run_case(
    target: Target,
    artifacts: Artifacts,
    settings: BenchSettings,
    *,
    batch: int,
    precision: str,
    device: str,
    threads: int,
    bar: _Progress,
) -> list[dict[str, Any]]:
    label = f"{precision} batch {batch}"
    entries = []
    for backend in settings.backends:
        entry = _Entry(backend, _base_result(backend, batch, precision, settings))
        bar.start(f"{label}: preparing {backend}", total=1)
        try:
            entry.runner = create_runner(
                backend,
                target,
                artifacts,
                batch=batch,
                precision=precision,
                device=device,
                include_io=settings.include_io,
                threads=threads,
                compile_mode=settings.compile_mode,
            )
        except Unavailable as exc:
            entry.result["status"] = "unavailable"
            entry.result["reason"] = str(exc)
        except Exception as exc:
            entry.fail(exc)
        entries.append(entry)

    feeds = target.make_feeds(batch, include_io=settings.include_io, seed=settings.seed)
    cuda = device.startswith("cuda")
    for entry in entries:
        if not entry.ok:
            continue
        runner = entry.runner
        assert runner is not None
        bar.start(f"{label}: cold start {entry.backend}", total=1)
        entry.memory = BackendMemory(cuda=cuda)
        try:
            with entry.memory.track(load=True):
                t0 = time.perf_counter()
                runner.load()
                entry.prepared = runner.prepare(feeds)
                entry.output, _ = runner.infer(entry.prepared)
                entry.result["cold_start_s"] = time.perf_counter() - t0
        except Exception as exc:
            entry.fail(exc)
            continue
        entry.result["build_s"] = runner.build_s
        entry.result["timing"] = runner.timing

    _agreement(entries, target)
    _warmup(entries, settings, bar, label)
    _measure(entries, settings, bar, label)

    ok = [e for e in entries if e.ok and e.samples]
    for entry in ok:
        stats = latency_stats(entry.samples, batch=batch)
        entry.result["throughput_sps"] = stats.pop("throughput_sps")
        entry.result["latency_ms"] = stats
        entry.result["phases_ms"] = phase_stats(entry.phases)
    if settings.scenarios and ok:
        _loadgen(ok, target, settings, batch=batch, bar=bar, label=label)
    for entry in entries:
        if entry.runner is not None:
            entry.result["info"] = entry.runner.info()
        if entry.memory is not None:
            entry.result["memory"] = entry.memory.result()
        entry.close()
    return [e.result for e in entries]


def _agreement(entries: list[_Entry], target: Target) -> None:
    """Max |difference| of each backend's first output against the reference backend's (torch if it ran)."""
    ok = [e for e in entries if e.ok and e.output is not None]
    if not ok:
        return
    reference = next((e for e in ok if e.backend == "torch"), ok[0])
    _, outputs = target.io_names()
    name = outputs[0]
    ref = reference.output[name].astype(np.float64) if reference.output else None
    for entry in ok:
        assert entry.output is not None
        got = entry.output.get(name)
        diff = None
        if ref is not None and got is not None and got.shape == ref.shape:
            diff = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
        entry.result["agreement"] = {"reference": reference.backend, "output": name, "max_abs_diff": diff}
    for entry in ok:
        entry.output = None


@contextlib.contextmanager
def _stretch(entry: _Entry) -> Iterator[None]:
    assert entry.memory is not None
    try:
        with entry.memory.track():
            yield
    except Exception as exc:
        entry.fail(exc)


def _warmup(entries: list[_Entry], settings: BenchSettings, bar: _Progress, label: str) -> None:
    for entry in entries:
        if not entry.ok or settings.warmup_s <= 0:
            continue
        bar.start(f"{label}: warm-up {entry.backend}", total=settings.warmup_s)
        deadline = time.perf_counter() + settings.warmup_s
        with _stretch(entry):
            while time.perf_counter() < deadline:
                assert entry.runner is not None
                entry.runner.infer(entry.prepared)
        bar.update(advance=settings.warmup_s)


def _measure(entries: list[_Entry], settings: BenchSettings, bar: _Progress, label: str) -> None:
    active = [e for e in entries if e.ok]
    if not active:
        return
    # Short slices interleave finely enough that slow drifts hit every backend alike, yet are long enough
    # that switching backends (cache, allocator and thread-pool warm-up) is a small part of each slice.
    slice_s = min(0.5, max(0.02, settings.duration_s / 10))
    bar.start(
        f"{label}: measuring {', '.join(e.backend for e in active)}", total=settings.duration_s * len(active)
    )
    rotation = 0
    while True:
        pending = [e for e in active if e.ok and not _done(e, settings)]
        if not pending:
            return
        shift = rotation % len(pending)
        rotation += 1
        for entry in pending[shift:] + pending[:shift]:
            before = sum(entry.samples)
            end = time.perf_counter() + slice_s
            with _stretch(entry):
                while True:
                    _timed_call(entry)
                    if time.perf_counter() >= end or _done(entry, settings):
                        break
            bar.update(
                advance=min(sum(entry.samples), settings.duration_s) - min(before, settings.duration_s)
            )


def _done(entry: _Entry, settings: BenchSettings) -> bool:
    return len(entry.samples) >= settings.min_iters and sum(entry.samples) >= settings.duration_s


def _loadgen(
    entries: list[_Entry], target: Target, settings: BenchSettings, *, batch: int, bar: _Progress, label: str
) -> None:
    pool_size = max(batch, 8)
    pool = target.make_feeds(pool_size, include_io=settings.include_io, seed=settings.seed + 1)
    bound = settings.server_p99_ms
    if bound is None:
        bound = 2.0 * max(e.result["latency_ms"]["p99_ms"] for e in entries)
    duration = settings.scenario_duration_s or settings.duration_s
    for entry in entries:
        bar.start(f"{label}: LoadGen {', '.join(settings.scenarios)} on {entry.backend}", total=1)
        assert entry.runner is not None and entry.memory is not None
        try:
            with entry.memory.track():
                entry.result["loadgen"] = run_scenarios(
                    entry.runner,
                    pool,
                    settings.scenarios,
                    batch=batch,
                    duration_s=duration,
                    min_queries=settings.min_iters,
                    median_ms=entry.result["latency_ms"]["median_ms"],
                    throughput_sps=entry.result["throughput_sps"],
                    server_bound_ms=bound,
                    server_steps=settings.server_steps,
                )
        except Exception as exc:
            # The latency figures still stand; the LoadGen failure is reported in their place.
            entry.result["loadgen"] = {"error": f"{type(exc).__name__}: {_one_line(exc)}"}
