"""CPU runtime: ``ganrt.load(...).translate`` against the bare peers; overhead, quality and load times.

For the unet_256 (Pix2Pix) and resnet_9blocks (CycleGAN) generators with random weights at 256x256, this
exports the ONNX model through ``ganrt.export.export`` (the real, parity-gated path) and measures, interleaved
in one process with torch imported and its thread pool warmed (every variant once per round, in a rotating
order, after a short idle pause so that no backend's still-spinning thread pool lands on the next variant;
drift of a shared machine hits all variants alike), at batch 1 and 8:

bare peers, on an already normalized float32 tensor:

* ``ort_fp32``: ``InferenceSession.run`` with the session options ganrt uses;
* ``openvino_fp32`` / ``openvino_bf16``: OpenVINO compiled straight from the ONNX file (LATENCY hint, the same
  thread count), one infer request, inputs and outputs shared with numpy; bf16 only on CPUs with native bf16;
* ``torch_bf16`` (batch 1): stock PyTorch modules under bf16 autocast, channels_last;
* ``torch_fp32`` (batch 1): the fused-op generator that ganrt's torch backend runs.

ganrt, uint8 pictures in and out (pre/post-processing included):

* ``ganrt``: ``ganrt.load(onnx)`` with every choice left to it (``backend="auto"``; its record in the cache);
* ``ganrt_onnxruntime`` / ``ganrt_openvino_fp32`` / ``ganrt_openvino_bf16`` / ``ganrt_torch`` (batch 1):
  each backend forced, for its overhead against the matching bare call.

Also per model: PSNR on real bundled images (ganrt's default vs the fp32 PyTorch model, as uint8 pictures;
the bf16 peers vs fp32), the first and second ``ganrt.load`` in fresh processes (cold: backend trial +
compilation; warm: the selection record + OpenVINO's compiled-model cache), and achieved TFLOP/s against this
CPU's peak.

Writes benchmarks/results/runtime_cpu.json.
Usage: python benchmarks/runtime.py [--models unet_256,resnet_9blocks] [--batches 1,8] [--rounds 20]
                                    [--max-seconds 300] [--threads N] [--clock-ghz GHZ] [--workdir DIR]
                                    [--output PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results" / "runtime_cpu.json"
MODELS = ("unet_256", "resnet_9blocks")
SIZE = 256
# Idle seconds before each timed call (see ganrt.bench.timing.interleaved's settle_s).
SETTLE_S = 0.02
TARGETS = {
    # ganrt.load(onnx).translate(uint8) over the best bare peer (ORT fp32, OpenVINO fp32, OpenVINO bf16 when
    # its PSNR against fp32 is >= 40 dB), batch 1 and 8
    "default_vs_best_peer_max": 1.05,
    # each backend forced through ganrt, uint8 in and out, over the same backend's bare call on a float tensor
    "overhead_vs_bare_max": 1.05,
    # ORT fp32 over ganrt's default
    "speedup_vs_ort_min": {"unet_256": 1.3, "resnet_9blocks": 5.0},
    # ganrt's default vs the fp32 PyTorch model on real bundled images (uint8 pictures)
    "psnr_vs_pytorch_min_db": 40.0,
}
# bare peer -> the ganrt variant that forces the same backend
PAIRS = {
    "ort_fp32": "ganrt_onnxruntime",
    "openvino_fp32": "ganrt_openvino_fp32",
    "openvino_bf16": "ganrt_openvino_bf16",
    "torch_fp32": "ganrt_torch",
}
PEERS = ("ort_fp32", "openvino_fp32", "openvino_bf16")


# ------------------------------------------------------------------------------------------------ models


def _make_run(workdir: Path, arch: str) -> Path:
    """A run directory with the random-weight reference generator of the family whose reference ``arch`` is
    (built by ``ganrt bench``'s family target: seeded, reference widths and norms)."""
    from ganrt.bench.target import resolve_target
    from ganrt.families import family

    name = next(f for f in ("pix2pix", "cyclegan") if family(f).reference_spec["arch"] == arch)
    return resolve_target(name, size=SIZE, width=None, workdir=workdir).run_dir


def _export(run: Path, workdir: Path, arch: str) -> Path:
    from ganrt.export import export

    path = workdir / f"{arch}.onnx"
    if not path.is_file():
        export(run, output=path, parity_samples=1, progress=False)
    return path


def conv_macs(net: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of the convolutions (which are nearly all of a generator's arithmetic)."""
    total = 0

    def hook(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        if isinstance(module, torch.nn.ConvTranspose2d):
            total += inputs[0].numel() * (module.out_channels // module.groups) * kh * kw
        else:
            total += output.numel() * (module.in_channels // module.groups) * kh * kw

    handles = [
        m.register_forward_hook(hook)
        for m in net.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
    ]
    try:
        with torch.inference_mode():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return total


# ------------------------------------------------------------------------------------------------ the CPU


def cpu_peak(clock_ghz: float, cores: int) -> dict[str, Any]:
    """Theoretical fp32 and bf16 FLOP/s of ``cores`` cores at ``clock_ghz``, from the instruction sets.

    Per core and cycle: AMX-BF16 2048 bf16 flop (Intel, the figure the issue states) and two 512-bit FMA
    units (64 fp32 flop); AMD Zen 4/5 (AVX-512 on 256-bit units: two 8-lane FMAs, 32 fp32 flop, or two
    VDPBF16PS, each 8 lanes of 2 products and 2 sums, 64 bf16 flop); other AVX-512 64 fp32 (128 bf16 with
    AVX512_BF16), AVX2 32 fp32.
    """
    from ganrt.backends.device import cpu_flags, cpu_model

    flags = cpu_flags() or frozenset()
    amd = "AMD" in cpu_model() or "EPYC" in cpu_model() or "Ryzen" in cpu_model()
    if "amx_bf16" in flags:
        fp32, bf16, isa = 64, 2048, "AMX-BF16, 2x512-bit FMA"
    elif "avx512f" in flags and amd:
        fp32, bf16, isa = 32, (64 if "avx512_bf16" in flags else None), "AVX-512 on 2x256-bit units (Zen 4/5)"
    elif "avx512f" in flags:
        fp32, bf16, isa = 64, (128 if "avx512_bf16" in flags else None), "AVX-512, 2x512-bit FMA"
    else:
        fp32, bf16, isa = 32, None, "AVX2, 2x256-bit FMA"
    per_s = clock_ghz * 1e9 * cores
    return {
        "clock_ghz": clock_ghz,
        "cores": cores,
        "isa": isa,
        "fp32_flop_per_cycle_core": fp32,
        "bf16_flop_per_cycle_core": bf16,
        "fp32_tflops": fp32 * per_s / 1e12,
        "bf16_tflops": bf16 * per_s / 1e12 if bf16 else None,
    }


def nominal_clock_ghz() -> float:
    """The clock the kernel reports (``cpu MHz``; in a VM the nominal/TSC rate, without boost)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return float(line.split(":", 1)[1]) / 1e3
    except OSError:
        pass
    return 2.5


# ------------------------------------------------------------------------------------------------ load times

_LOAD_PROBE = """
import json, sys, time
import onnxruntime, openvino, torch  # the frameworks, so that only the load is timed
import ganrt.runtime.loader, ganrt.runtime.select, ganrt.backends.onnxruntime, ganrt.backends.openvino
import ganrt
t0 = time.perf_counter()
model = ganrt.load(sys.argv[1], threads=int(sys.argv[2]), **json.loads(sys.argv[3]))
load_s = time.perf_counter() - t0
info = model.info()
selection = info.get("selection", {})
print(json.dumps({"load_s": load_s, "backend": info["backend"], "precision": info["precision"],
                  "record": (selection.get("cache") or {}).get("status"),
                  "trial": selection.get("trial"), "loaded_from_cache": info.get("loaded_from_cache")}))
"""


def load_times(path: Path, threads: int, cache: Path, options: dict[str, Any]) -> dict[str, Any]:
    """``ganrt.load`` in two fresh processes sharing a fresh cache folder: the first (cold) and second
    load."""
    env = dict(os.environ, GANRT_CACHE_DIR=str(cache))
    runs = []
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-c", _LOAD_PROBE, str(path), str(threads), json.dumps(options)],
            env=env, capture_output=True, text=True, check=True, timeout=900,
        )  # fmt: skip
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {"options": options, "first": runs[0], "second": runs[1]}


# ------------------------------------------------------------------------------------------------ one model


def _stats(samples: list[float], batch: int) -> dict[str, float]:
    from ganrt.bench import latency_stats

    stats = latency_stats(samples, batch=batch)
    keep = ("median_ms", "mean_ms", "min_ms", "p90_ms", "max_ms", "cv")
    return {k: stats[k] for k in keep} | {"samples": stats["n"], "images_per_s": stats["throughput_sps"]}


def _bare_openvino(path: Path, threads: int, precision: str) -> Any:
    """OpenVINO as a user would call it directly: the model compiled from the ONNX file (with the settings of
    ganrt's runner, no compiled-model cache) and one infer request of its own."""
    from ganrt.backends.openvino import OpenVinoRunner

    return OpenVinoRunner.load(path, threads=threads, precision=precision).compiled.create_infer_request()


def _variants(
    images: np.ndarray,
    *,
    session: Any,
    requests: dict[str, Any],
    models: dict[str, Any],
    torch_nets: tuple[torch.nn.Module, torch.nn.Module],
) -> dict[str, Any]:
    """The timed calls for one batch of uint8 ``images``: bare peers on the normalized tensor, ganrt on the
    pictures. Above batch 1 only the peers and ganrt's default (the throughput target): the per-backend
    overhead and the torch variants are measured at batch 1, where a round is short enough for many rounds."""
    from ganrt.ops import images_to_tensor_ref

    batch = len(images)
    normalized = images_to_tensor_ref(torch.from_numpy(images))
    flat = normalized.numpy()
    variants: dict[str, Any] = {"ort_fp32": lambda: session.run(None, {"image": flat})}
    for name, request in requests.items():
        variants[name] = lambda r=request: r.infer({0: flat}, share_inputs=True, share_outputs=True)
    for name, model in models.items():
        if name == "ganrt" or batch == 1:
            variants[name] = lambda m=model: m.translate(images)
    if batch == 1:
        fused, stock_cl = torch_nets
        channels_last = normalized.contiguous(memory_format=torch.channels_last)

        def run_torch(net: torch.nn.Module, t: torch.Tensor, bf16: bool) -> Any:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return net(t)

        variants["torch_fp32"] = lambda: run_torch(fused, normalized, False)
        variants["torch_bf16"] = lambda: run_torch(stock_cl, channels_last, True)
    return variants


def bench_model(
    arch: str,
    workdir: Path,
    *,
    batches: list[int],
    rounds: int,
    max_seconds: float,
    threads: int,
    progress: Any,
) -> dict[str, Any]:
    import ganrt
    from ganrt.backends.onnxruntime import OnnxRuntimeRunner
    from ganrt.backends.openvino import native_bf16
    from ganrt.bench import interleaved
    from ganrt.data import sample_images
    from ganrt.models import Run
    from ganrt.ops import images_to_tensor_ref, tensor_to_images_ref
    from ganrt.utils import psnr

    run = _make_run(workdir, arch)
    onnx_path = _export(run, workdir, arch)
    bf16_ok, bf16_why = native_bf16()
    session = OnnxRuntimeRunner.load(onnx_path, device="cpu", threads=threads).session
    requests = {"openvino_fp32": _bare_openvino(onnx_path, threads, "fp32")}
    if bf16_ok:
        requests["openvino_bf16"] = _bare_openvino(onnx_path, threads, "bf16")
    stock = Run.load(run).generator(fused=False).eval()
    fused = Run.load(run).generator(fused=True).eval()
    stock_cl = Run.load(run).generator(fused=False).eval().to(memory_format=torch.channels_last)

    models = {
        "ganrt": ganrt.load(onnx_path, threads=threads),
        "ganrt_onnxruntime": ganrt.load(onnx_path, backend="onnxruntime", threads=threads),
        "ganrt_openvino_fp32": ganrt.load(onnx_path, backend="openvino", precision="fp32", threads=threads),
        "ganrt_torch": ganrt.load(run, threads=threads),
    }
    if bf16_ok:
        models["ganrt_openvino_bf16"] = ganrt.load(
            onnx_path, backend="openvino", precision="bf16", threads=threads
        )
    chosen = models["ganrt"].info()

    # ---- quality, on real bundled photos
    photos = np.ascontiguousarray(sample_images(SIZE, 3))
    x = images_to_tensor_ref(torch.from_numpy(photos))
    with torch.inference_mode():
        reference = stock(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch_bf16_out = stock_cl(x.contiguous(memory_format=torch.channels_last)).float()
    reference_u8 = tensor_to_images_ref(reference).numpy()
    ort_out = session.run(None, {"image": x.numpy()})[0]
    quality = {
        "images": "3 bundled photos (ganrt.data.sample_images), 256x256",
        "ganrt_default_vs_pytorch_fp32_db": psnr(reference_u8, models["ganrt"].translate(photos), 255.0),
        "ort_fp32_vs_pytorch_fp32_db": psnr(reference.numpy(), ort_out, 2.0),
        "torch_bf16_vs_fp32_db": psnr(reference.numpy(), torch_bf16_out.numpy(), 2.0),
    }
    if bf16_ok:
        ov_bf16 = requests["openvino_bf16"].infer({0: x.numpy()})[0]
        quality["openvino_bf16_vs_fp32_db"] = psnr(ort_out, np.asarray(ov_bf16), 2.0)
    eligible = [
        p for p in PEERS if p != "openvino_bf16" or quality.get("openvino_bf16_vs_fp32_db", 0) >= 40.0
    ]

    macs = conv_macs(stock, torch.zeros(1, 3, SIZE, SIZE))
    torch.set_num_threads(threads)
    with torch.inference_mode():  # torch's OpenMP team awake, as in any process that uses torch
        stock(torch.zeros(1, 3, SIZE, SIZE))

    cases = []
    for batch in batches:
        images = np.ascontiguousarray(sample_images(SIZE, batch))
        variants = _variants(
            images, session=session, requests=requests, models=models, torch_nets=(fused, stock_cl)
        )
        task = progress.add_task(f"{arch} batch {batch}", total=rounds)
        times = interleaved(
            variants,
            rounds=rounds,
            seconds=max_seconds,
            min_rounds=3,
            warmup=1,
            settle_s=SETTLE_S,
            on_round=lambda _, task=task: progress.advance(task),
        )
        progress.remove_task(task)
        latency = {name: _stats(samples, batch) for name, samples in times.items()}
        med = {name: s["median_ms"] for name, s in latency.items()}
        best = min(eligible, key=lambda p: med[p] if p in med else float("inf"))
        case: dict[str, Any] = {
            "batch": batch,
            "latency": latency,
            "tflops": {name: 2 * macs * batch / (m * 1e-3) / 1e12 for name, m in med.items()},
            "best_peer": best,
            "default_vs_best_peer": med["ganrt"] / med[best],
            "speedup_vs_ort_fp32": med["ort_fp32"] / med["ganrt"],
            "overhead_vs_bare": {
                PAIRS[bare]: med[PAIRS[bare]] / med[bare]
                for bare in PAIRS
                if bare in med and PAIRS[bare] in med
            },
        }
        case["meets_default_target"] = case["default_vs_best_peer"] <= TARGETS["default_vs_best_peer_max"]
        case["meets_overhead_target"] = all(
            v <= TARGETS["overhead_vs_bare_max"] for v in case["overhead_vs_bare"].values()
        )
        case["meets_speedup_target"] = case["speedup_vs_ort_fp32"] >= TARGETS["speedup_vs_ort_min"][arch]
        cases.append(case)

    for model in models.values():
        model.close()
    loads = {
        "default": load_times(
            onnx_path, threads, Path(tempfile.mkdtemp(prefix="ganrt-load-", dir=workdir)), {}
        ),
    }
    if bf16_ok:
        loads["openvino_bf16"] = load_times(
            onnx_path, threads, Path(tempfile.mkdtemp(prefix="ganrt-load-", dir=workdir)),
            {"backend": "openvino", "precision": "bf16"},
        )  # fmt: skip
    loads["onnxruntime"] = load_times(
        onnx_path,
        threads,
        Path(tempfile.mkdtemp(prefix="ganrt-load-", dir=workdir)),
        {"backend": "onnxruntime"},
    )
    return {
        "arch": arch,
        "size": SIZE,
        "threads": threads,
        "gmacs": macs / 1e9,
        "choice": {
            "backend": chosen["backend"],
            "precision": chosen["precision"],
            "selected": chosen["selected"],
            "precision_reason": chosen["selection"]["precision_reason"],
            "candidates": chosen["selection"].get("candidates"),
        },
        "bf16": {"native": bf16_ok, "why": bf16_why},
        "eligible_peers": eligible,
        "quality": quality,
        "meets_quality_target": quality["ganrt_default_vs_pytorch_fp32_db"]
        >= TARGETS["psnr_vs_pytorch_min_db"],
        "cases": cases,
        "load": loads,
    }


# ------------------------------------------------------------------------------------------------ report


def _ms(case: dict[str, Any], name: str) -> str:
    value = case["latency"].get(name, {}).get("median_ms")
    if value is None:
        return "–"
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _mark(ok: bool) -> str:
    return " ✓" if ok else " ✗"


def markdown(data: dict[str, Any]) -> str:
    """README tables: the peers and ganrt side by side; ganrt's overhead per backend; quality, load times."""
    machine, peak = data["machine"], data["peak"]
    load = data.get("load_average", {})
    targets = data["targets"]
    intro = (
        f"CPU runtime on {machine.get('cpu', '?')}, {data['threads']} threads ({peak['isa']}; load average "
        f"{load.get('before', '?')} → {load.get('after', '?')} on {machine.get('cores_logical', '?')} CPUs): "
        f"median ms per call over interleaved rounds (every variant once per round, "
        f"{data['settle_s'] * 1e3:g} ms idle before each), 256×256, random weights. Bare peers run on an "
        f"already normalized float tensor; ganrt rows are `ganrt.load(...).translate(uint8)` with "
        f"pre/post-processing. bf16 PSNR is against fp32 on real bundled photos. "
        f"Reproduce: `{data['command']}`."
    )
    lines = [
        intro,
        "",
        (
            "| model | batch | ONNX Runtime fp32 | OpenVINO fp32 | OpenVINO bf16 | bf16 PSNR vs fp32 "
            "| PyTorch bf16 autocast, channels_last | ganrt default (choice) | ganrt / best peer "
            f"(≤ {targets['default_vs_best_peer_max']}) | ORT fp32 / ganrt |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["results"]:
        q = r["quality"]
        db = q.get("openvino_bf16_vs_fp32_db")
        for case in r["cases"]:
            choice = f"{r['choice']['backend']} {r['choice']['precision']}"
            need = targets["speedup_vs_ort_min"][r["arch"]]
            lines.append(
                f"| {r['arch']} | {case['batch']} | {_ms(case, 'ort_fp32')} | {_ms(case, 'openvino_fp32')} | "
                f"{_ms(case, 'openvino_bf16')} | {f'{db:.0f} dB' if db is not None else '–'} | "
                f"{_ms(case, 'torch_bf16')} | {_ms(case, 'ganrt')} ({choice}) | "
                f"{case['default_vs_best_peer']:.3f}{_mark(case['meets_default_target'])} | "
                f"{case['speedup_vs_ort_fp32']:.2f}× (≥ {need}){_mark(case['meets_speedup_target'])} |"
            )
    lines += [
        "",
        (
            f"ganrt's overhead per backend: `translate(uint8)` over the same backend's bare call on the "
            f"normalized tensor (≤ {targets['overhead_vs_bare_max']}), and achieved TFLOP/s (2 × conv MACs / "
            f"median; peak "
            f"{peak['fp32_tflops']:.3f} fp32 / "
            f"{(peak['bf16_tflops'] or 0):.3f} bf16 TFLOP/s at an assumed {peak['clock_ghz']:.2f} GHz × "
            f"{peak['cores']} cores)."
        ),
        "",
        "| model | batch | backend | bare ms | ganrt ms | ganrt / bare | bare TFLOP/s (% of peak) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in data["results"]:
        for case in r["cases"]:
            for bare, wrapped in PAIRS.items():
                if bare not in case["latency"] or wrapped not in case["latency"]:
                    continue
                ratio = case["overhead_vs_bare"][wrapped]
                tf = case["tflops"][bare]
                peak_tf = peak["bf16_tflops"] if bare.endswith("bf16") else peak["fp32_tflops"]
                share = f" ({tf / peak_tf:.0%})" if peak_tf else ""
                lines.append(
                    f"| {r['arch']} | {case['batch']} | {bare.replace('_', ' ')} | {_ms(case, bare)} | "
                    f"{_ms(case, wrapped)} | {ratio:.3f}{_mark(ratio <= targets['overhead_vs_bare_max'])} | "
                    f"{tf:.3f}{share} |"
                )
    lines += [
        "",
        (
            "| model | ganrt default vs fp32 PyTorch (≥ 40 dB) | first `ganrt.load` s (trial + compile) "
            "| second s "
            "| OpenVINO bf16 first / second s (compiled-model cache) | ONNX Runtime load s |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for r in data["results"]:
        loads = r["load"]
        ov = loads.get("openvino_bf16")
        ov_text = f"{ov['first']['load_s']:.2f} / {ov['second']['load_s']:.2f}" if ov else "–"
        db = r["quality"]["ganrt_default_vs_pytorch_fp32_db"]
        lines.append(
            f"| {r['arch']} | {db:.1f} dB{_mark(r['meets_quality_target'])} | "
            f"{loads['default']['first']['load_s']:.2f} | {loads['default']['second']['load_s']:.2f} | "
            f"{ov_text} | "
            f"{loads['onnxruntime']['second']['load_s']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from ganrt.backends.device import physical_cores
    from ganrt.bench.machine import machine_info
    from ganrt.utils import atomic_write

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {MODELS}")
    parser.add_argument("--batches", default="1,8", help="comma-separated batch sizes (default 1,8)")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds per case (default 20)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=300.0,
        help="stop a case's rounds after this long (at least 3 run)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="threads for every variant (default: cores)"
    )
    parser.add_argument(
        "--clock-ghz", type=float, default=None, help="clock for the peak FLOP/s (default: /proc/cpuinfo's)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep run directories, exports and caches here (default: temp)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    archs = [a for a in args.models.split(",") if a]
    unknown = sorted(set(archs) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {MODELS}")
    batches = [int(b) for b in args.batches.split(",") if b]
    threads = args.threads or physical_cores()

    console = Console(stderr=True)
    before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ganrt_bench_runtime_") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        # The in-process ganrt.load(..., backend="auto") records its choice here, not in the user's cache.
        os.environ["GANRT_CACHE_DIR"] = str(workdir / "cache")
        with Progress(console=console, transient=True) as progress:
            results = [
                bench_model(
                    arch,
                    workdir,
                    batches=batches,
                    rounds=args.rounds,
                    max_seconds=args.max_seconds,
                    threads=threads,
                    progress=progress,
                )
                for arch in archs
            ]
    given = sys.argv[1:] if argv is None else argv
    command = "python benchmarks/runtime.py" + (" " + " ".join(given) if given else "")
    payload = {
        "benchmark": "runtime_cpu",
        "command": command,
        "threads": threads,
        "settle_s": SETTLE_S,
        "targets": TARGETS,
        "machine": machine_info(),
        "peak": cpu_peak(args.clock_ghz or nominal_clock_ghz(), threads),
        "load_average": {"before": round(before, 2), "after": round(os.getloadavg()[0], 2)},
        "results": results,
    }
    atomic_write(args.output, json.dumps(payload, indent=2) + "\n")
    print(markdown(payload))
    console.print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
