"""MLPerf LoadGen scenarios against a prepared backend.

LoadGen (``mlcommons-loadgen``, module ``mlperf_loadgen``) generates the query traffic and computes the
statistics; ganrt supplies the system under test (SUT): one worker thread that takes queued samples, groups up
to the case's batch size (padding to it for fixed-batch runners), runs the backend and reports completion.

- SingleStream: one sample per query, the next query issued when the previous completes; metric p90 latency.
- Offline: every sample issued at once; metric samples per second.
- Server: Poisson arrivals at a target QPS; the metric is the highest QPS whose p99 latency stays under a
  bound. ganrt bisects the target QPS in a bounded number of short LoadGen runs (``steps``) between 0 and
  1.1x the throughput measured in the latency rounds.

Short runs do not satisfy LoadGen's submission rules (minimum duration, early stopping), so LoadGen marks them
INVALID; the figures are still LoadGen's, and ``valid`` plus ``checks`` are reported as LoadGen gives them.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ganrt.bench.backends import BenchRunner

SCENARIOS: tuple[str, ...] = ("single-stream", "offline", "server")
_LOADGEN_NAMES = {"single-stream": "SingleStream", "offline": "Offline", "server": "Server"}
# Samples LoadGen keeps "loaded" (the QSL pool); queries cycle through them.
_POOL = 64


def _import_loadgen() -> Any:
    try:
        import mlperf_loadgen
    except ImportError:
        raise RuntimeError("MLPerf LoadGen is not installed (pip install mlcommons-loadgen)") from None
    return mlperf_loadgen


class _SUT:
    """The system under test: a queue drained by one worker thread that batches up to ``batch`` samples."""

    def __init__(self, lg: Any, runner: BenchRunner, pool: Mapping[str, np.ndarray], batch: int) -> None:
        self.lg = lg
        self.runner = runner
        self.pool = pool
        self.batch = batch
        self.queue: deque[Any] = deque()
        self.cond = threading.Condition()
        self.stopping = False
        self.error: BaseException | None = None
        self.samples = 0
        self.calls = 0
        self.thread = threading.Thread(target=self._work, name="ganrt-bench-sut", daemon=True)
        self.thread.start()

    def issue(self, query_samples: list[Any]) -> None:
        with self.cond:
            self.queue.extend(query_samples)
            self.cond.notify()

    def flush(self) -> None:
        """LoadGen's flush: nothing is held back, the worker drains the queue continuously."""

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify()
        self.thread.join()

    def _work(self) -> None:
        lg = self.lg
        while True:
            with self.cond:
                while not self.queue and not self.stopping:
                    self.cond.wait()
                if not self.queue:
                    return
                take = [self.queue.popleft() for _ in range(min(self.batch, len(self.queue)))]
            if self.error is None:
                try:
                    self._run([s.index for s in take])
                except Exception as exc:  # reported after the test; LoadGen must still see every completion
                    self.error = exc
            lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, 0, 0) for s in take])

    def _run(self, indices: list[int]) -> None:
        if self.runner.fixed_batch and len(indices) < self.batch:
            indices = indices + [indices[0]] * (self.batch - len(indices))
        feeds = {name: value[indices] for name, value in self.pool.items()}
        self.runner.infer(self.runner.prepare(feeds))
        self.samples += len(indices)
        self.calls += 1


_LINE = re.compile(r"^\s*([^:]+?)\s*:\s*(.+?)\s*$")


def parse_summary(text: str) -> dict[str, str]:
    """``key : value`` lines of ``mlperf_log_summary.txt`` (first occurrence wins)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and m.group(1) not in out:
            out[m.group(1)] = m.group(2)
    return out


def _ns_to_ms(summary: dict[str, str], key: str) -> float | None:
    value = summary.get(key)
    try:
        return int(value) / 1e6 if value is not None else None
    except ValueError:
        return None


def _float(summary: dict[str, str], key: str) -> float | None:
    value = summary.get(key)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _summarise(summary: dict[str, str]) -> dict[str, Any]:
    latency = {
        "min_ms": _ns_to_ms(summary, "Min latency (ns)"),
        "mean_ms": _ns_to_ms(summary, "Mean latency (ns)"),
        "p50_ms": _ns_to_ms(summary, "50.00 percentile latency (ns)"),
        "p90_ms": _ns_to_ms(summary, "90.00 percentile latency (ns)"),
        "p95_ms": _ns_to_ms(summary, "95.00 percentile latency (ns)"),
        "p97_ms": _ns_to_ms(summary, "97.00 percentile latency (ns)"),
        "p99_ms": _ns_to_ms(summary, "99.00 percentile latency (ns)"),
        "p99.9_ms": _ns_to_ms(summary, "99.90 percentile latency (ns)"),
        "max_ms": _ns_to_ms(summary, "Max latency (ns)"),
    }
    checks = {
        key: summary[key].lower().startswith("yes")
        for key in (
            "Min duration satisfied",
            "Min queries satisfied",
            "Early stopping satisfied",
            "Performance constraints satisfied",
        )
        if key in summary
    }
    return {"valid": summary.get("Result is") == "VALID", "checks": checks, "latency": latency}


def _run_loadgen(
    lg: Any, runner: BenchRunner, pool: Mapping[str, np.ndarray], *, batch: int, settings: Any
) -> dict[str, Any]:
    logdir = Path(tempfile.mkdtemp(prefix="ganrt-loadgen-"))
    sut = _SUT(lg, runner, pool, batch)
    count = len(next(iter(pool.values())))
    sut_handle = lg.ConstructSUT(sut.issue, sut.flush)
    qsl_handle = lg.ConstructQSL(count, count, lambda samples: None, lambda samples: None)
    try:
        log = lg.LogSettings()
        log.log_output.outdir = str(logdir)
        log.log_output.copy_summary_to_stdout = False
        log.enable_trace = False
        start = time.perf_counter()
        lg.StartTestWithLogSettings(sut_handle, qsl_handle, settings, log)
        wall = time.perf_counter() - start
        summary = parse_summary((logdir / "mlperf_log_summary.txt").read_text(encoding="utf-8"))
    finally:
        sut.stop()
        lg.DestroyQSL(qsl_handle)
        lg.DestroySUT(sut_handle)
        shutil.rmtree(logdir, ignore_errors=True)
    if sut.error is not None:
        raise RuntimeError(f"{runner.name} failed under LoadGen: {sut.error}") from sut.error
    result = _summarise(summary)
    result.update({"wall_s": wall, "samples": sut.samples, "calls": sut.calls, "_summary": summary})
    return result


def _base_settings(lg: Any, scenario: str, *, duration_s: float, min_queries: int) -> Any:
    settings = lg.TestSettings()
    settings.scenario = getattr(lg.TestScenario, _LOADGEN_NAMES[scenario])
    settings.mode = lg.TestMode.PerformanceOnly
    settings.min_duration_ms = max(1, int(duration_s * 1000))
    # A hard cap so a slow backend cannot stretch a run far past what was asked for.
    settings.max_duration_ms = max(settings.min_duration_ms + 1, int(duration_s * 3000))
    settings.min_query_count = max(1, min_queries)
    return settings


def run_scenarios(
    runner: BenchRunner,
    pool: Mapping[str, np.ndarray],
    scenarios: tuple[str, ...],
    *,
    batch: int,
    duration_s: float,
    min_queries: int,
    median_ms: float,
    throughput_sps: float,
    server_bound_ms: float,
    server_steps: int,
) -> dict[str, Any]:
    """Run each LoadGen scenario on ``runner``; returns ``{scenario: result}``.

    Args:
        pool: per-sample inputs, each array (count, ...) with count >= ``batch``.
        median_ms, throughput_sps: the runner's latency-round figures at this batch (LoadGen's expectations
            and the Server search range).
        server_bound_ms: the p99 latency bound for Server.
        server_steps: LoadGen runs the Server bisection may use.
    """
    lg = _import_loadgen()
    out: dict[str, Any] = {}
    for scenario in scenarios:
        if scenario not in SCENARIOS:
            raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}, got {scenario!r}")
        if scenario == "single-stream":
            settings = _base_settings(lg, scenario, duration_s=duration_s, min_queries=min_queries)
            settings.single_stream_expected_latency_ns = max(1, int(median_ms * 1e6))
            r = _run_loadgen(lg, runner, pool, batch=batch, settings=settings)
            summary = r.pop("_summary")
            r["p90_latency_ms"] = (
                _ns_to_ms(summary, "90.0th percentile latency (ns)") or r["latency"]["p90_ms"]
            )
            r["qps"] = _float(summary, "QPS w/o loadgen overhead")
        elif scenario == "offline":
            settings = _base_settings(lg, scenario, duration_s=duration_s, min_queries=1)
            settings.offline_expected_qps = max(1.0, throughput_sps)
            r = _run_loadgen(lg, runner, pool, batch=batch, settings=settings)
            summary = r.pop("_summary")
            r["samples_per_s"] = _float(summary, "Samples per second")
        else:
            r = _server_search(
                lg,
                runner,
                pool,
                batch=batch,
                duration_s=duration_s,
                min_queries=min_queries,
                throughput_sps=throughput_sps,
                bound_ms=server_bound_ms,
                steps=server_steps,
            )
        r["scenario"] = _LOADGEN_NAMES[scenario]
        out[scenario] = r
    return out


def _server_search(
    lg: Any,
    runner: BenchRunner,
    pool: Mapping[str, np.ndarray],
    *,
    batch: int,
    duration_s: float,
    min_queries: int,
    throughput_sps: float,
    bound_ms: float,
    steps: int,
) -> dict[str, Any]:
    if steps < 1:
        raise ValueError(f"server_steps must be >= 1, got {steps}")
    lo, hi = 0.0, 1.1 * max(throughput_sps, 1e-3)
    qps = hi / 2
    best: dict[str, Any] | None = None
    trials = []
    for _ in range(steps):
        settings = _base_settings(lg, "server", duration_s=duration_s, min_queries=min_queries)
        settings.server_target_qps = qps
        settings.server_target_latency_ns = max(1, int(bound_ms * 1e6))
        settings.server_target_latency_percentile = 0.99
        r = _run_loadgen(lg, runner, pool, batch=batch, settings=settings)
        summary = r.pop("_summary")
        achieved = _float(summary, "Completed samples per second")
        p99 = r["latency"]["p99_ms"]
        # Met: p99 under the bound and the SUT kept up with the offered load (not just a lucky short run).
        met = p99 is not None and p99 <= bound_ms and achieved is not None and achieved >= 0.9 * qps
        trial = {
            "target_qps": qps,
            "achieved_qps": achieved,
            "p99_ms": p99,
            "met": met,
            "valid": r["valid"],
            "wall_s": r["wall_s"],
        }
        trials.append(trial)
        if met:
            lo = qps
            if best is None or qps > best["target_qps"]:
                best = trial
        else:
            hi = qps
        qps = (lo + hi) / 2
    return {
        "bound_p99_ms": bound_ms,
        "max_qps_under_bound": best["target_qps"] if best else None,
        "p99_ms_at_max": best["p99_ms"] if best else None,
        "valid": bool(best and best["valid"]),
        "trials": trials,
    }
