"""``ganrt export RUN_DIR --format onnx|engine|triton ...``: export a trained run, gated by a parity check."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

from ganrt.cli_checks import output_dir, output_file
from ganrt.errors import CLIError

if TYPE_CHECKING:
    from rich.console import Console

    from ganrt.export.lint import LintReport
    from ganrt.export.result import ExportResult, ParityRow

HELP = "Export a run to a parity-checked ONNX model, TensorRT engine or Triton model repository."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="run directory (config.json + weights.safetensors)"
    )
    parser.add_argument(
        "--format", choices=("onnx", "engine", "triton"), default="onnx", help="artifact kind"
    )
    parser.add_argument(
        "-o", "--output", metavar="PATH", help="artifact path (default RUN_DIR/export/<name>.<ext>)"
    )
    parser.add_argument(
        "--recipe", metavar="TOML", help="export recipe (default the bundled ganrt/export/recipes/<family>.toml)"
    )
    parser.add_argument(
        "--precision", choices=("fp32", "fp16"), help="fp16: convs fp16, instance norm + I/O fp32"
    )
    parser.add_argument(
        "--batch", metavar="MIN:OPT:MAX", help="batch range (TensorRT profile, Triton max batch)"
    )
    parser.add_argument(
        "--height", metavar="MIN:OPT:MAX", help="height range in pixels (dynamic H when min < max)"
    )
    parser.add_argument(
        "--width", metavar="MIN:OPT:MAX", help="width range in pixels (dynamic W when min < max)"
    )
    parser.add_argument("--opset", type=int, help="ONNX opset (>= 18)")
    parser.add_argument("--part", choices=("encoder", "decoder"), help="VAE part to export (default decoder)")
    parser.add_argument("--direction", choices=("AtoB", "BtoA"), help="CycleGAN generator: G_A (AtoB) or G_B")
    parser.add_argument(
        "--lint-tensorrt",
        action="store_true",
        default=None,
        help="check the graph against TensorRT's ONNX operator support before writing",
    )
    parser.add_argument("--samples", type=int, metavar="N", help="inputs pushed through the parity gate")
    parser.add_argument(
        "--no-fused", dest="fused", action="store_false", help="trace the stock PyTorch modules"
    )
    trt = parser.add_argument_group("TensorRT")
    trt.add_argument("--workspace-mib", type=int, metavar="MIB", help="builder workspace limit")
    trt.add_argument("--timing-cache", metavar="PATH", help="persistent timing cache file")
    triton = parser.add_argument_group("Triton (--format triton)")
    triton.add_argument("--repo", metavar="DIR", help="model repository folder")
    triton.add_argument("--name", help="model name (folder under --repo)")
    triton.add_argument("--max-batch", type=int, metavar="N")
    triton.add_argument(
        "--preferred-batch", metavar="N,N,...", help="dynamic batcher preferred sizes, e.g. 4,8"
    )
    triton.add_argument("--max-queue-delay-us", type=int, metavar="US")
    triton.add_argument("--instances", type=int, metavar="N", help="model instances")
    triton.add_argument("--kind", choices=("gpu", "cpu"), help="instance group kind")
    triton.add_argument(
        "--plan", action="store_true", help="serve a TensorRT plan (model.plan) instead of ONNX"
    )
    triton.add_argument(
        "--force",
        action="store_true",
        default=None,
        help="replace an existing version 1 (its model file and config.pbtxt; nothing else is touched)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")


def _preferred(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise CLIError(f"--preferred-batch must be comma-separated integers, got {text!r}") from None


def _fmt(value: float, digits: str = ".3g") -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return format(value, digits)


def parity_table(rows: list[ParityRow], title: str = "parity") -> object:
    """A rich Table of parity rows."""
    from rich.table import Table

    table = Table(title=title)
    for col in ("backend", "output", "max abs", "mean abs", "PSNR dB", "criteria", "result"):
        table.add_column(col, justify="right" if col in ("max abs", "mean abs", "PSNR dB") else "left")
    for r in rows:
        verdict = "[green]pass" if r.passed else "[red]FAIL"
        table.add_row(
            r.backend, r.output, _fmt(r.max_abs), _fmt(r.mean_abs), _fmt(r.psnr, ".1f"), r.criteria, verdict
        )
    return table


def lint_table(report: LintReport) -> object:
    """A rich Table of lint findings (or the op census when there are none).

    Print ``report.summary()`` with it: as a table title it would wrap to the table's width.
    """
    from rich.table import Table

    if report.issues:
        table = Table(title="TensorRT lint findings")
        for col in ("severity", "node", "op", "finding"):
            table.add_column(col)
        for i in report.issues:
            colour = "red" if i.severity == "error" else "yellow"
            table.add_row(f"[{colour}]{i.severity}", i.node, i.op_type, i.message)
        return table
    table = Table(title="operators")
    table.add_column("op")
    table.add_column("nodes", justify="right")
    for op, count in report.op_counts.items():
        table.add_row(op, str(count))
    return table


def summary_table(result: ExportResult) -> object:
    """The final summary: artifact, metadata, I/O, timings."""
    from rich.table import Table

    md = result.metadata
    table = Table(title=f"ganrt export: {result.format}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for f in result.files:
        size = f.stat().st_size if f.is_file() else 0
        table.add_row("file", f"{f} ({size / 1e6:.2f} MB)")
    table.add_row("family / task", f"{md.family} / {md.task}")
    table.add_row("precision / opset", f"{md.precision} / {result.opset}")
    table.add_row("fused ops", "yes (ganrt ONNX translation)" if result.fused else "no (stock modules)")
    for name, shape in result.inputs.items():
        table.add_row("input", f"{name} {list(shape)}")
    for name, shape in result.outputs.items():
        table.add_row("output", f"{name} {list(shape)}")
    table.add_row("image size / multiple", f"{md.image_size} / {md.multiple}")
    if md.latent_dim:
        table.add_row("latent_dim / classes", f"{md.latent_dim} / {md.num_classes}")
    table.add_row("config hash", md.config_hash)
    worst = min((r.psnr for r in result.parity), default=math.inf)
    max_abs = max((r.max_abs for r in result.parity), default=0.0)
    table.add_row("parity", f"passed: max abs {_fmt(max_abs)}, min PSNR {_fmt(worst, '.1f')} dB")
    if result.lint is not None:
        lint = result.lint
        verdict = "passes" if lint.ok else "fails"
        table.add_row("TensorRT lint", f"{verdict}: {len(lint.errors)} errors, {len(lint.warnings)} warnings")
    table.add_row("timings", ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))
    for note in result.notes:
        table.add_row("note", note)
    return table


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr)


def run(args: argparse.Namespace) -> int:
    from ganrt.export import ExportError, LintError, ParityError
    from ganrt.export.pipeline import export

    err = _console(stderr=True)
    output_file(args.output, "-o/--output")  # wrong kinds of paths fail before tracing and the parity gate
    output_dir(args.repo, "--repo")
    try:
        result = export(
            args.run_dir,
            format=args.format,
            output=args.output,
            recipe=args.recipe,
            precision=args.precision,
            batch=args.batch,
            height=args.height,
            width=args.width,
            opset=args.opset,
            part=args.part,
            direction=args.direction,
            lint_tensorrt=args.lint_tensorrt,
            parity_samples=args.samples,
            repo=args.repo,
            name=args.name,
            max_batch=args.max_batch,
            preferred_batch=_preferred(args.preferred_batch),
            max_queue_delay_us=args.max_queue_delay_us,
            instances=args.instances,
            kind=args.kind,
            triton_model="plan" if args.plan else "onnx",
            force=bool(args.force),
            workspace_mib=args.workspace_mib,
            timing_cache=args.timing_cache,
            fused=args.fused,
            progress=not args.quiet,
            console=err,
        )
    except ParityError as exc:
        err.print(parity_table(exc.rows, title="parity gate FAILED"))
        err.print(f"ganrt export: {str(exc).splitlines()[0]}", markup=False, soft_wrap=True)
        return 1
    except LintError as exc:
        err.print(lint_table(exc.report))
        err.print(exc.report.summary(), markup=False)
        err.print("[red]TensorRT lint failed: nothing was written")
        return 1
    except ExportError as exc:
        raise CLIError(str(exc)) from None
    out = _console()
    out.print(parity_table(result.parity))
    if result.lint is not None and result.lint.issues:
        out.print(lint_table(result.lint))
        out.print(result.lint.summary(), markup=False)
    out.print(summary_table(result))
    return 0
