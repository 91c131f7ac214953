"""Training step time with ganrt's fused kernels (``--fused``) vs stock PyTorch ops (``--no-fused``), on CPU.

Two configurations at batch size 1, full width (ngf = ndf = 64) unless told otherwise:

* CycleGAN, ``resnet_6blocks`` generators + 70x70 PatchGANs, 128x128, instance norm, LSGAN, pool 50;
* Pix2Pix, ``unet_128`` generator (dropout) + PatchGAN, 128x128, per-image affine ("batch") norm, vanilla GAN.

A step is exactly what ``ganrt train`` runs per batch (``Family.step``: both generators' and discriminators'
forward, backward and Adam updates). Both variants start from identical weights and see the same batches; the
measurement interleaves them (each round times a block of fused steps and a block of unfused steps, the order
alternating between rounds) so drift of a shared machine hits both alike. Data loading is not timed.

Writes benchmarks/results/train_cpu.json and prints a markdown table.
Usage: python benchmarks/train.py [--rounds 6] [--steps-per-round 2] [--warmup 2] [--threads N]
                                  [--clock wall|cpu] [--ngf 64] [--output PATH]

``--clock cpu`` (requires ``--threads 1``) uses the calling thread's CPU time: on a machine shared with other
jobs it measures the work of each variant rather than the scheduler.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress

import ganrt
from ganrt.data import open_dataset, training_batch
from ganrt.train.families import FAMILY_CLASSES, Family
from ganrt.train.options import DATA_KIND, resolve

RESULTS = Path(__file__).resolve().parent / "results" / "train_cpu.json"
TARGET_SPEEDUP = 1.2
# name -> (family, options)
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "cyclegan_resnet_6blocks_128": ("cyclegan", {"netG": "resnet_6blocks", "image_size": 128}),
    "pix2pix_unet_128": ("pix2pix", {"netG": "unet_128", "image_size": 128}),
}


def _build(family: str, options: dict[str, Any], fused: bool) -> Family:
    torch.manual_seed(options["seed"])
    return FAMILY_CLASSES[family](options, num_classes=0, device=torch.device("cpu"), fused=fused)


def _run_block(model: Family, batches: list[dict[str, torch.Tensor]], first: int, n: int, clock: Any) -> list[float]:
    times = []
    for k in range(first, first + n):
        batch = batches[k % len(batches)]
        torch.manual_seed(k)
        rng = np.random.default_rng(k)
        t0 = clock()
        model.step(batch, rng)
        times.append(clock() - t0)
    return times


def bench_config(name: str, family: str, overrides: dict[str, Any], args: argparse.Namespace,
                 progress: Progress) -> dict[str, Any]:
    options = resolve(family, {**overrides, "ngf": args.ngf, "ndf": args.ngf}, "builtin:edges2photos")
    dataset = open_dataset("builtin:edges2photos", kind=DATA_KIND[family], image_size=options["image_size"],
                           channels=options["channels"], seed=0)
    n_batches = args.warmup + args.rounds * args.steps_per_round
    batches = [training_batch(dataset, step=s, batch_size=1, seed=0) for s in range(n_batches)]
    models = {True: _build(family, options, True), False: _build(family, options, False)}
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    samples: dict[bool, list[float]] = {True: [], False: []}
    task = progress.add_task(name, total=2 * (args.warmup + args.rounds * args.steps_per_round))
    for fused in (True, False):
        _run_block(models[fused], batches, 0, args.warmup, clock)
        progress.advance(task, args.warmup)
    step = args.warmup
    for r in range(args.rounds):
        order = (True, False) if r % 2 == 0 else (False, True)
        for fused in order:
            samples[fused] += _run_block(models[fused], batches, step, args.steps_per_round, clock)
            progress.advance(task, args.steps_per_round)
        step += args.steps_per_round

    def summary(xs: list[float]) -> dict[str, Any]:
        ms = [x * 1e3 for x in xs]
        return {"median_ms": statistics.median(ms), "mean_ms": statistics.fmean(ms), "min_ms": min(ms),
                "samples_ms": [round(x, 2) for x in ms]}

    fused_s, unfused_s = summary(samples[True]), summary(samples[False])
    return {
        "name": name, "family": family, "netG": options["netG"], "image_size": options["image_size"],
        "batch_size": 1, "ngf": options["ngf"], "ndf": options["ndf"], "norm": options["norm"],
        "fused": fused_s, "unfused": unfused_s,
        "speedup": unfused_s["median_ms"] / fused_s["median_ms"],
        "meets_target": unfused_s["median_ms"] / fused_s["median_ms"] >= TARGET_SPEEDUP,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps-per-round", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--ngf", type=int, default=64, help="generator and discriminator width (default 64)")
    parser.add_argument("--only", choices=sorted(CONFIGS), action="append", help="run only these configurations")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu" and torch.get_num_threads() != 1:
        parser.error("--clock cpu measures one thread's CPU time; pass --threads 1 with it")

    results = []
    with Progress() as progress:
        for name, (family, overrides) in CONFIGS.items():
            if args.only and name not in args.only:
                continue
            results.append(bench_config(name, family, overrides, args, progress))

    report = {
        "benchmark": "train_step_fused_vs_unfused",
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "clock": args.clock,
        "torch": torch.__version__,
        "ganrt": ganrt.__version__,
        "rounds": args.rounds,
        "steps_per_round": args.steps_per_round,
        "target_speedup": TARGET_SPEEDUP,
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=args.output.parent, prefix=f".{args.output.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    os.replace(tmp, args.output)

    print(f"\nTraining step, batch 1, CPU, {report['threads']} thread(s), {args.clock} clock "
          f"(median of {args.rounds * args.steps_per_round} steps each, interleaved)\n")
    print("| configuration | fused (ms) | no-fused (ms) | speedup |")
    print("|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['name']} | {r['fused']['median_ms']:.0f} | {r['unfused']['median_ms']:.0f} | "
              f"{r['speedup']:.2f}x |")
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
