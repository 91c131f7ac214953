"""``ganrt bench``: latency of one model on several backends side by side, plus MLPerf LoadGen scenarios."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ganrt.cli_checks import finite_float, output_dir, output_file

HELP = (
    "benchmark a model or a FAMILY on PyTorch eager, ganrt's torch backend, torch.compile, ONNX Runtime, "
    "OpenVINO, ganrt and TensorRT"
)

# Mirrors ganrt.bench.backends/loadgen and ganrt.backends.torch (not imported here: `ganrt --help` must stay
# light).
_BACKENDS = (
    "eager", "torch", "compile", "onnxruntime", "openvino", "openvino-bf16", "ganrt", "ganrt-torch", "tensorrt"
)
_COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
_SCENARIOS = ("single-stream", "offline", "server")
_T = TypeVar("_T")


def _list_of(convert: Callable[[str], _T], what: str) -> Callable[[str], list[_T]]:
    def parse(text: str) -> list[_T]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}, got {text!r}")
        try:
            return [convert(t) for t in items]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of {what}, got {text!r}"
            ) from None

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        metavar="MODEL|FAMILY",
        help="a run directory, .onnx or .engine; or pix2pix|cyclegan|vae|dcgan for the reference "
        "architecture (unet_256, resnet_9blocks, vae, dcgan_g) with random weights",
    )
    parser.add_argument(
        "--backends",
        type=_list_of(str, "backends"),
        default=list(_BACKENDS),
        help=f"comma-separated, from {','.join(_BACKENDS)} (default: all; those that cannot run "
        f"here are listed with the reason). eager = stock PyTorch layers; torch = ganrt's fused ops (on CUDA: "
        f"channels_last and CUDA graphs); ganrt-torch = ganrt.load on the run directory",
    )
    parser.add_argument(
        "--compile-mode",
        default="default",
        help=f"torch.compile mode of the compile backend: {', '.join(_COMPILE_MODES)} (default: default; "
        f"max-autotune compiles for minutes)",
    )
    parser.add_argument(
        "--batch", type=_list_of(int, "batch sizes"), default=[1], help="batch sizes, e.g. 1,8"
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="image height/width (default: 256 for pix2pix/cyclegan, 64 for vae/dcgan, the native "
        "size for a model)",
    )
    parser.add_argument(
        "--ngf",
        type=int,
        default=None,
        help="FAMILY only: generator width (ngf; base_channels for vae); default the reference",
    )
    parser.add_argument("--precision", type=_list_of(str, "precisions"), default=["fp32"], help="fp32,fp16")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:<index> (default cpu)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="intra-op threads for every backend (default: torch's setting)",
    )
    parser.add_argument(
        "--warmup-s",
        type=finite_float(minimum=0),
        default=1.0,
        help="warm-up seconds per backend (default 1)",
    )
    parser.add_argument(
        "--duration-s",
        type=finite_float(minimum=0, exclusive=True),
        default=5.0,
        help="measured seconds per backend and case, in interleaved rounds (default 5)",
    )
    parser.add_argument("--min-iters", type=int, default=5, help="at least this many timed calls (default 5)")
    parser.add_argument(
        "--include-io",
        action="store_true",
        help="time uint8 pictures in -> uint8 pictures out (pre/post-processing included)",
    )
    parser.add_argument(
        "--scenario",
        type=_list_of(str, "scenarios"),
        default=[],
        help=f"MLPerf LoadGen scenarios to run after the latency rounds: {','.join(_SCENARIOS)}",
    )
    parser.add_argument(
        "--scenario-duration-s",
        type=finite_float(minimum=0, exclusive=True),
        default=None,
        help="seconds per LoadGen run (default: --duration-s)",
    )
    parser.add_argument(
        "--server-p99-ms",
        type=finite_float(minimum=0, exclusive=True),
        default=None,
        help="Server scenario p99 bound (default: twice the slowest backend's p99)",
    )
    parser.add_argument("--server-steps", type=int, default=4, help="LoadGen runs for the Server QPS search")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    parser.add_argument("--json", default=None, metavar="OUT.json", help="write the full report here")
    parser.add_argument("--plot", default=None, metavar="OUT.png", help="write a latency chart here")
    parser.add_argument(
        "--workdir",
        default=None,
        metavar="DIR",
        help="keep the generated run directory and exported ONNX/engines here (default: a "
        "temporary folder, removed afterwards)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no table")


def _command_line() -> str | None:
    """The command as typed, when this process is the ``ganrt`` console script (not a test harness)."""
    if Path(sys.argv[0]).name in ("ganrt", "__main__.py") and sys.argv[1:2] == ["bench"]:
        return shlex.join(["ganrt", *sys.argv[1:]])
    return None


def run(args: argparse.Namespace) -> int:
    from ganrt.bench.core import BenchSettings, benchmark
    from ganrt.bench.render import plot_report, print_report, write_json
    from ganrt.errors import CLIError

    # Output paths of the wrong kind fail now, not after minutes of measuring.
    output_file(args.json, "--json")
    output_file(args.plot, "--plot")
    output_dir(args.workdir, "--workdir")
    settings = BenchSettings(
        backends=tuple(args.backends),
        batches=tuple(args.batch),
        size=args.size,
        precisions=tuple(args.precision),
        device=args.device,
        warmup_s=args.warmup_s,
        duration_s=args.duration_s,
        min_iters=args.min_iters,
        include_io=args.include_io,
        scenarios=tuple(args.scenario),
        scenario_duration_s=args.scenario_duration_s,
        server_p99_ms=args.server_p99_ms,
        server_steps=args.server_steps,
        threads=args.threads,
        width=args.ngf,
        seed=args.seed,
        compile_mode=args.compile_mode,
    )
    try:
        report = benchmark(
            args.model,
            settings,
            progress=not args.quiet and sys.stderr.isatty(),
            workdir=args.workdir,
            command=_command_line(),
        )
    except (ValueError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from exc
    if not args.quiet:
        print_report(report)
    if args.json:
        write_json(report, args.json)
    if args.plot:
        plot_report(report, args.plot)
    return 0 if any(r["status"] == "ok" for r in report["results"]) else 1
