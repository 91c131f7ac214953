"""Training step time on CPU across precision (fp32, bf16), kernels (ganrt fused vs stock PyTorch) and layout.

Two configurations at batch size 1, full width (ngf = ndf = 64) unless told otherwise:

* CycleGAN, ``resnet_6blocks`` generators + 70x70 PatchGANs, 128x128, instance norm, LSGAN, pool 50;
* Pix2Pix, ``unet_128`` generator (dropout) + PatchGAN, 128x128, per-image affine ("batch") norm, vanilla GAN.

A step is exactly what ``ganrt train`` runs per batch (``Family.train_step``: both generators' and
discriminators' forward, backward and Adam updates, in the run's precision). Variants (name: kernels,
precision, layout):

* ``fp32_stock``: stock PyTorch ops and torch.optim.Adam's default implementation, fp32, NCHW — plain
  PyTorch (``--no-fused --precision fp32``), the baseline;
* ``fp32_fused``: ganrt's fused norm and PyTorch's single-kernel Adam, fp32, NCHW (``--precision fp32``);
* ``fp32_fused_cl``: as above with channels_last networks, to see whether NHWC also pays in fp32;
* ``bf16_stock`` / ``bf16_fused``: bf16 autocast with channels_last networks (what ``--precision bf16`` does
  on CPU), stock ops / fused norm;
* ``bf16_fused_nchw``: bf16 fused without channels_last, to see what NHWC brings in bf16.

All variants start from identical weights and see the same batches; the measurement interleaves them
(``ganrt.bench.interleaved``: each round times ``--steps-per-round`` steps of every variant, the order rotating
between rounds) so drift of a shared machine hits all alike. Data loading is not timed. The JSON records the
command line and the 1-minute load average before and after.

Writes benchmarks/results/train_cpu.json and prints the markdown table (``markdown(data)``, also used by
benchmarks/report.py for README).
Usage: python benchmarks/train.py [--rounds 5] [--steps-per-round 2] [--warmup 2] [--threads N]
                                  [--clock wall|cpu] [--ngf 64] [--image-size 128] [--only NAME] [--output PATH]

``--clock cpu`` (requires ``--threads 1``) uses the calling thread's CPU time: on a machine shared with other
jobs it measures the work of each variant rather than the scheduler.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress

import ganrt
from ganrt.bench.machine import cpu_model
from ganrt.bench.timing import interleaved
from ganrt.data import open_dataset, training_batch
from ganrt.train.families import FAMILY_CLASSES, Family
from ganrt.train.options import DATA_KIND, resolve
from ganrt.train.precision import Precision, device_support
from ganrt.utils import atomic_write

RESULTS = Path(__file__).resolve().parent / "results" / "train_cpu.json"
COMMAND = "python benchmarks/train.py"
# name -> (family, options)
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "cyclegan_resnet_6blocks_128": ("cyclegan", {"netG": "resnet_6blocks"}),
    "pix2pix_unet_128": ("pix2pix", {"netG": "unet_128"}),
}
# name -> (fused, precision, channels_last)
VARIANTS: dict[str, tuple[bool, str, bool]] = {
    "fp32_stock": (False, "fp32", False),
    "fp32_fused": (True, "fp32", False),
    "fp32_fused_cl": (True, "fp32", True),
    "bf16_stock": (False, "bf16", True),
    "bf16_fused": (True, "bf16", True),
    "bf16_fused_nchw": (True, "bf16", False),
}
BASELINE = "fp32_stock"
# Ratio name -> (slower variant, faster variant): speed-up = median(slower) / median(faster).
RATIOS: dict[str, tuple[str, str]] = {
    "bf16_fused_vs_fp32_stock": ("fp32_stock", "bf16_fused"),
    "bf16_fused_vs_fp32_fused": ("fp32_fused", "bf16_fused"),
    "bf16_stock_vs_fp32_stock": ("fp32_stock", "bf16_stock"),
    "fp32_fused_vs_fp32_stock": ("fp32_stock", "fp32_fused"),
    "bf16_fused_vs_bf16_stock": ("bf16_stock", "bf16_fused"),
    "fp32_channels_last_vs_nchw": ("fp32_fused", "fp32_fused_cl"),
    "bf16_channels_last_vs_nchw": ("bf16_fused_nchw", "bf16_fused"),
}
# Issue #13: a full bf16 step (what `ganrt train` runs by default here) against plain fp32 PyTorch.
TARGETS: dict[str, dict[str, Any]] = {
    "cyclegan_resnet_6blocks_128": {"ratio": "bf16_fused_vs_fp32_stock", "min": 1.6},
    "pix2pix_unet_128": {"ratio": "bf16_fused_vs_fp32_stock", "min": 1.4},
}


def _build(family: str, options: dict[str, Any], variant: str) -> Family:
    fused, precision, channels_last = VARIANTS[variant]
    torch.manual_seed(options["seed"])
    dev = torch.device("cpu")
    return FAMILY_CLASSES[family](options, num_classes=0, device=dev, fused=fused,
                                 precision=Precision(precision, dev, channels_last=channels_last))


def _stepper(model: Family, batches: list[dict[str, torch.Tensor]]) -> Callable[[], None]:
    """One training step per call on the next batch; every variant walks the same batches with the same seeds."""
    calls = itertools.count()

    def step() -> None:
        k = next(calls)
        torch.manual_seed(k)
        model.train_step(batches[k % len(batches)], np.random.default_rng(k))

    return step


def _summary(xs: list[float]) -> dict[str, Any]:
    ms = [x * 1e3 for x in xs]
    return {"median_ms": statistics.median(ms), "mean_ms": statistics.fmean(ms), "min_ms": min(ms),
            "samples_ms": [round(x, 2) for x in ms]}


def bench_config(name: str, family: str, overrides: dict[str, Any], args: argparse.Namespace,
                 progress: Progress) -> dict[str, Any]:
    options = resolve(family, {**overrides, "ngf": args.ngf, "ndf": args.ngf, "image_size": args.image_size},
                      "builtin:edges2photos")
    dataset = open_dataset("builtin:edges2photos", kind=DATA_KIND[family], image_size=options["image_size"],
                           channels=options["channels"], seed=0)
    n_batches = args.warmup + args.rounds * args.steps_per_round
    batches = [training_batch(dataset, step=s, batch_size=1, seed=0) for s in range(n_batches)]
    names = list(VARIANTS)
    models = {v: _build(family, options, v) for v in names}
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    task = progress.add_task(name, total=args.rounds)
    # Each sample is the mean of steps_per_round consecutive steps of one variant; the order of the variants
    # rotates every round (ganrt.bench.interleaved).
    samples = interleaved({v: _stepper(models[v], batches) for v in names}, rounds=args.rounds, warmup=args.warmup,
                          repeat={v: args.steps_per_round for v in names}, clock=clock,
                          on_round=lambda _: progress.advance(task))
    variants = {v: {"fused": VARIANTS[v][0], "precision": VARIANTS[v][1], "channels_last": VARIANTS[v][2],
                    **_summary(samples[v])} for v in names}
    ratios = {k: variants[slow]["median_ms"] / variants[fast]["median_ms"] for k, (slow, fast) in RATIOS.items()}
    target = TARGETS.get(name)
    return {
        "name": name, "family": family, "netG": options["netG"], "image_size": options["image_size"],
        "batch_size": 1, "ngf": options["ngf"], "ndf": options["ndf"], "norm": options["norm"],
        "variants": variants, "ratios": ratios,
        "target": None if target is None else {**target, "measured": ratios[target["ratio"]],
                                               "met": ratios[target["ratio"]] >= target["min"]},
    }


def markdown(data: dict[str, Any]) -> str:
    """README table: median ms per full training step per variant, and the ratios side by side."""
    intro = (
        f"Full training steps (G and D forward, losses, backward, Adam) on {data['cpu']} ({data['bf16']}), "
        f"{data['threads']} threads, batch 1, {data['clock']} clock, median of {data['rounds']} interleaved "
        f"rounds of {data['steps_per_round']} steps per variant; torch {data['torch']}; load "
        f"average {data['load_average_1m']['before']:.1f} -> {data['load_average_1m']['after']:.1f}. "
        f"stock = plain PyTorch (stock ops, default Adam), fused = ganrt's norm kernels + single-kernel Adam "
        f"(`--fused`); bf16 = autocast with fp32 master weights; cl = channels_last. "
        f"bf16_fused_vs_fp32_fused is the precision alone. Reproduce: `{data['command']}`."
    )
    names = list(data["results"][0]["variants"])
    lines = [intro, "", "| configuration | " + " | ".join(f"{v} ms" for v in names) + " |",
             "|---|" + "---|" * len(names)]
    for r in data["results"]:
        cells = [f"{r['variants'][v]['median_ms']:.0f}" for v in names]
        lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    ratio_names = list(data["results"][0]["ratios"])
    lines += ["", "| configuration | " + " | ".join(ratio_names) + " |", "|---|" + "---|" * len(ratio_names)]
    for r in data["results"]:
        lines.append(f"| {r['name']} | " + " | ".join(f"{r['ratios'][k]:.2f}×" for k in ratio_names) + " |")
    targets = [r for r in data["results"] if r.get("target")]
    if targets:
        lines += ["", "| target | required | measured | met |", "|---|---|---|---|"]
        for r in targets:
            t = r["target"]
            lines.append(f"| {r['name']}: {t['ratio']} | ≥ {t['min']}× | {t['measured']:.2f}× | "
                         f"{'yes' if t['met'] else 'no'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps-per-round", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--ngf", type=int, default=64, help="generator and discriminator width (default 64)")
    parser.add_argument("--image-size", type=int, default=128, help="training crop size (default 128)")
    parser.add_argument("--only", choices=sorted(CONFIGS), action="append", help="run only these configurations")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu" and torch.get_num_threads() != 1:
        parser.error("--clock cpu measures one thread's CPU time; pass --threads 1 with it")
    support = device_support(torch.device("cpu"))
    if not support.bf16:
        parser.error(f"the bf16 variants need native bf16; this CPU has {support.detail}")

    load_before = os.getloadavg()
    results = []
    with Progress() as progress:
        for name, (family, overrides) in CONFIGS.items():
            if args.only and name not in args.only:
                continue
            results.append(bench_config(name, family, overrides, args, progress))

    report = {
        "benchmark": "train_step_precision",
        "command": " ".join([COMMAND, *map(shlex.quote, sys.argv[1:] if argv is None else argv)]),
        "device": "cpu",
        "cpu": cpu_model(),
        "bf16": support.detail,
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "clock": args.clock,
        "torch": torch.__version__,
        "ganrt": ganrt.__version__,
        "rounds": args.rounds,
        "steps_per_round": args.steps_per_round,
        "baseline": BASELINE,
        "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
        "results": results,
    }
    atomic_write(args.output, json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    print(f"\nwrote {args.output}")
    return report


if __name__ == "__main__":
    main()
