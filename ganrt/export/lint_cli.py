"""``ganrt lint MODEL.onnx``: check an ONNX model against TensorRT's ONNX operator support (no TensorRT)."""

from __future__ import annotations

import argparse
import dataclasses
import json

from ganrt.errors import CLIError

HELP = "Check an ONNX model against TensorRT's documented ONNX operator support (no TensorRT needed)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL.onnx", help="ONNX model to check")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--strict", action="store_true", help="exit non-zero on warnings too")


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 clean, 1 findings that would fail a TensorRT build (or warnings with --strict)."""
    from ganrt.export.lint import lint_model

    try:
        report = lint_model(args.model)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    if args.json:
        print(
            json.dumps(
                {
                    "path": report.path,
                    "opset": report.opset,
                    "nodes": report.nodes,
                    "ok": report.ok,
                    "source": report.source,
                    "op_counts": report.op_counts,
                    "issues": [dataclasses.asdict(i) for i in report.issues],
                },
                indent=2,
            )
        )
    else:
        from rich.console import Console

        from ganrt.export.cli import lint_table

        console = Console()
        console.print(lint_table(report))
        console.print(report.summary(), markup=False)
    failed = not report.ok or (args.strict and bool(report.warnings))
    return 1 if failed else 0
