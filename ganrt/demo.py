"""``make demo``: the whole pipeline on this machine in a few minutes.

1. Train a small Pix2Pix on ``builtin:edges2photos`` (edge maps -> photos cut from bundled images), in the
   fastest precision this CPU trains in (``--precision auto``: bf16 on AMX / AVX512_BF16 CPUs).
2. Export it to ONNX through the parity gate (and to a TensorRT engine when TensorRT and a GPU are present).
3. ``ganrt.load`` the artifact and translate held-out pairs: crops of the photo tiles that training never saw
   (the ``test`` split of ``builtin:edges2photos``, one row per photo).
4. Write ``demo/side_by_side.png`` (input | output | target) and print a latency table per backend.

Usage: python -m ganrt.demo [--out demo] [--steps 1500] [--image-size 64] [--netG unet_32] [--ngf 32]
                            [--ndf 16] [--batch-size 4] [--lr 1e-3] [--images 7] [--precision auto]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ganrt.utils import atomic_path, psnr


def _tensorrt_ready() -> str | None:
    """``None`` when an engine can be built here, else why not."""
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU visible to torch"
    return None


def _side_by_side(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]], path: Path, title: str) -> None:
    """A grid of (input | output | target) rows as PNG, written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 2.0 * len(rows) + 0.6), dpi=120)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), 3, squeeze=False)
    for r, images in enumerate(rows):
        for c, image in enumerate(images):
            ax = axes[r][c]
            ax.imshow(image, interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(("input (edges)", "ganrt output", "target (photo)")[c], fontsize=10)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganrt.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default: demo)")
    parser.add_argument("--steps", type=int, default=1500, help="training steps (default: 1500)")
    parser.add_argument("--image-size", type=int, default=64, help="training resolution (default: 64)")
    # unet_32 (five downsamplings) at 64x64: on this task unet_64 sat at the flat-colour plateau (held-out L1
    # 0.37) for all of 1500 steps, unet_32 left it after about 600. ngf 32 at lr 1e-3, as in the learning
    # test, learns more reliably than ngf 16 at 2e-3 (which at times never left the plateau); batch 4 pays
    # for the width.
    parser.add_argument("--netG", default="unet_32", help="generator (default: unet_32)")
    parser.add_argument("--ngf", type=int, default=32, help="generator width (default: 32)")
    parser.add_argument("--ndf", type=int, default=16, help="discriminator width (default: 16)")
    parser.add_argument("--batch-size", type=int, default=4, help="training batch (default: 4)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    parser.add_argument(
        "--images", type=int, default=7, help="held-out pairs to translate (default: 7, one per photo)"
    )
    parser.add_argument(
        "--bench-seconds", type=float, default=4.0, help="timing budget per table (default: 4)"
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="training precision (default: auto, bf16 where the CPU has it natively)",
    )
    args = parser.parse_args(argv)

    import torch
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    import ganrt
    from ganrt.bench import interleaved
    from ganrt.data import fixed_batch, open_dataset, to_uint8
    from ganrt.export import export, format_parity
    from ganrt.models import Run
    from ganrt.train import train

    console = Console()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    console.print(
        Panel.fit(
            "ganrt demo: train Pix2Pix -> export ONNX (parity-gated) -> ganrt.load -> translate "
            "held-out images",
            style="bold",
        )
    )

    # 1. Train ----------------------------------------------------------------------------------------------
    console.rule(
        f"1/4 train pix2pix on builtin:edges2photos ({args.steps} steps, {args.netG} at {args.image_size}px, "
        f"CPU, precision {args.precision})"
    )
    t0 = time.perf_counter()
    run_dir = train(
        "pix2pix",
        data="builtin:edges2photos",
        out=out / "run",
        steps=args.steps,
        image_size=args.image_size,
        netG=args.netG,
        ngf=args.ngf,
        ndf=args.ndf,
        batch_size=args.batch_size,
        # A short run: no per-image norm (it would erase each image's overall colour and tone, which is what
        # the edge texture tells) and L1 ahead of the adversarial term, as in tests/train/test_learning.py.
        lr=args.lr,
        norm="none",
        lambda_l1=1000.0,
        dropout=False,
        device="cpu",
        seed=0,
        force=True,
        progress=True,
        sample_every=args.steps,
        precision=args.precision,
    )
    train_s = time.perf_counter() - t0
    precision = Run.load(run_dir).config["train"]["precision"]
    console.print(f"run directory: {run_dir}  ({train_s:.0f} s of training in {precision})")

    # 2. Export ---------------------------------------------------------------------------------------------
    console.rule("2/4 export")
    size = args.image_size
    result = export(
        run_dir,
        format="onnx",
        output=out / "pix2pix.onnx",
        height=(size, size, 4 * size),
        width=(size, size, 4 * size),
        progress=True,
    )
    console.print(
        f"ONNX: {result.path}\nparity (PyTorch vs ONNX Runtime on real images):\n"
        f"{format_parity(result.parity)}"
    )
    engine_path = None
    why_not = _tensorrt_ready()
    if why_not is None:
        from ganrt.export import ExportError

        try:
            engine = export(
                run_dir,
                format="engine",
                output=out / "pix2pix.engine",
                height=(size, size, 4 * size),
                width=(size, size, 4 * size),
                progress=True,
            )
            engine_path = engine.path
            console.print(f"TensorRT engine: {engine_path}\n{format_parity(engine.parity)}")
        except ExportError as exc:
            console.print(f"TensorRT engine: skipped ({str(exc).splitlines()[0]})")
    else:
        console.print(f"TensorRT engine: skipped ({why_not})")

    # 3. Load and translate held-out images ---------------------------------------------------------------
    console.rule("3/4 ganrt.load + translate held-out images")
    model = ganrt.load(result.path)
    info = model.info()
    console.print(
        f"ganrt.load({str(result.path)!r}) -> backend {info['backend']} on {info['device']} "
        f"({info['selected']}), {info['threads']} threads"
    )
    # The test split: crops of held-out tiles of the training photos, never seen in training (interleaved by
    # photo, so the first rows show one crop of each photo).
    test = fixed_batch(
        open_dataset("builtin:edges2photos", kind="aligned", split="test", image_size=size, augment=False),
        args.images,
    )
    edges, targets = to_uint8(test["A"]), to_uint8(test["B"])
    outputs = model.translate(edges)
    mean_psnr = statistics.fmean(psnr(t, o, 255.0) for o, t in zip(outputs, targets, strict=True))
    l1 = float(np.mean(np.abs(outputs.astype(np.float64) - targets)))
    picture = out / "side_by_side.png"
    _side_by_side(
        list(zip(edges, outputs, targets, strict=True)),
        picture,
        f"held-out tiles never seen in training ({size}x{size})\n"
        f"{train_s:.0f} s of {precision} training - mean L1 {l1:.1f}/255, PSNR {mean_psnr:.1f} dB",
    )
    console.print(f"wrote {picture}  (held-out tiles: mean L1 {l1:.1f}/255, PSNR {mean_psnr:.1f} dB)")

    # 4. Latency ------------------------------------------------------------------------------------------
    console.rule(f"4/4 latency, batch 1, {size}x{size}, uint8 in -> uint8 out")
    image = np.ascontiguousarray(edges[0])
    eager = Run.load(run_dir).generator(fused=False)

    def torch_eager() -> np.ndarray:
        # What a user writes without ganrt: numpy pre/post around stock PyTorch modules.
        with torch.inference_mode():
            x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1.0
            y = eager(x)
            return ((y[0] + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()

    models = {"ganrt / torch (fused ops)": ganrt.load(run_dir), "ganrt / onnxruntime": model}
    if engine_path is not None:
        models["ganrt / tensorrt"] = ganrt.load(engine_path)
    variants: dict[str, Callable[[], Any]] = {"PyTorch eager (stock ops)": torch_eager}
    variants.update({name: (lambda m=m: m.translate(image)) for name, m in models.items()})
    times = interleaved(variants, seconds=args.bench_seconds)
    baseline = statistics.median(times["PyTorch eager (stock ops)"])
    table = Table(title=f"ganrt demo latency ({info['threads']} CPU threads)")
    for column in ("backend", "device", "median ms", "p90 ms", "images/s", "vs eager"):
        table.add_column(column, justify="left" if column in ("backend", "device") else "right")
    for name, samples in times.items():
        ordered = sorted(samples)
        median = statistics.median(ordered)
        device = models[name].device if name in models else "cpu"
        table.add_row(
            name,
            device,
            f"{median * 1e3:.2f}",
            f"{ordered[int(0.9 * (len(ordered) - 1))] * 1e3:.2f}",
            f"{1.0 / median:.0f}",
            f"{baseline / median:.2f}x",
        )
    console.print(table)
    for m in models.values():
        m.close()
    console.print(
        Panel.fit(
            f"done in {time.perf_counter() - started:.0f} s: {picture}, {result.path}"
            + (f", {engine_path}" if engine_path else ""),
            style="bold green",
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
