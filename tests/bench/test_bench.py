"""``ganrt bench`` end to end on tiny models (CPU), plus its statistics, memory and machine helpers.

One CLI run (a 32 px CycleGAN generator with ngf 4, batches 1 and 2, every LoadGen scenario) is shared by the
report tests; its exported ONNX model is reused for the artifact and pre/post-processing paths.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from ganrt.bench.core import BenchSettings, benchmark
from ganrt.bench.memory import BackendMemory
from ganrt.bench.render import print_report
from ganrt.bench.stats import latency_stats
from ganrt.cli import main

BACKENDS = ["torch", "onnxruntime", "ganrt", "tensorrt"]
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


def test_unavailable_backend_reports_its_reason(cli_run: dict[str, Any]) -> None:
    trt = [r for r in cli_run["report"]["results"] if r["backend"] == "tensorrt"]
    assert len(trt) == len(BATCHES)
    for r in trt:
        assert r["status"] == "unavailable"
        assert "CUDA" in r["reason"] and "--device is cpu" in r["reason"]
        assert "latency_ms" not in r


def test_latency_fields_and_percentile_order(cli_run: dict[str, Any]) -> None:
    ok = _ok(cli_run["report"])
    assert {r["backend"] for r in ok} == {"torch", "onnxruntime", "ganrt"}
    for r in ok:
        lat = r["latency_ms"]
        assert set(LATENCY_KEYS) <= set(lat), r["backend"]
        assert lat["n"] >= 3
        values = [lat[k] for k in ORDERED]
        assert values == sorted(values), (r["backend"], values)
        assert lat["min_ms"] > 0
        assert lat["min_ms"] <= lat["mean_ms"] <= lat["max_ms"]
        assert lat["cv"] == pytest.approx(lat["std_ms"] / lat["mean_ms"])
        curve = lat["curve_ms"]
        assert len(curve) == 101 and curve == sorted(curve)
        assert curve[0] == lat["min_ms"] and curve[-1] == lat["max_ms"] and curve[50] == lat["median_ms"]
        # Throughput is samples over measured time, so it follows from n, batch and total.
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
        assert mem["footprint_mb"] == pytest.approx(mem["load_mb"] + mem["working_mb"], abs=0.11)
        agreement = r["agreement"]
        assert agreement["reference"] == "torch" and agreement["output"] == "output"
        assert agreement["max_abs_diff"] < 1e-4, r["backend"]
    onnx_backends = [r for r in _ok(cli_run["report"]) if r["backend"] != "torch"]
    # The ONNX model is exported once and shared by onnxruntime and ganrt.
    assert all(r["build_s"] > 0 for r in onnx_backends)


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
        # Both take uint8 pictures and return uint8 pictures: agreement is in 8-bit levels.
        assert r["agreement"]["reference"] == "onnxruntime" and r["agreement"]["max_abs_diff"] <= 1
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
        backends=("torch", "onnxruntime", "ganrt"),
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
    for backend in ("torch", "onnxruntime", "ganrt"):
        r = by[backend]
        assert r["status"] == "ok", r["reason"]
        assert r["agreement"]["output"] == "image" and r["agreement"]["max_abs_diff"] <= 1
    assert {"compute", "post"} <= set(by["torch"]["phases_ms"]) and "pre" not in by["torch"]["phases_ms"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nosuchmodel"], "neither a family nor an existing path"),
        (["cyclegan", "--backends", "torch,fast"], "unknown fast"),
        (["cyclegan", "--batch", "0"], "batches must be"),
        (["cyclegan", "--device", "cuda"], "CUDA"),
        (["cyclegan", "--ngf", "4", "--size", "30"], "multiple of 4"),
        (["cyclegan", "--scenario", "multi-stream"], "unknown multi-stream"),
    ],
    ids=["missing-model", "unknown-backend", "batch-0", "no-cuda", "bad-size", "unknown-scenario"],
)
def test_cli_errors_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", *argv, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganrt bench: error:") and message in err
    assert len(err.splitlines()) == 1


def test_latency_stats_orders_percentiles() -> None:
    rng = np.random.default_rng(0)
    seconds = rng.lognormal(-5, 0.5, 1000).tolist()
    stats = latency_stats(seconds, batch=4)
    values = [stats[k] for k in ORDERED]
    assert values == sorted(values)
    ms = np.asarray(seconds) * 1e3
    assert stats["median_ms"] == pytest.approx(float(np.median(ms)))
    assert stats["p99_ms"] == pytest.approx(float(np.percentile(ms, 99)))
    assert stats["cv"] == pytest.approx(float(ms.std() / ms.mean()))
    assert stats["throughput_sps"] == pytest.approx(4 * 1000 / ms.sum() * 1e3)
    constant = latency_stats([0.01] * 5, batch=1)
    assert constant["cv"] == 0 and constant["p99_ms"] == pytest.approx(10.0)
    with pytest.raises(ValueError, match="at least one sample"):
        latency_stats([], batch=1)
    with pytest.raises(ValueError, match="batch must be >= 1"):
        latency_stats([0.1], batch=0)


def test_memory_tracks_load_and_transient_growth() -> None:
    mem = BackendMemory(cuda=False)
    with mem.track(load=True):
        kept = np.ones(64 * 2**20 // 8)  # 64 MiB that stays resident, like a loaded model
    with mem.track():
        transient = np.ones(96 * 2**20 // 8)  # 96 MiB of activations, freed at the end of the call
        transient.sum()
        del transient
    result = mem.result()
    assert result["load_mb"] >= 56
    if result["method"] == "VmHWM":
        # Only the kernel's peak counter sees memory freed before the stretch ended.
        assert result["working_mb"] >= 80
    assert kept.sum() > 0
