"""Fused ganrt ops vs PyTorch eager vs torch.compile of the same eager code, on CPU or a CUDA GPU.

Measures, in one process with interleaved repetitions (every implementation runs once per round, so drift of a
shared machine hits all of them alike), the median time of:

* instance norm + affine + activation (+ residual), forward and forward+backward, at the norm shapes of the
  Pix2Pix U-Net / CycleGAN ResNet generator at 256x256 (N=1): 64@256^2, 128@128^2, 256@64^2, 512@16^2 with
  leaky_relu(0.2), and the ResNet block's ``residual + IN(x)`` (no activation) at 256@64^2;
* reparameterize vs ``mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)``.

Achieved bandwidth counts the minimal traffic of the fused kernel (forward: read x [+ residual], write y;
backward additionally: read grad_y, x, y, write grad_x [+ grad_residual]) against the copy bandwidth of
``clone()`` of a 64 MB tensor measured in the same run.

On CUDA (``--device cuda``, see benchmarks/gpu.sh) the norm cases run at batch ``--batch`` (default 8, so
that the larger cases exceed the L2 cache and bandwidth means device memory) in ``--dtype`` (default float16),
plus a 32@512² case; the uint8 image kernels (``images_to_tensor`` / ``tensor_to_images``) are measured against
their PyTorch expressions; the copy bandwidth is a device-to-device ``clone()`` of 512 MiB. Each sample
synchronizes the device before reading the host clock and repeats the call until it lasts at least 2 ms.

Writes benchmarks/results/ops_cpu.json (``--output`` on CUDA) and prints a markdown table.
Usage: python benchmarks/ops.py [--device cpu|cuda] [--rounds 15] [--no-compile] [--threads N]
       [--clock wall|cpu] [--batch N] [--dtype float32|float16|bfloat16] [--output PATH]

``--clock cpu`` (requires ``--threads 1``) times with the calling thread's CPU time instead of wall time: on a
machine shared with other jobs it measures the work of each implementation rather than the scheduler.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.progress import Progress

import ganrt
from ganrt.ops import instance_norm_act, reparameterize

RESULTS = Path(__file__).resolve().parent / "results" / "ops_cpu.json"
# (label, C, H=W, activation, residual)
NORM_CASES = [
    ("64@256²", 64, 256, "leaky_relu", False),
    ("128@128²", 128, 128, "leaky_relu", False),
    ("256@64²", 256, 64, "leaky_relu", False),
    ("512@16²", 512, 16, "leaky_relu", False),
    ("256@64² +res", 256, 64, "none", True),
]
# CUDA drops 512@16² (2 MB at N=8: launch-bound, no bandwidth figure) and adds a plane of 512² (the split
# path well past the L2 cache); each case compiles two torch.compile graphs, which dominates the run time.
CUDA_NORM_CASES = [*(c for c in NORM_CASES if c[0] != "512@16²"), ("32@512²", 32, 512, "leaky_relu", False)]
REPARAM_CASES = [("64×128", (64, 128)), ("1×2²⁰", (1, 1 << 20))]
CUDA_REPARAM_CASES = [("64×128", (64, 128)), ("1×2²⁴", (1, 1 << 24))]
# (label, N, H, W, C) of uint8 pictures, CUDA only.
IMAGE_CASES = [("8×256²×3", 8, 256, 256, 3), ("8×1024²×3", 8, 1024, 1024, 3)]
TARGETS = {
    "fwd_vs_eager": 2.5,
    "fwd_vs_compile": 1.2,
    "fwd_bwd_vs_eager": 2.0,
    "reparameterize_vs_eager": 3.0,
}
# The GPU target (issue #14): fused IN+act forward at >= 70% of device-to-device copy bandwidth for planes of
# 64@256² per sample and larger.
CUDA_COPY_FRACTION = 0.70
CUDA_LARGE_ELEMENTS = 64 * 256 * 256
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
MIN_SAMPLE_S = 2e-3  # each timed sample repeats the call until it lasts at least this long
_clock = time.perf_counter  # replaced by time.thread_time with --clock cpu


def _interleaved(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median seconds per call of each function, sampled round-robin (ganrt.bench's loop)."""
    from ganrt.bench.timing import calibrate, interleaved

    repeat = {name: calibrate(fn, MIN_SAMPLE_S, _clock) for name, fn in fns.items()}
    samples = interleaved(fns, rounds=rounds, warmup=0, repeat=repeat, clock=_clock)
    return {name: statistics.median(s) for name, s in samples.items()}


def _synchronized_clock() -> float:
    """The host clock after the device finished everything queued: device work is asynchronous."""
    torch.cuda.synchronize()
    return time.perf_counter()


def copy_bandwidth(rounds: int, device: str = "cpu") -> float:
    """GB/s of clone() of a 64 MB float32 tensor on CPU, 512 MiB on CUDA (counts read + write)."""
    src = torch.randn((128 if device == "cuda" else 16) * 1024 * 1024, device=device)
    t = _interleaved({"clone": lambda: src.clone()}, rounds)["clone"]
    return 2 * src.numel() * src.element_size() / t / 1e9


def _eager_norm(activation: str) -> Callable[..., torch.Tensor]:
    def eager(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, r: torch.Tensor | None) -> torch.Tensor:
        y = F.instance_norm(x, weight=w, bias=b, eps=1e-5)
        if r is not None:
            y = y + r
        if activation == "leaky_relu":
            return F.leaky_relu(y, 0.2)
        if activation == "relu":
            return F.relu(y)
        return y

    return eager


def bench_norm(
    case: tuple,
    rounds: int,
    use_compile: bool,
    copy_gbps: float,
    *,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    batch: int = 1,
) -> dict[str, Any]:
    label, c, hw, activation, residual = case
    g = torch.Generator().manual_seed(0)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).to(device=device, dtype=dtype)

    x = randn(batch, c, hw, hw)
    w = randn(c)
    b = randn(c)
    r = randn(batch, c, hw, hw) if residual else None
    grad_y = randn(batch, c, hw, hw)

    def fused(x, w, b, r):
        return instance_norm_act(x, w, b, activation=activation, negative_slope=0.2, residual=r)

    impls: dict[str, Callable[..., torch.Tensor]] = {"fused": fused, "eager": _eager_norm(activation)}
    if use_compile:
        impls["compile"] = torch.compile(_eager_norm(activation), dynamic=False, fullgraph=True)

    leaves = [t.detach().clone().requires_grad_() for t in (x, w, b)]
    r_leaf = None if r is None else r.detach().clone().requires_grad_()
    grad_inputs = leaves + ([r_leaf] if r_leaf is not None else [])

    def forward(fn):
        def run():
            with torch.no_grad():
                return fn(x, w, b, r)

        return run

    def forward_backward(fn):
        def run():
            y = fn(*leaves, r_leaf)
            return torch.autograd.grad(y, grad_inputs, grad_y)

        return run

    fwd = _interleaved({name: forward(fn) for name, fn in impls.items()}, rounds)
    fwd_bwd = _interleaved({name: forward_backward(fn) for name, fn in impls.items()}, rounds)

    nbytes = x.numel() * x.element_size()
    fwd_traffic = nbytes * (3 if residual else 2)
    bwd_traffic = nbytes * (5 if residual else 4)

    def summary(times: dict[str, float], traffic: int) -> dict[str, Any]:
        out: dict[str, Any] = {f"{k}_ms": v * 1e3 for k, v in times.items()}
        out["speedup_vs_eager"] = times["eager"] / times["fused"]
        if "compile" in times:
            out["speedup_vs_compile"] = times["compile"] / times["fused"]
        out["fused_gbps"] = traffic / times["fused"] / 1e9
        out["fused_fraction_of_copy"] = out["fused_gbps"] / copy_gbps
        return out

    return {
        "case": label,
        "shape": list(x.shape),
        "dtype": str(dtype).removeprefix("torch."),
        "activation": activation,
        "affine": True,
        "residual": residual,
        "forward": summary(fwd, fwd_traffic),
        "forward_backward": summary(fwd_bwd, fwd_traffic + bwd_traffic),
    }


def bench_reparameterize(case: tuple, rounds: int, copy_gbps: float, device: str = "cpu") -> dict[str, Any]:
    label, shape = case
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(shape, generator=g).to(device)
    logvar = (torch.randn(shape, generator=g) * 0.5).to(device)

    def fused():
        with torch.no_grad():
            return reparameterize(mu, logvar, seed=1, offset=0)

    def eager():
        with torch.no_grad():
            return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    times = _interleaved({"fused": fused, "eager": eager}, rounds)
    traffic = 3 * mu.numel() * mu.element_size()
    gbps = traffic / times["fused"] / 1e9
    return {
        "case": label,
        "shape": list(shape),
        "fused_ms": times["fused"] * 1e3,
        "eager_ms": times["eager"] * 1e3,
        "speedup_vs_eager": times["eager"] / times["fused"],
        "fused_gbps": gbps,
        "fused_fraction_of_copy": gbps / copy_gbps,
    }


def bench_images(
    case: tuple, rounds: int, copy_gbps: float, device: str, dtype: torch.dtype
) -> dict[str, Any]:
    """uint8 (N, H, W, C) -> (N, C, H, W) in [-1, 1] and back: ganrt's kernels against the PyTorch
    expressions they replace."""
    from ganrt.ops import images_to_tensor, tensor_to_images

    label, n, h, w, c = case
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (n, h, w, c), generator=g, dtype=torch.uint8).to(device)
    x = (torch.rand(n, c, h, w, generator=g) * 2.2 - 1.1).to(device=device, dtype=dtype)

    def to_tensor_eager() -> torch.Tensor:
        return (pixels.permute(0, 3, 1, 2).to(dtype) / 127.5 - 1.0).contiguous()

    def to_images_eager() -> torch.Tensor:
        v = ((x.float() + 1.0) * 127.5).clamp(0.0, 255.0).round()
        return v.to(torch.uint8).permute(0, 2, 3, 1).contiguous()

    fns = {
        "to_tensor_fused": lambda: images_to_tensor(pixels, dtype=dtype),
        "to_tensor_eager": to_tensor_eager,
        "to_images_fused": lambda: tensor_to_images(x),
        "to_images_eager": to_images_eager,
    }
    times = _interleaved(fns, rounds)
    traffic = pixels.numel() * (1 + x.element_size())  # one uint8 and one float per element, read or written
    out: dict[str, Any] = {"case": label, "shape": [n, h, w, c], "dtype": str(dtype).removeprefix("torch.")}
    for name in ("to_tensor", "to_images"):
        fused, eager = times[f"{name}_fused"], times[f"{name}_eager"]
        gbps = traffic / fused / 1e9
        out[name] = {
            "fused_ms": fused * 1e3,
            "eager_ms": eager * 1e3,
            "speedup_vs_eager": eager / fused,
            "fused_gbps": gbps,
            "fused_fraction_of_copy": gbps / copy_gbps,
        }
    return out


def _targets(norm: list[dict[str, Any]], rep: list[dict[str, Any]]) -> dict[str, Any]:
    def check(values: list[float], target: float) -> dict[str, Any]:
        return {"target": target, "min": min(values), "met": min(values) >= target} if values else {}

    out = {
        "fwd_vs_eager": check([n["forward"]["speedup_vs_eager"] for n in norm], TARGETS["fwd_vs_eager"]),
        "fwd_bwd_vs_eager": check(
            [n["forward_backward"]["speedup_vs_eager"] for n in norm], TARGETS["fwd_bwd_vs_eager"]
        ),
        "reparameterize_vs_eager": check(
            [r["speedup_vs_eager"] for r in rep], TARGETS["reparameterize_vs_eager"]
        ),
    }
    compiled = [n["forward"]["speedup_vs_compile"] for n in norm if "speedup_vs_compile" in n["forward"]]
    if compiled:
        out["fwd_vs_compile"] = check(compiled, TARGETS["fwd_vs_compile"])
    return out


def _cuda_targets(norm: list[dict[str, Any]]) -> dict[str, Any]:
    """Forward fraction of copy bandwidth for the cases of at least 64@256² per sample."""
    large = [n for n in norm if math.prod(n["shape"][1:]) >= CUDA_LARGE_ELEMENTS]
    fractions = [n["forward"]["fused_fraction_of_copy"] for n in large]
    if not fractions:
        return {}
    return {
        "fwd_fraction_of_copy": {
            "target": CUDA_COPY_FRACTION,
            "min": min(fractions),
            "met": min(fractions) >= CUDA_COPY_FRACTION,
            "cases": [n["case"] for n in large],
        }
    }


def markdown(result: dict[str, Any]) -> str:
    has_compile = "compile_ms" in result["instance_norm_act"][0]["forward"]
    cuda = result.get("device", "cpu") != "cpu"
    if cuda:
        first = result["instance_norm_act"][0]
        head = (
            f"{result['gpu']}: device-to-device copy (clone of 512 MiB) {result['copy_bandwidth_gbps']:.0f} GB/s; "
            f"torch {result['torch']} (CUDA {result.get('torch_cuda', '?')}); {first.get('dtype', '?')}, "
            f"N={first['shape'][0]}; each sample synchronizes before reading the host clock"
        )
        norm_header = f"| instance_norm_act (N={first['shape'][0]}, {first.get('dtype', '?')}) "
    else:
        head = (
            f"Copy bandwidth (clone of 64 MB): {result['copy_bandwidth_gbps']:.1f} GB/s; "
            f"{result['threads']} threads; {result['clock']} clock; torch {result['torch']}; "
            f"load average {result['load_average_1m']['before']:.1f} -> {result['load_average_1m']['after']:.1f} "
            f"on {result['cpu_count']} CPUs"
        )
        norm_header = "| instance_norm_act (N=1) "
    head += f". Reproduce: `{result.get('command', 'python benchmarks/ops.py')}`"
    lines = [
        head,
        "",
        norm_header + "| pass | fused ms | eager ms | compile ms | × eager | × compile | GB/s (% copy) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in result["instance_norm_act"]:
        for pass_name, key in (("fwd", "forward"), ("fwd+bwd", "forward_backward")):
            s = n[key]
            comp = f"{s['compile_ms']:.3f}" if has_compile else "–"
            xcomp = f"{s['speedup_vs_compile']:.2f}" if has_compile else "–"
            lines.append(
                f"| {n['case']} | {pass_name} | {s['fused_ms']:.3f} | {s['eager_ms']:.3f} | {comp} | "
                f"{s['speedup_vs_eager']:.2f} | {xcomp} | {s['fused_gbps']:.1f} "
                f"({100 * s['fused_fraction_of_copy']:.0f}%) |"
            )
    lines += [
        "",
        "| reparameterize | fused ms | eager ms | × eager | GB/s (% copy) |",
        "|---|---|---|---|---|",
    ]
    for r in result["reparameterize"]:
        lines.append(
            f"| {r['case']} | {r['fused_ms']:.4f} | {r['eager_ms']:.4f} | {r['speedup_vs_eager']:.2f} | "
            f"{r['fused_gbps']:.1f} ({100 * r['fused_fraction_of_copy']:.0f}%) |"
        )
    if result.get("images"):
        lines += [
            "",
            "| image kernel | pictures | fused ms | eager ms | × eager | GB/s (% copy) |",
            "|---|---|---|---|---|---|",
        ]
        for r in result["images"]:
            for name, title in (("to_tensor", "images_to_tensor"), ("to_images", "tensor_to_images")):
                k = r[name]
                lines.append(
                    f"| {title} ({r['dtype']}) | {r['case']} | {k['fused_ms']:.4f} | {k['eager_ms']:.4f} | "
                    f"{k['speedup_vs_eager']:.2f} | {k['fused_gbps']:.0f} ({100 * k['fused_fraction_of_copy']:.0f}%) |"
                )
    lines += ["", "| target | required | worst measured | met |", "|---|---|---|---|"]
    for name, t in result["targets"].items():
        if not t:
            continue
        if name == "fwd_fraction_of_copy":
            lines.append(
                f"| fused forward vs copy bandwidth ({', '.join(t['cases'])}) | ≥ {100 * t['target']:.0f}% | "
                f"{100 * t['min']:.0f}% | {'yes' if t['met'] else 'no'} |"
            )
        else:
            lines.append(f"| {name} | ≥ {t['target']}× | {t['min']:.2f}× | {'yes' if t['met'] else 'no'} |")
    return "\n".join(lines)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from ganrt.utils import atomic_write

    atomic_write(path, json.dumps(data, indent=2) + "\n")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per measurement (median)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile baseline")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch/ganrt CPU threads (default: torch's)"
    )
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="wall time or thread CPU time (CPU only)"
    )
    parser.add_argument(
        "--batch", type=int, default=None, help="N of the norm cases (default 1 on CPU, 8 on CUDA)"
    )
    parser.add_argument(
        "--dtype", choices=tuple(_DTYPES), default=None, help="float32 on CPU; default float16 on CUDA"
    )
    parser.add_argument("--output", type=Path, default=None, help="default benchmarks/results/ops_cpu.json")
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    if args.clock == "cpu" and (args.threads != 1 or cuda):
        parser.error("--clock cpu measures the calling CPU thread only; use it with --threads 1 on CPU")
    if cuda and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    if cuda and not ganrt.cuda_available():
        parser.error("--device cuda: ganrt was built without its CUDA kernels")
    dtype = _DTYPES[args.dtype or ("float16" if cuda else "float32")]
    if not cuda and dtype != torch.float32:
        parser.error("on CPU the fused kernels are benchmarked in float32")
    batch = args.batch or (8 if cuda else 1)
    if args.threads:
        torch.set_num_threads(args.threads)
    global _clock
    _clock = time.thread_time if args.clock == "cpu" else _synchronized_clock if cuda else time.perf_counter
    # Every case compiles its own graphs; keep dynamo from falling back to dynamic shapes or eager.
    torch._dynamo.config.cache_size_limit = 64
    use_compile = not args.no_compile
    device = args.device
    norm_cases = CUDA_NORM_CASES if cuda else NORM_CASES
    rep_cases = CUDA_REPARAM_CASES if cuda else REPARAM_CASES
    image_cases = IMAGE_CASES if cuda else []

    # The machine may be shared: record its load so numbers from a busy machine can be told apart.
    load_before = os.getloadavg()
    with Progress(transient=True) as progress:
        task = progress.add_task(
            "benchmarking ops", total=1 + len(norm_cases) + len(rep_cases) + len(image_cases)
        )
        copy_gbps = copy_bandwidth(args.rounds, device)
        progress.advance(task)
        norm = []
        for case in norm_cases:
            progress.update(task, description=f"instance_norm_act {case[0]}")
            norm.append(
                bench_norm(case, args.rounds, use_compile, copy_gbps, device=device, dtype=dtype, batch=batch)
            )
            progress.advance(task)
        rep = []
        for case in rep_cases:
            progress.update(task, description=f"reparameterize {case[0]}")
            rep.append(bench_reparameterize(case, args.rounds, copy_gbps, device))
            progress.advance(task)
        images = []
        for case in image_cases:
            progress.update(task, description=f"image kernels {case[0]}")
            images.append(bench_images(case, args.rounds, copy_gbps, device, dtype))
            progress.advance(task)

    result = {
        "benchmark": "ops_cuda" if cuda else "ops_cpu",
        "device": device,
        "ganrt": ganrt.__version__,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "clock": "wall, synchronized" if cuda else args.clock,
        "rounds": args.rounds,
        "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
        "copy_bandwidth_gbps": copy_gbps,
        "instance_norm_act": norm,
        "reparameterize": rep,
        "targets": {**_targets(norm, rep), **(_cuda_targets(norm) if cuda else {})},
    }
    if cuda:
        from ganrt.bench.machine import gpu_info

        result["gpu"] = torch.cuda.get_device_name(0)
        result["torch_cuda"] = torch.version.cuda
        result["gpus"] = gpu_info()
        result["images"] = images
    _write_json(args.output or RESULTS, result)
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
