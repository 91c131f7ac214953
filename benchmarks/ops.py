"""Fused ganrt ops vs PyTorch eager vs torch.compile of the same eager code, on CPU.

Measures, in one process with interleaved repetitions (every implementation runs once per round, so drift of a
shared machine hits all of them alike), the median time of:

* instance norm + affine + activation (+ residual), forward and forward+backward, at the norm shapes of the
  Pix2Pix U-Net / CycleGAN ResNet generator at 256x256 (N=1): 64@256^2, 128@128^2, 256@64^2, 512@16^2 with
  leaky_relu(0.2), and the ResNet block's ``residual + IN(x)`` (no activation) at 256@64^2;
* reparameterize vs ``mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)``.

Achieved bandwidth counts the minimal traffic of the fused kernel (forward: read x [+ residual], write y;
backward additionally: read grad_y, x, y, write grad_x [+ grad_residual]) against the copy bandwidth of
``clone()`` of a 64 MB tensor measured in the same run.

Writes benchmarks/results/ops_cpu.json and prints a markdown table.
Usage: python benchmarks/ops.py [--rounds 15] [--no-compile] [--threads N] [--clock wall|cpu] [--output PATH]

``--clock cpu`` (requires ``--threads 1``) times with the calling thread's CPU time instead of wall time: on a
machine shared with other jobs it measures the work of each implementation rather than the scheduler.
"""

from __future__ import annotations

import argparse
import json
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
REPARAM_CASES = [("64×128", (64, 128)), ("1×2²⁰", (1, 1 << 20))]
TARGETS = {
    "fwd_vs_eager": 2.5,
    "fwd_vs_compile": 1.2,
    "fwd_bwd_vs_eager": 2.0,
    "reparameterize_vs_eager": 3.0,
}
MIN_SAMPLE_S = 2e-3  # each timed sample repeats the call until it lasts at least this long
_clock = time.perf_counter  # replaced by time.thread_time with --clock cpu


def _interleaved(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median seconds per call of each function, sampled round-robin (ganrt.bench's loop)."""
    from ganrt.bench.timing import calibrate, interleaved

    repeat = {name: calibrate(fn, MIN_SAMPLE_S, _clock) for name, fn in fns.items()}
    samples = interleaved(fns, rounds=rounds, warmup=0, repeat=repeat, clock=_clock)
    return {name: statistics.median(s) for name, s in samples.items()}


def copy_bandwidth(rounds: int) -> float:
    """GB/s of clone() of a 64 MB float32 tensor (counts read + write)."""
    src = torch.randn(16 * 1024 * 1024)
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


def bench_norm(case: tuple, rounds: int, use_compile: bool, copy_gbps: float) -> dict[str, Any]:
    label, c, hw, activation, residual = case
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, c, hw, hw, generator=g)
    w = torch.randn(c, generator=g)
    b = torch.randn(c, generator=g)
    r = torch.randn(1, c, hw, hw, generator=g) if residual else None
    grad_y = torch.randn_like(x)

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
        "activation": activation,
        "affine": True,
        "residual": residual,
        "forward": summary(fwd, fwd_traffic),
        "forward_backward": summary(fwd_bwd, fwd_traffic + bwd_traffic),
    }


def bench_reparameterize(case: tuple, rounds: int, copy_gbps: float) -> dict[str, Any]:
    label, shape = case
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(shape, generator=g)
    logvar = torch.randn(shape, generator=g) * 0.5

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


def markdown(result: dict[str, Any]) -> str:
    has_compile = "compile_ms" in result["instance_norm_act"][0]["forward"]
    lines = [
        f"Copy bandwidth (clone of 64 MB): {result['copy_bandwidth_gbps']:.1f} GB/s; "
        f"{result['threads']} threads; {result['clock']} clock; torch {result['torch']}; "
        f"load average {result['load_average_1m']['before']:.1f} -> {result['load_average_1m']['after']:.1f} "
        f"on {result['cpu_count']} CPUs",
        "",
        "| instance_norm_act (N=1) | pass | fused ms | eager ms | compile ms | × eager | × compile "
        "| GB/s (% copy) |",
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
    lines += ["", "| target | required | worst measured | met |", "|---|---|---|---|"]
    for name, t in result["targets"].items():
        if t:
            lines.append(f"| {name} | ≥ {t['target']}× | {t['min']:.2f}× | {'yes' if t['met'] else 'no'} |")
    return "\n".join(lines)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from ganrt.utils import atomic_write

    atomic_write(path, json.dumps(data, indent=2) + "\n")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per measurement (median)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile baseline")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch/ganrt CPU threads (default: torch's)"
    )
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="wall time or thread CPU time"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.clock == "cpu" and args.threads != 1:
        parser.error("--clock cpu measures the calling thread only; use it with --threads 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    global _clock
    _clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    # Every case compiles its own graphs; keep dynamo from falling back to dynamic shapes or eager.
    torch._dynamo.config.cache_size_limit = 64
    use_compile = not args.no_compile

    # The machine may be shared: record its load so numbers from a busy machine can be told apart.
    load_before = os.getloadavg()
    with Progress(transient=True) as progress:
        task = progress.add_task("benchmarking ops", total=1 + len(NORM_CASES) + len(REPARAM_CASES))
        copy_gbps = copy_bandwidth(args.rounds)
        progress.advance(task)
        norm = []
        for case in NORM_CASES:
            progress.update(task, description=f"instance_norm_act {case[0]}")
            norm.append(bench_norm(case, args.rounds, use_compile, copy_gbps))
            progress.advance(task)
        rep = []
        for case in REPARAM_CASES:
            progress.update(task, description=f"reparameterize {case[0]}")
            rep.append(bench_reparameterize(case, args.rounds, copy_gbps))
            progress.advance(task)

    result = {
        "benchmark": "ops_cpu",
        "ganrt": ganrt.__version__,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "clock": args.clock,
        "rounds": args.rounds,
        "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
        "copy_bandwidth_gbps": copy_gbps,
        "instance_norm_act": norm,
        "reparameterize": rep,
        "targets": _targets(norm, rep),
    }
    _write_json(args.output, result)
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
