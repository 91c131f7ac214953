"""Runtime overhead and speed-up on CPU: ``ganrt.load(...).translate`` vs bare ONNX Runtime vs PyTorch eager.

For unet_256 and resnet_9blocks generators with random weights at 256x256, batch 1, this script exports the
ONNX model through ``ganrt.export.export`` (the real, parity-gated path) and measures, interleaved in one
process (every variant runs once per round, so drift of a shared machine hits all of them alike):

* ``ganrt``: ``model.translate(uint8 (256, 256, 3))`` -> uint8, the default backend (ONNX Runtime CPU)
  including the fused uint8 <-> [-1, 1] kernels;
* ``ort_bare``: ``InferenceSession.run`` on an already normalized float32 (1, 3, 256, 256) tensor, same ONNX
  file, same session settings (the overhead reference; target ganrt / ort_bare <= 1.10);
* ``torch_eager``: the same weights in stock PyTorch (``fused=False``), ``inference_mode``, network only on
  the normalized tensor (the speed-up reference; target torch_eager / ganrt >= 1.8);
* ``ganrt_torch``: ``ganrt.load(run_dir)`` (PyTorch with ganrt's fused ops), uint8 in/out, for information.

Writes benchmarks/results/runtime_cpu.json.
Usage: python benchmarks/runtime.py [--models unet_256,resnet_9blocks] [--rounds 20] [--max-seconds 120]
                                    [--workdir DIR] [--output PATH]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

import ganrt

RESULTS = Path(__file__).resolve().parent / "results" / "runtime_cpu.json"
MODELS = ("unet_256", "resnet_9blocks")
SIZE = 256
TARGETS = {"overhead_vs_bare_ort_max": 1.10, "speedup_vs_torch_eager_min": 1.8}


def _make_run(workdir: Path, arch: str) -> Path:
    """A run directory with a random-weight generator (reference defaults: ngf 64; U-Net batch norm)."""
    from ganrt.models import build_net, save_run

    run = workdir / f"run_{arch}"
    if (run / "config.json").is_file():
        return run
    torch.manual_seed(0)
    family = "pix2pix" if arch.startswith("unet") else "cyclegan"
    spec = {"arch": arch}
    nets = {"G": build_net(spec)} if family == "pix2pix" else {"G_A": build_net(spec), "G_B": build_net(spec)}
    config = {
        "family": family,
        "image_size": SIZE,
        "in_channels": 3,
        "out_channels": 3,
        "nets": {name: dict(net.spec) for name, net in nets.items()},
    }
    return save_run(run, config, nets)


def _export(run: Path, workdir: Path, arch: str) -> Path:
    from ganrt.export import export

    path = workdir / f"{arch}.onnx"
    if not path.is_file():
        export(run, output=path, parity_samples=1, progress=False)
    return path


def _bare_session(path: Path, threads: int) -> Any:
    """The ONNX Runtime session of ganrt's onnxruntime runner (same options ganrt uses), called directly below
    so the comparison isolates ganrt's own overhead."""
    from ganrt.backends.onnxruntime import OnnxRuntimeRunner

    return OnnxRuntimeRunner.load(path, device="cpu", threads=threads).session


def _stats(samples: list[float]) -> dict[str, float]:
    from ganrt.bench import latency_stats

    stats = latency_stats(samples, batch=1)
    return {k: stats[k] for k in ("median_ms", "mean_ms", "min_ms", "p90_ms", "max_ms")} | {"samples": stats["n"]}


def bench_model(arch: str, workdir: Path, rounds: int, max_seconds: float, progress: Any) -> dict[str, Any]:
    from ganrt.bench import interleaved
    from ganrt.data import sample_images
    from ganrt.models import Run

    run = _make_run(workdir, arch)
    onnx_path = _export(run, workdir, arch)
    model = ganrt.load(onnx_path)
    torch_model = ganrt.load(run)
    threads = model.info()["threads"]
    torch.set_num_threads(threads)
    session = _bare_session(onnx_path, threads)
    eager = Run.load(run).generator(fused=False)

    image = np.ascontiguousarray(sample_images(SIZE, 1)[0])
    normalized = (image.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None].copy()
    normalized_t = torch.from_numpy(normalized)
    input_name = session.get_inputs()[0].name

    def run_eager() -> Any:
        with torch.inference_mode():
            return eager(normalized_t)

    variants = {
        "ganrt": lambda: model.translate(image),
        "ort_bare": lambda: session.run(None, {input_name: normalized}),
        "torch_eager": run_eager,
        "ganrt_torch": lambda: torch_model.translate(image),
    }
    # Same weights, same answer: guard against timing something that computes a different thing.
    reference = session.run(None, {input_name: normalized})[0]
    np.testing.assert_allclose(run_eager().numpy(), reference, atol=1e-3)
    task = progress.add_task(arch, total=rounds)
    times = interleaved(
        variants,
        rounds=rounds,
        seconds=max_seconds,
        on_round=lambda _: progress.advance(task),
    )
    progress.remove_task(task)
    stats = {name: _stats(samples) for name, samples in times.items()}
    med = {name: s["median_ms"] for name, s in stats.items()}
    result = {
        "arch": arch,
        "size": SIZE,
        "batch": 1,
        "threads": threads,
        "backend": model.backend,
        "selected": model.info()["selected"],
        "latency": stats,
        "overhead_vs_bare_ort": med["ganrt"] / med["ort_bare"],
        "speedup_vs_torch_eager": med["torch_eager"] / med["ganrt"],
        "torch_fused_vs_eager": med["torch_eager"] / med["ganrt_torch"],
    }
    result["meets_overhead_target"] = result["overhead_vs_bare_ort"] <= TARGETS["overhead_vs_bare_ort_max"]
    result["meets_speedup_target"] = result["speedup_vs_torch_eager"] >= TARGETS["speedup_vs_torch_eager_min"]
    model.close()
    torch_model.close()
    return result


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from ganrt.bench.machine import machine_info
    from ganrt.utils import atomic_write

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {MODELS}")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds per model (default 20)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=180.0,
        help="stop a model's rounds after this long (at least 5 rounds run)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep run directories and ONNX exports here and reuse them (default: a temp dir)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    archs = [a for a in args.models.split(",") if a]
    unknown = sorted(set(archs) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {MODELS}")

    console = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="ganrt_bench_runtime_") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        with Progress(console=console, transient=True) as progress:
            results = [bench_model(arch, workdir, args.rounds, args.max_seconds, progress) for arch in archs]
    payload = {"benchmark": "runtime_cpu", "targets": TARGETS, "machine": machine_info(), "results": results}
    atomic_write(args.output, json.dumps(payload, indent=2) + "\n")

    table = Table(title=f"ganrt runtime, CPU, batch 1, {SIZE}x{SIZE} (median ms)")
    for column in (
        "model",
        "ganrt uint8",
        "bare ORT float",
        "torch eager",
        "ganrt torch",
        "ganrt/bare (<=1.10)",
        "eager/ganrt (>=1.8)",
    ):
        table.add_column(column, justify="right")
    for r in results:
        lat = r["latency"]
        table.add_row(
            r["arch"],
            *(f"{lat[k]['median_ms']:.1f}" for k in ("ganrt", "ort_bare", "torch_eager", "ganrt_torch")),
            f"{r['overhead_vs_bare_ort']:.3f}",
            f"{r['speedup_vs_torch_eager']:.2f}x",
        )
    console.print(table)
    console.print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
