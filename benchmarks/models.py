"""Model-level latency: the reference generators (Pix2Pix unet_256, CycleGAN resnet_9blocks) at 256x256.

Runs ``ganrt bench`` (``ganrt.bench.benchmark``) on each family with random weights, batch 1 and 8, every
backend in one process with interleaved rounds on the same inputs. On CPU that is PyTorch eager (ganrt's fused
ops inside), ONNX Runtime, OpenVINO fp32 and bf16 (bare peers, on CPUs with native bf16) and the ganrt runtime
(``ganrt.load`` with its own choice of backend and precision, named in the table); TensorRT is listed with the
reason it cannot run, and torch.compile is left out (compiling unet_256 takes minutes on 2 cores). On a CUDA
machine (``--device cuda``) every backend runs at fp32 and fp16 (see benchmarks/gpu.sh).

Writes benchmarks/results/models_cpu.json (``models_<gpu-name>.json`` on CUDA) and prints a markdown table.
Usage: python benchmarks/models.py [--device cpu|cuda] [--backends ...] [--precision fp32,fp16]
       [--batch 1,8] [--duration-s 4] [--output PATH]
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
GPU_BACKENDS = ("torch", "compile", "onnxruntime", "ganrt", "tensorrt")


def _csv(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def markdown(data: dict[str, Any]) -> str:
    """README table: one row per (model, precision, batch, backend)."""
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
    skipped = sorted(
        {
            f"{r['backend']} ({r['status']}: {r['reason']})"
            for report in data["reports"]
            for r in report["results"]
            if r["status"] != "ok"
        }
    )
    if skipped:
        lines += ["", "Not run: " + "; ".join(skipped) + "."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument(
        "--backends",
        type=_csv,
        default=None,
        help=f"default {','.join(CPU_BACKENDS)} on CPU, {','.join(GPU_BACKENDS)} on CUDA",
    )
    parser.add_argument("--precision", type=_csv, default=None, help="default fp32 on CPU, fp32,fp16 on CUDA")
    parser.add_argument("--batch", type=lambda s: tuple(int(b) for b in _csv(s)), default=(1, 8))
    parser.add_argument("--families", type=_csv, default=FAMILIES, help="default pix2pix,cyclegan")
    parser.add_argument("--duration-s", type=float, default=4.0, help="measured seconds per backend and case")
    parser.add_argument("--warmup-s", type=float, default=1.0)
    parser.add_argument("--min-iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
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
    reports = []
    # ganrt's backend selection and OpenVINO's compiled models start from an empty cache, so ganrt's cold
    # start is a first load (trial and compilation included) wherever this runs.
    cache = tempfile.TemporaryDirectory(prefix="ganrt-models-cache-")
    os.environ["GANRT_CACHE_DIR"] = cache.name
    for family in args.families:
        settings = BenchSettings(
            backends=backends,
            batches=args.batch,
            size=256,
            precisions=precisions,
            device=args.device,
            warmup_s=args.warmup_s,
            duration_s=args.duration_s,
            min_iters=args.min_iters,
            threads=args.threads,
        )
        reports.append(benchmark(family, settings, progress=sys.stderr.isatty()))
    cache.cleanup()
    machine = reports[0]["machine"]
    command = "python benchmarks/models.py" + (
        "" if argv is None and len(sys.argv) == 1 else " " + " ".join(sys.argv[1:] if argv is None else argv)
    )
    data = {
        "benchmark": "models",
        "command": command,
        "device": args.device,
        "duration_s": args.duration_s,
        "threads": reports[0]["settings"]["threads"],
        "machine": machine,
        "reports": reports,
    }
    output = args.output or RESULTS / f"models_{device_slug(machine) if cuda else 'cpu'}.json"
    write_json(data, output)
    print(markdown(data))
    return data


if __name__ == "__main__":
    main()
