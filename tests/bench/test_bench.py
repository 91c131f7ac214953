"""``ganrt bench`` end to end on tiny models (CPU), plus its statistics, memory and machine helpers.

One CLI run (a 32 px CycleGAN generator with ngf 4, batches 1 and 2, every LoadGen scenario) is shared by the
report tests; its exported ONNX model is reused for the artifact and pre/post-processing paths.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from ganrt.backends.openvino import native_bf16
from ganrt.bench.core import BenchSettings, benchmark
from ganrt.bench.memory import BackendMemory
from ganrt.bench.render import print_report
from ganrt.bench.stats import latency_stats
from ganrt.bench.timing import calibrate, interleaved
from ganrt.cli import main
from tests.tolerances import BF16_MAX_ABS, MEMORY_ROUNDING_MB, MEMORY_SLACK_MB, ONNX

BACKENDS = ["eager", "torch", "onnxruntime", "openvino", "openvino-bf16", "ganrt", "ganrt-torch", "tensorrt"]
# The backends that run on this CPU (bf16 only where the CPU computes it natively).
CPU_OK = {"eager", "torch", "onnxruntime", "openvino", "ganrt", "ganrt-torch"} | (
    {"openvino-bf16"} if native_bf16()[0] else set()
)
BATCHES = [1, 2]
LATENCY_KEYS = [
    "n",
    "min_ms",
    "mean_ms",
    "median_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "std_ms",
    "cv",
    "total_s",
    "curve_ms",
]
ORDERED = ["min_ms", "median_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms"]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    json_path, png_path, workdir = out / "report.json", out / "chart.png", out / "work"
    code = main(
        [
            "bench",
            "cyclegan",
            "--ngf",
            "4",
            "--size",
            "32",
            "--backends",
            ",".join(BACKENDS),
            "--batch",
            ",".join(map(str, BATCHES)),
            "--duration-s",
            "0.3",
            "--warmup-s",
            "0.05",
            "--min-iters",
            "3",
            "--scenario",
            "single-stream,offline,server",
            "--scenario-duration-s",
            "0.2",
            "--server-steps",
            "2",
            "--json",
            str(json_path),
            "--plot",
            str(png_path),
            "--workdir",
            str(workdir),
            "--quiet",
        ]
    )
    return {"code": code, "report": json.loads(json_path.read_text()), "png": png_path, "workdir": workdir}


def _ok(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in report["results"] if r["status"] == "ok"]


def test_cli_exit_status_and_report_header(cli_run: dict[str, Any]) -> None:
    assert cli_run["code"] == 0
    report = cli_run["report"]
    assert report["format"] == "ganrt-bench/1"
    target = report["target"]
    assert (target["kind"], target["family"], target["arch"], target["task"]) == (
        "family",
        "cyclegan",
        "resnet_9blocks",
        "translate",
    )
    assert target["size"] == 32 and target["parameters"] > 0 and target["spec"]["ngf"] == 4
    settings = report["settings"]
    assert settings["backends"] == BACKENDS and settings["batches"] == BATCHES
    assert settings["threads"] >= 1 and settings["device"] == "cpu"
    machine = report["machine"]
    for key in ("cpu", "cores_physical", "cores_logical", "memory_gib", "os", "python", "gpus", "libraries"):
        assert key in machine, key
    assert machine["cpu"] and machine["cores_logical"] >= 1
    assert {"torch", "onnxruntime", "onnx", "numpy", "ganrt"} <= set(machine["libraries"])


def test_every_backend_and_batch_is_listed(cli_run: dict[str, Any]) -> None:
    results = cli_run["report"]["results"]
    assert sorted((r["backend"], r["batch"]) for r in results) == sorted(
        (b, n) for b in BACKENDS for n in BATCHES
    )
    for r in results:
        assert r["precision"] == "fp32" and r["device"] == "cpu" and r["include_io"] is False
        assert r["status"] in ("ok", "unavailable", "failed")
        assert (r["reason"] is None) == (r["status"] == "ok"), r


def test_openvino_columns(cli_run: dict[str, Any]) -> None:
    rows = {(r["backend"], r["batch"]): r for r in cli_run["report"]["results"]}
    for batch in BATCHES:
        fp32 = rows["openvino", batch]
        assert fp32["status"] == "ok" and fp32["info"]["inference_precision"] == "f32"
        assert fp32["info"]["threads"] == cli_run["report"]["settings"]["threads"]
        bf16 = rows["openvino-bf16", batch]
        if native_bf16()[0]:
            assert bf16["status"] == "ok" and bf16["info"]["inference_precision"] == "bf16"
        else:
            assert bf16["status"] == "unavailable" and "native bf16" in bf16["reason"]


def test_unavailable_backend_reports_its_reason(cli_run: dict[str, Any]) -> None:
    trt = [r for r in cli_run["report"]["results"] if r["backend"] == "tensorrt"]
    assert len(trt) == len(BATCHES)
    for r in trt:
        assert r["status"] == "unavailable"
        assert "CUDA" in r["reason"] and "--device is cpu" in r["reason"]
        assert "latency_ms" not in r


def test_latency_fields_and_percentile_order(cli_run: dict[str, Any]) -> None:
    ok = _ok(cli_run["report"])
    assert {r["backend"] for r in ok} == CPU_OK
    for r in ok:
        lat = r["latency_ms"]
        assert set(LATENCY_KEYS) <= set(lat), r["backend"]
        assert lat["n"] >= 3
        values = [lat[k] for k in ORDERED]
        assert values == sorted(values), (r["backend"], values)
        assert lat["min_ms"] > 0
        assert lat["min_ms"] <= lat["mean_ms"] <= lat["max_ms"]
        curve = lat["curve_ms"]
        assert len(curve) == 101 and curve == sorted(curve)
        assert curve[0] == lat["min_ms"] and curve[-1] == lat["max_ms"] and curve[50] == lat["median_ms"]
        # Samples (the case's batch per call), not calls, per measured second; latency_stats itself is checked
        # on hand-computed samples below.
        assert r["throughput_sps"] == pytest.approx(r["batch"] * lat["n"] / lat["total_s"])
        assert lat["total_s"] >= 0.3  # --duration-s
        assert r["cold_start_s"] > 0 and r["build_s"] >= 0 and r["timing"] == "host"
        assert r["phases_ms"]["compute"]["median_ms"] > 0


def test_memory_and_agreement(cli_run: dict[str, Any]) -> None:
    for r in _ok(cli_run["report"]):
        mem = r["memory"]
        assert mem["method"] in ("VmHWM", "psutil-rss")
        for key in ("load_mb", "working_mb", "footprint_mb", "peak_rss_mb"):
            assert mem[key] >= 0, key
        assert mem["peak_rss_mb"] > 10
        assert mem["footprint_mb"] == pytest.approx(
            mem["load_mb"] + mem["working_mb"], abs=MEMORY_ROUNDING_MB
        )
        agreement = r["agreement"]
        assert agreement["reference"] == "torch" and agreement["output"] == "output"
        # ganrt runs its own choice: bf16 where that passed the quality bound, else fp32.
        bf16 = r["backend"] == "openvino-bf16" or r["info"].get("precision") == "bf16"
        assert agreement["max_abs_diff"] <= (BF16_MAX_ABS if bf16 else ONNX.atol), r["backend"]
    onnx_backends = [r for r in _ok(cli_run["report"]) if r["backend"] in ("onnxruntime", "openvino", "ganrt")]
    # The ONNX model is exported once and shared by the ONNX backends; the torch variants read the run.
    assert len(onnx_backends) == 3 * len(BATCHES) and all(r["build_s"] > 0 for r in onnx_backends)
    by_batch = {(r["backend"], r["batch"]): r for r in _ok(cli_run["report"])}
    for batch in BATCHES:
        assert by_batch["eager", batch]["info"]["fused_ops"] is False  # stock PyTorch layers
        assert by_batch["torch", batch]["info"]["fused_ops"] is True
        assert by_batch["ganrt-torch", batch]["info"]["backend"] == "torch"
        assert by_batch["ganrt-torch", batch]["build_s"] == 0


def test_loadgen_scenarios_complete(cli_run: dict[str, Any]) -> None:
    for r in _ok(cli_run["report"]):
        lg = r["loadgen"]
        assert set(lg) == {"single-stream", "offline", "server"}, lg
        single, offline, server = lg["single-stream"], lg["offline"], lg["server"]
        assert single["scenario"] == "SingleStream" and offline["scenario"] == "Offline"
        assert server["scenario"] == "Server"
        assert single["p90_latency_ms"] > 0 and single["samples"] >= 3
        assert single["latency"]["p50_ms"] <= single["latency"]["p90_ms"] <= single["latency"]["max_ms"]
        assert offline["samples_per_s"] > 0 and offline["samples"] >= 1
        # The SUT groups queued Offline samples into calls of at most the case's batch.
        assert offline["calls"] >= math.ceil(offline["samples"] / r["batch"])
        assert isinstance(single["valid"], bool) and "Min duration satisfied" in single["checks"]
        assert len(server["trials"]) == 2 and server["bound_p99_ms"] > 0
        for trial in server["trials"]:
            assert trial["target_qps"] > 0 and trial["met"] == (
                trial["p99_ms"] is not None
                and trial["p99_ms"] <= server["bound_p99_ms"]
                and trial["achieved_qps"] >= 0.9 * trial["target_qps"]
            )
        met = [t["target_qps"] for t in server["trials"] if t["met"]]
        assert server["max_qps_under_bound"] == (max(met) if met else None)


def test_plot_is_a_png(cli_run: dict[str, Any]) -> None:
    data = cli_run["png"].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(cli_run["png"]) as img:
        img.verify()
    with Image.open(cli_run["png"]) as img:
        assert img.format == "PNG" and img.size[0] > 400 and img.size[1] > 200


def test_table_names_every_backend(cli_run: dict[str, Any]) -> None:
    from rich.console import Console

    console = Console(record=True, width=120)
    print_report(cli_run["report"], console=console)
    text = console.export_text()
    for backend in BACKENDS:
        assert backend in text
    assert "unavailable: TensorRT runs only on CUDA devices" in text
    assert "SingleStream" in text and "Offline" in text and "Server" in text


def test_onnx_artifact_with_pre_and_post_processing(cli_run: dict[str, Any], tmp_path: Path) -> None:
    onnx_path = cli_run["workdir"] / "model-fp32.onnx"
    assert onnx_path.is_file()
    settings = BenchSettings(
        backends=("torch", "onnxruntime", "ganrt"),
        batches=(2,),
        precisions=("fp32", "fp16"),
        warmup_s=0.0,
        duration_s=0.1,
        min_iters=2,
        include_io=True,
    )
    report = benchmark(onnx_path, settings, workdir=tmp_path)
    assert report["target"]["kind"] == "onnx" and report["target"]["artifact_precision"] == "fp32"
    by = {(r["backend"], r["precision"]): r for r in report["results"]}
    assert by["torch", "fp32"]["status"] == "unavailable"
    assert "run directory or a FAMILY" in by["torch", "fp32"]["reason"]
    for backend in ("onnxruntime", "ganrt"):
        fp16 = by[backend, "fp16"]
        assert fp16["status"] == "unavailable" and "exported with --precision fp16" in fp16["reason"]
        r = by[backend, "fp32"]
        assert r["status"] == "ok", r["reason"]
        assert r["include_io"] is True
        assert r["latency_ms"]["n"] >= 2
        # Both take uint8 pictures and return uint8 pictures: agreement is in 8-bit levels (one at rounding
        # ties in fp32; ganrt's own choice may be bf16, bounded like bf16 floats).
        bf16 = r["info"].get("precision") == "bf16"
        levels = math.ceil(BF16_MAX_ABS * 127.5) if bf16 else 1
        assert r["agreement"]["reference"] == "onnxruntime" and r["agreement"]["max_abs_diff"] <= levels
    assert {"pre", "compute", "post"} <= set(by["onnxruntime", "fp32"]["phases_ms"])


def test_run_directory_target(cli_run: dict[str, Any], tmp_path: Path) -> None:
    run_dir = cli_run["workdir"] / "cyclegan-run"
    settings = BenchSettings(backends=("torch", "tensorrt"), warmup_s=0.0, duration_s=0.05, min_iters=2)
    report = benchmark(run_dir, settings, workdir=tmp_path)
    target = report["target"]
    assert target["kind"] == "run" and target["name"] == str(run_dir)
    assert target["arch"] == "resnet_9blocks" and target["size"] == 32 and len(target["config_hash"]) == 16
    torch_result, trt = report["results"]
    assert torch_result["status"] == "ok" and torch_result["latency_ms"]["n"] >= 2
    assert trt["status"] == "unavailable"


def test_sampler_family_with_post_processing(tmp_path: Path) -> None:
    settings = BenchSettings(
        backends=("eager", "torch", "onnxruntime", "ganrt", "ganrt-torch"),
        batches=(2,),
        size=8,
        width=4,
        warmup_s=0.0,
        duration_s=0.1,
        min_iters=2,
        include_io=True,
    )
    report = benchmark("dcgan", settings, workdir=tmp_path)
    assert report["target"]["task"] == "sample" and report["target"]["arch"] == "dcgan_g"
    assert report["target"]["latent_dim"] > 0
    by = {r["backend"]: r for r in report["results"]}
    for backend in ("eager", "torch", "onnxruntime", "ganrt", "ganrt-torch"):
        r = by[backend]
        assert r["status"] == "ok", r["reason"]
        assert r["agreement"]["output"] == "image" and r["agreement"]["max_abs_diff"] <= 1
    assert {"compute", "post"} <= set(by["torch"]["phases_ms"]) and "pre" not in by["torch"]["phases_ms"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nosuchmodel"], "neither a family nor an existing path"),
        (["cyclegan", "--backends", "torch,fast"], "unknown fast"),
        (["cyclegan", "--compile-mode", "fastest"], "compile_mode must be one of default, reduce-overhead"),
        (["cyclegan", "--batch", "0"], "batches must be"),
        (["cyclegan", "--device", "cuda"], "CUDA"),
        (["cyclegan", "--ngf", "4", "--size", "30"], "multiple of 4"),
        (["cyclegan", "--scenario", "multi-stream"], "unknown multi-stream"),
    ],
    ids=["missing-model", "unknown-backend", "compile-mode", "batch-0", "no-cuda", "bad-size", "unknown-scenario"],
)
def test_cli_errors_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", *argv, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganrt bench: error:") and message in err
    assert len(err.splitlines()) == 1


def test_latency_stats_of_a_hand_computed_sample() -> None:
    # 1, 2, 3, 4 ms given out of order. Mean 2.5, population std sqrt(1.25), cv sqrt(1.25) / 2.5 = 1/sqrt(5);
    # percentile q sits at rank q/100 * (n - 1) = 0.03 q between order statistics (linear interpolation):
    # p50 at rank 1.5 -> 2.5, p90 at 2.7 -> 3.7, p95 at 2.85 -> 3.85, p99 at 2.97 -> 3.97. 2 samples per call,
    # 4 calls in 10 ms: 800 samples/s.
    stats = latency_stats([0.004, 0.001, 0.003, 0.002], batch=2)
    expected = {
        "n": 4,
        "min_ms": 1.0,
        "mean_ms": 2.5,
        "median_ms": 2.5,
        "p90_ms": 3.7,
        "p95_ms": 3.85,
        "p99_ms": 3.97,
        "max_ms": 4.0,
        "std_ms": math.sqrt(1.25),
        "cv": 1 / math.sqrt(5),
        "total_s": 0.010,
        "throughput_sps": 800.0,
    }
    assert set(expected) | {"curve_ms"} == set(stats)
    for key, value in expected.items():
        assert stats[key] == pytest.approx(value), key
    assert stats["curve_ms"] == pytest.approx([1.0 + 0.03 * q for q in range(101)])


def test_latency_stats_percentiles_of_1_to_100_ms() -> None:
    # Order statistics 1..100 ms: percentile q at rank 0.99 q, i.e. q + 1 - q / 100 ms.
    seconds = [ms / 1e3 for ms in np.random.default_rng(0).permutation(np.arange(1, 101))]
    stats = latency_stats(seconds, batch=1)
    assert stats["median_ms"] == pytest.approx(50.5)
    assert stats["p90_ms"] == pytest.approx(90.1)
    assert stats["p95_ms"] == pytest.approx(95.05)
    assert stats["p99_ms"] == pytest.approx(99.01)
    assert stats["mean_ms"] == pytest.approx(50.5) and stats["total_s"] == pytest.approx(5.05)
    assert stats["throughput_sps"] == pytest.approx(100 / 5.05)


def test_latency_stats_of_constant_and_single_samples() -> None:
    constant = latency_stats([0.01] * 5, batch=1)
    for key in ORDERED + ["mean_ms"]:
        assert constant[key] == pytest.approx(10.0), key
    assert constant["std_ms"] == 0 and constant["cv"] == 0
    assert constant["throughput_sps"] == pytest.approx(100.0)  # 5 calls of 1 sample in 50 ms
    single = latency_stats([0.005], batch=3)
    assert single["n"] == 1 and single["cv"] == 0 and single["curve_ms"] == pytest.approx([5.0] * 101)
    assert all(single[key] == pytest.approx(5.0) for key in ORDERED)
    assert single["throughput_sps"] == pytest.approx(600.0)  # 3 samples in 5 ms


def test_latency_stats_orders_percentiles_of_any_sample() -> None:
    seconds = np.random.default_rng(0).lognormal(-5, 0.5, 1000).tolist()
    stats = latency_stats(seconds, batch=4)
    values = [stats[k] for k in ORDERED]
    assert values == sorted(values)
    assert stats["min_ms"] <= stats["mean_ms"] <= stats["max_ms"]
    assert stats["curve_ms"] == sorted(stats["curve_ms"])


@pytest.mark.parametrize(
    ("seconds", "batch", "message"),
    [
        ([], 1, "at least one sample"),
        ([0.1], 0, "batch must be >= 1, got 0"),
        ([0.1, -0.001], 1, "finite and non-negative"),
        ([0.1, math.inf], 1, "finite and non-negative"),
        ([math.nan], 1, "finite and non-negative"),
    ],
    ids=["empty", "batch-0", "negative", "inf", "nan"],
)
def test_latency_stats_rejects_bad_input(seconds: list[float], batch: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        latency_stats(seconds, batch=batch)


_MiB = 2**20


def _resident(mib: int) -> np.ndarray:
    """``mib`` MiB of float64 ones: every page written, so all of it is resident."""
    return np.ones(mib * _MiB // 8)


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / _MiB


@pytest.fixture(params=["VmHWM", "psutil-rss"])
def memory(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> BackendMemory:
    """A CPU tracker on each of its two methods (psutil-rss forced by hiding the kernel's peak counter)."""
    import ganrt.bench.memory

    if request.param == "psutil-rss":
        monkeypatch.setattr(ganrt.bench.memory, "_read_hwm_kb", lambda: None)
    mem = BackendMemory(cuda=False)
    if mem.method != request.param:
        pytest.skip("VmHWM needs Linux's /proc/self/status and a writable /proc/self/clear_refs")
    return mem


def test_memory_separates_the_resident_load_from_transient_growth(memory: BackendMemory) -> None:
    before = _rss_mib()
    with memory.track(load=True):
        kept = _resident(64)  # stays resident through the next stretch, like a loaded model
    with memory.track():
        transient = _resident(96)  # activations: alive at the end of this stretch
        transient.sum()
    del transient
    result = memory.result()
    # What stays loaded is load, not working memory: the working figure is measured from the stretch's start.
    assert result["load_mb"] == pytest.approx(64, abs=MEMORY_SLACK_MB)
    assert result["working_mb"] == pytest.approx(96, abs=MEMORY_SLACK_MB)
    assert result["footprint_mb"] == pytest.approx(
        result["load_mb"] + result["working_mb"], abs=MEMORY_ROUNDING_MB
    )
    assert result["peak_rss_mb"] >= before + 64 + 96 - MEMORY_SLACK_MB
    del kept  # resident until the figures were read


def test_memory_sees_memory_freed_within_a_stretch_only_with_vmhwm(memory: BackendMemory) -> None:
    with memory.track(load=True):
        kept = _resident(32)
    with memory.track():
        transient = _resident(96)  # freed before the stretch ends
        transient.sum()
        del transient
    result = memory.result()
    assert result["load_mb"] == pytest.approx(32, abs=MEMORY_SLACK_MB)
    if memory.method == "VmHWM":
        # The kernel's peak counter saw the 96 MiB that were gone by the end of the stretch.
        assert result["working_mb"] == pytest.approx(96, abs=MEMORY_SLACK_MB)
    else:
        # RSS read at the end of the stretch: a lower bound that misses memory already freed.
        assert result["working_mb"] <= MEMORY_SLACK_MB
    del kept


def test_memory_records_a_stretch_that_raises(memory: BackendMemory) -> None:
    with pytest.raises(RuntimeError, match="inference failed"), memory.track():
        transient = _resident(48)
        transient.sum()
        raise RuntimeError("inference failed")
    del transient
    assert memory.result()["working_mb"] == pytest.approx(48, abs=MEMORY_SLACK_MB)


class _FakeClock:
    """Time that advances only when a fake variant runs: passed as ``clock=`` (the per-call samples) and put in
    place of ganrt.bench.timing's ``time`` module (the wall-time budget of ``seconds=``)."""

    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _FakeClock:
    import ganrt.bench.timing

    fake = _FakeClock()
    monkeypatch.setattr(ganrt.bench.timing, "time", fake)
    return fake


def _variants(clock: _FakeClock, costs: dict[str, float], log: list[str]) -> dict[str, Callable[[], None]]:
    def make(name: str, cost: float) -> Callable[[], None]:
        def run() -> None:
            log.append(name)
            clock.now += cost

        return run

    return {name: make(name, cost) for name, cost in costs.items()}


def _interleaved(
    clock: _FakeClock, costs: dict[str, float], log: list[str] | None = None, **kwargs: Any
) -> dict[str, list[float]]:
    return interleaved(
        _variants(clock, costs, [] if log is None else log), clock=clock.perf_counter, **kwargs
    )


def test_interleaved_rotates_the_order_every_round(clock: _FakeClock) -> None:
    log: list[str] = []
    rounds_seen: list[int] = []
    times = _interleaved(
        clock, {"a": 1.0, "b": 2.0, "c": 4.0}, log, rounds=4, warmup=2, on_round=rounds_seen.append
    )
    # Warm-up: each variant twice in a row, then round r starts at variant r mod 3.
    assert log == ["a", "a", "b", "b", "c", "c"] + list("abcbcacababc")
    assert rounds_seen == [1, 2, 3, 4]
    # Only the timed calls are returned, each with its own duration (warm-up calls are not timed).
    assert times == {"a": [1.0] * 4, "b": [2.0] * 4, "c": [4.0] * 4}


def test_interleaved_without_warmup(clock: _FakeClock) -> None:
    log: list[str] = []
    times = _interleaved(clock, {"a": 1.0, "b": 1.0}, log, rounds=3, warmup=0)
    assert log == list("abbaab")
    assert times == {"a": [1.0] * 3, "b": [1.0] * 3}


def test_interleaved_repeat_records_the_mean_of_calls_in_a_row(clock: _FakeClock) -> None:
    log: list[str] = []
    times = _interleaved(clock, {"a": 1.0, "b": 2.0}, log, rounds=2, warmup=0, repeat={"a": 3})
    assert log == list("aaabbaaa")
    assert times == {"a": [1.0, 1.0], "b": [2.0, 2.0]}


def test_interleaved_stops_after_seconds_counted_from_the_first_timed_round(clock: _FakeClock) -> None:
    # 3 s per round; the 2 warm-up calls of each variant take 6 s, which must not count towards seconds=10:
    # rounds end at 3, 6, 9, 12 s, so the loop stops after round 4 (after round 2 if warm-up counted).
    log: list[str] = []
    times = _interleaved(clock, {"a": 1.0, "b": 2.0}, log, seconds=10.0, min_rounds=1, warmup=2)
    assert times == {"a": [1.0] * 4, "b": [2.0] * 4}
    assert len(log) == 4 + 8


def test_interleaved_runs_min_rounds_even_when_seconds_have_passed(clock: _FakeClock) -> None:
    times = _interleaved(clock, {"a": 5.0}, seconds=1.0, min_rounds=6, warmup=0)
    assert times == {"a": [5.0] * 6}


@pytest.mark.parametrize(
    ("rounds", "seconds", "min_rounds", "expected"),
    [(3, 100.0, 1, 3), (100, 7.0, 1, 3), (100, 1.0, 4, 4)],
    ids=["rounds-first", "seconds-first", "seconds-after-min-rounds"],
)
def test_interleaved_with_rounds_and_seconds_stops_at_the_first(
    clock: _FakeClock, rounds: int, seconds: float, min_rounds: int, expected: int
) -> None:
    # 3 s per round.
    times = _interleaved(clock, {"a": 1.0, "b": 2.0}, rounds=rounds, seconds=seconds, min_rounds=min_rounds)
    assert len(times["a"]) == len(times["b"]) == expected


def test_calibrate_sizes_samples_to_the_minimum_duration(clock: _FakeClock) -> None:
    log: list[str] = []
    fast = _variants(clock, {"fast": 0.002}, log)["fast"]
    # 3 untimed warm-up calls, one timed: 0.01 s per sample needs 5 calls of 2 ms.
    assert calibrate(fast, 0.01, clock=clock.perf_counter) == 5
    assert len(log) == 4
    slow = _variants(clock, {"slow": 1.0}, [])["slow"]
    assert calibrate(slow, 0.01, clock=clock.perf_counter) == 1


def test_interleaved_times_real_calls() -> None:
    times = interleaved({"sleep": lambda: time.sleep(0.002), "noop": lambda: None}, rounds=3, warmup=1)
    assert len(times["sleep"]) == len(times["noop"]) == 3
    assert min(times["sleep"]) >= 0.002 and all(t >= 0 for t in times["noop"])


@pytest.mark.parametrize(
    ("variants", "kwargs", "message"),
    [
        ({}, {"rounds": 1}, "at least one variant"),
        ({"a": lambda: None}, {}, "seconds= or rounds="),
        ({"a": lambda: None}, {"rounds": 0}, r"need rounds >= 1, .* got 0, 5, 2$"),
        ({"a": lambda: None}, {"seconds": 1.0, "min_rounds": 0}, r"min_rounds >= 1 .* got None, 0, 2$"),
        ({"a": lambda: None}, {"rounds": 1, "warmup": -1}, r"warmup >= 0, got 1, 5, -1$"),
    ],
    ids=["no-variants", "no-stopping-rule", "rounds-0", "min-rounds-0", "negative-warmup"],
)
def test_interleaved_argument_errors(variants: dict, kwargs: dict[str, Any], message: str) -> None:
    calls: list[str] = []
    with pytest.raises(ValueError, match=message):
        interleaved({name: (lambda n=name: calls.append(n)) for name in variants}, **kwargs)
    assert calls == [], "arguments are checked before anything runs"
