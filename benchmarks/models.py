"""Model-level latency: the reference generators (Pix2Pix unet_256, CycleGAN resnet_9blocks) at 256x256.

Runs ``ganrt bench`` (``ganrt.bench.benchmark``) on each family with random weights, batch 1 and 8, every
backend in one process with interleaved rounds on the same inputs. On CPU that is PyTorch eager (ganrt's fused
ops inside), ONNX Runtime, OpenVINO fp32 and bf16 (bare peers; bf16 on CPUs with native bf16) and the ganrt
runtime (``ganrt.load`` with its own choice of backend and precision, named in the table); TensorRT is listed
with the reason it cannot run, and torch.compile is left out (compiling unet_256 takes minutes on 2 cores).
ganrt's backend selection and OpenVINO's compiled models start from an empty cache folder, so ganrt's cold
start is a first load (trial and compilation included).

On a CUDA machine (``--device cuda``, see benchmarks/gpu.sh) the default is the GPU comparison: uint8 pictures
in, uint8 pictures out, PyTorch eager (stock layers) at fp32 and fp16 against ``ganrt.load(run_dir,
device="cuda", precision=...)`` (``ganrt-torch``: fused ops, channels_last for fp16, a CUDA graph per shape,
the runtime's pre/post kernels on its stream), then torch.compile (``--compile-mode``) at
``--compile-precision`` and ``--compile-batch`` only, since each compile takes tens of seconds. The file is
rewritten after every benchmark, so a run stopped by a time limit keeps what it finished.

Writes benchmarks/results/models_cpu.json (``models_<gpu-name>.json`` on CUDA) and prints a markdown table.
Usage: python benchmarks/models.py [--device cpu|cuda] [--backends ...] [--precision fp32,fp16]
       [--batch 1,8] [--duration-s 4] [--compile-mode default] [--compile-precision fp16]
       [--compile-batch 1] [--output PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
FAMILIES = ("pix2pix", "cyclegan")
CPU_BACKENDS = ("torch", "onnxruntime", "openvino", "openvino-bf16", "ganrt", "tensorrt")
GPU_BACKENDS = ("eager", "ganrt-torch")
# The GPU targets (issue #14), reported, not asserted: unet_256, batch 1, uint8 -> uint8, fp16 with CUDA graphs.
GPU_TARGET = {"arch": "unet_256", "batch": 1, "backend": "ganrt-torch", "precision": "fp16"}
GPU_TARGET_P50_MS = 1.5
GPU_TARGET_SPEEDUP = 5.0


def _not_run(data: dict[str, Any], fmt: str) -> list[str]:
    """A "Not run: ..." line naming each result that did not run (``fmt`` over its fields), or nothing."""
    skipped = sorted(
        {fmt.format(**r) for report in data["reports"] for r in report["results"] if r["status"] != "ok"}
    )
    return ["", "Not run: " + "; ".join(skipped) + "."] if skipped else []


def _csv(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def _find(data: dict[str, Any], arch: str, batch: int, backend: str, precision: str) -> dict[str, Any] | None:
    for report in data["reports"]:
        if report["target"]["arch"] != arch:
            continue
        for r in report["results"]:
            if (r["batch"], r["backend"], r["precision"], r["status"]) == (batch, backend, precision, "ok"):
                return r
    return None


def gpu_targets(data: dict[str, Any]) -> dict[str, Any]:
    """The unet_256 batch-1 fp16 targets: p50 and the speedup over PyTorch eager fp32 (None when not run)."""
    t = GPU_TARGET
    fast = _find(data, t["arch"], t["batch"], t["backend"], t["precision"])
    eager = _find(data, t["arch"], t["batch"], "eager", "fp32")
    p50 = fast["latency_ms"]["median_ms"] if fast else None
    speedup = eager["latency_ms"]["median_ms"] / p50 if fast and eager else None
    return {
        "p50_ms": {
            "target": GPU_TARGET_P50_MS,
            "measured": p50,
            "met": p50 is not None and p50 <= GPU_TARGET_P50_MS,
        },
        "speedup_vs_eager_fp32": {
            "target": GPU_TARGET_SPEEDUP,
            "measured": speedup,
            "met": speedup is not None and speedup >= GPU_TARGET_SPEEDUP,
        },
    }


def _gpu_markdown(data: dict[str, Any]) -> str:
    """One row per (model, batch, backend, precision); the speedup is over PyTorch eager fp32."""
    gpu = data["machine"]["gpus"][0]
    libraries = data["machine"]["libraries"]
    intro = (
        f"Model level, 256×256, random weights, uint8 pictures in and out, {gpu['name']} (driver "
        f"{gpu.get('driver', '?')}, CUDA {gpu.get('cuda_runtime', '?')}); torch {libraries.get('torch', '?')}. "
        f"eager = stock PyTorch layers; ganrt-torch = `ganrt.load(run_dir, device='cuda', precision=...)` "
        f"(fused ops, CUDA graph per shape, channels_last for fp16); compile = torch.compile "
        f"({data.get('compile_mode', 'default')}). Latency in ms per call, host to host, interleaved rounds "
        f"({data['duration_s']:g} s per backend and case). Reproduce: `{data['command']}`."
    )
    lines = [
        intro,
        "",
        "| model | batch | backend | precision | median ms | p90 | p99 | images/s | cold s | × eager fp32 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = []
    for report in data["reports"]:
        arch = report["target"]["arch"]
        for r in report["results"]:
            if r["status"] != "ok":
                continue
            base = _find(data, arch, r["batch"], "eager", "fp32")
            lat = r["latency_ms"]
            speedup = base["latency_ms"]["median_ms"] / lat["median_ms"] if base else None
            row = (
                f"| {arch} | {r['batch']} | {r['backend']} | {r['precision']} | {_fmt(lat['median_ms'])} | "
                f"{_fmt(lat['p90_ms'])} | {_fmt(lat['p99_ms'])} | {_fmt(r['throughput_sps'])} | "
                f"{r['cold_start_s']:.1f} | {_fmt(speedup) + '×' if speedup else '–'} |"
            )
            rows.append(((arch, r["batch"], r["backend"], r["precision"]), row))
    lines += [row for _, row in sorted(rows)]
    targets = data.get("targets") or gpu_targets(data)
    p50, speedup = targets["p50_ms"], targets["speedup_vs_eager_fp32"]
    p50_row = f"| p50 latency | ≤ {p50['target']} ms | {_fmt(p50['measured'])} ms | {'yes' if p50['met'] else 'no'} |"
    speedup_row = (
        f"| speedup over PyTorch eager fp32 | ≥ {speedup['target']}× | {_fmt(speedup['measured'])}× | "
        f"{'yes' if speedup['met'] else 'no'} |"
    )
    lines += [
        "",
        "| target (unet_256, batch 1, fp16, CUDA graphs, uint8 → uint8) | required | measured | met |",
        "|---|---|---|---|",
        p50_row,
        speedup_row,
    ]
    return "\n".join(lines + _not_run(data, "{backend} {precision} batch {batch} ({status}: {reason})"))


def markdown(data: dict[str, Any]) -> str:
    """README table: one row per (model, precision, batch, backend)."""
    if data.get("device", "cpu") != "cpu" and data["machine"].get("gpus"):
        return _gpu_markdown(data)
    machine = data["machine"]
    gpu = machine["gpus"][0]["name"] if machine.get("gpus") else None
    device = (
        f"{gpu} (driver {machine['gpus'][0].get('driver', '?')})"
        if gpu
        else (f"{machine['cpu']}, {data['threads']} threads")
    )
    libraries = machine["libraries"]
    intro = (
        f"Model level, 256×256, random weights, {data['device']}: {device}; "
        f"torch {libraries.get('torch', '?')}, onnxruntime {libraries.get('onnxruntime', '?')}, "
        f"openvino {libraries.get('openvino', '–')}. "
        f"Latency in ms (interleaved rounds, {data['duration_s']:g} s per backend and case); "
        f"cold = load + first inference. Reproduce: `{data['command']}`."
    )
    header = (
        "| model | precision | batch | backend | median ms | p90 | p99 | CV | images/s | cold s | memory MiB "
        "| × torch |"
    )
    lines = [intro, "", header, "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for report in data["reports"]:
        arch = report["target"]["arch"]
        results = report["results"]
        for r in results:
            if r["status"] != "ok":
                continue
            base = next(
                (
                    x
                    for x in results
                    if x["backend"] == "torch"
                    and x["batch"] == r["batch"]
                    and x["precision"] == r["precision"]
                    and x["status"] == "ok"
                ),
                None,
            )
            lat = r["latency_ms"]
            mem = r["memory"].get("cuda_footprint_mb", r["memory"]["footprint_mb"])
            speedup = base["latency_ms"]["median_ms"] / lat["median_ms"] if base else None
            backend = r["backend"]
            info = r.get("info") or {}
            if backend == "ganrt" and "backend" in info:  # the runtime's own choice
                backend += f" ({info['backend']} {info.get('precision', '')})".rstrip()
            lines.append(
                f"| {arch} | {r['precision']} | {r['batch']} | {backend} | {_fmt(lat['median_ms'])} | "
                f"{_fmt(lat['p90_ms'])} | {_fmt(lat['p99_ms'])} | {lat['cv']:.0%} | "
                f"{_fmt(r['throughput_sps'])} | {r['cold_start_s']:.2f} | {mem:.0f} | "
                f"{_fmt(speedup) + '×' if speedup else '–'} |"
            )
    return "\n".join(lines + _not_run(data, "{backend} ({status}: {reason})"))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument(
        "--backends",
        type=_csv,
        default=None,
        help=f"default {','.join(CPU_BACKENDS)} on CPU, {','.join(GPU_BACKENDS)} (uint8 in and out) on CUDA",
    )
    parser.add_argument("--precision", type=_csv, default=None, help="default fp32 on CPU, fp32,fp16 on CUDA")
    parser.add_argument("--batch", type=lambda s: tuple(int(b) for b in _csv(s)), default=(1, 8))
    parser.add_argument("--families", type=_csv, default=FAMILIES, help="default pix2pix,cyclegan")
    parser.add_argument("--duration-s", type=float, default=None, help="measured seconds per backend and case "
                        "(default 4 on CPU, 1 on CUDA)")  # fmt: skip
    parser.add_argument("--warmup-s", type=float, default=None, help="default 1 on CPU, 0.3 on CUDA")
    parser.add_argument("--min-iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--include-io", action="store_true", help="uint8 in and out (always on CUDA)")
    parser.add_argument("--compile-mode", default="default", help="torch.compile mode of the compile runs")
    parser.add_argument(
        "--compile-precision",
        type=_csv,
        default=None,
        help="CUDA: precisions of the compile runs (default fp16)",
    )
    parser.add_argument(
        "--compile-batch",
        type=lambda s: tuple(int(b) for b in _csv(s)),
        default=(1,),
        help="CUDA: batches of the compile runs (default 1; empty list: none)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="default benchmarks/results/models_cpu.json or models_<gpu>.json",
    )
    args = parser.parse_args(argv)

    from ganrt.bench import BenchSettings, benchmark
    from ganrt.bench.machine import device_slug
    from ganrt.bench.render import write_json

    cuda = args.device != "cpu"
    backends = args.backends or (GPU_BACKENDS if cuda else CPU_BACKENDS)
    precisions = args.precision or (("fp32", "fp16") if cuda else ("fp32",))
    duration = args.duration_s if args.duration_s is not None else (1.0 if cuda else 4.0)
    warmup = args.warmup_s if args.warmup_s is not None else (0.3 if cuda else 1.0)
    command = "python benchmarks/models.py" + (
        "" if argv is None and len(sys.argv) == 1 else " " + " ".join(sys.argv[1:] if argv is None else argv)
    )
    plan = [(family, backends, precisions, args.batch) for family in args.families]
    if cuda and args.compile_batch:
        compile_precisions = args.compile_precision or ("fp16",)
        plan += [(family, ("compile",), compile_precisions, args.compile_batch) for family in args.families]
    data: dict[str, Any] = {
        "benchmark": "models",
        "command": command,
        "device": args.device,
        "duration_s": duration,
        "compile_mode": args.compile_mode,
        "reports": [],
    }
    output = args.output
    cache = tempfile.TemporaryDirectory(prefix="ganrt-models-cache-")
    os.environ["GANRT_CACHE_DIR"] = cache.name
    for family, names, precs, batches in plan:
        settings = BenchSettings(
            backends=tuple(names),
            batches=tuple(batches),
            size=256,
            precisions=tuple(precs),
            device=args.device,
            warmup_s=warmup,
            duration_s=duration,
            min_iters=args.min_iters,
            threads=args.threads,
            include_io=cuda or args.include_io,
            compile_mode=args.compile_mode,
        )
        report = benchmark(family, settings, progress=sys.stderr.isatty())
        data["reports"].append(report)
        data["machine"] = data["reports"][0]["machine"]
        data["threads"] = data["reports"][0]["settings"]["threads"]
        if cuda:
            data["targets"] = gpu_targets(data)
        if output is None:
            output = RESULTS / f"models_{device_slug(data['machine']) if cuda else 'cpu'}.json"
        write_json(data, output)  # after every benchmark: a run cut short keeps what it finished
    cache.cleanup()
    print(markdown(data))
    return data


if __name__ == "__main__":
    main()
