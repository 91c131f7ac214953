"""``ganrt serve``: serve models over HTTP (KServe v2 + /v1 image endpoints) with dynamic batching.

Imports nothing heavy at module level (``ganrt --help`` stays fast); the server stack loads in :func:`run`.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ganrt.backends import BACKENDS
from ganrt.cli_checks import finite_float

if TYPE_CHECKING:
    from pathlib import Path

    from ganrt.runtime import Model

HELP = "Serve models over HTTP (KServe v2 / Triton-compatible API) with dynamic batching."

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "models",
        nargs="+",
        metavar="MODEL",
        help="model to serve: PATH (named after the file stem) or NAME=PATH; an ONNX file, engine "
        "or run directory, anything ganrt.load reads",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes the server, "
        "which has no authentication)",
    )
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000; 0 picks a free one)")
    parser.add_argument(
        "--backend",
        choices=("embedded", "pytriton"),
        default="embedded",
        help="embedded: ganrt's own server (default); pytriton: a real Triton server through "
        "PyTriton (pip install nvidia-pytriton; gRPC on PORT+1, metrics on PORT+2)",
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=8,
        help="most rows merged into one model call (default 8; 1 turns dynamic batching off)",
    )
    parser.add_argument(
        "--max-delay-ms",
        type=finite_float(minimum=0),
        default=2.0,
        help="longest wait for batch partners under concurrent load, in ms (default 2)",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=256,
        help="requests waiting per model before answering 503 + Retry-After (default 256)",
    )
    parser.add_argument(
        "--timeout-s",
        type=finite_float(minimum=0, exclusive=True),
        default=30.0,
        help="per-request timeout covering queueing and inference, in seconds (default 30)",
    )
    parser.add_argument(
        "--max-body-mb",
        type=finite_float(minimum=0, exclusive=True),
        default=64.0,
        help="largest request body after decompression, in MiB (default 64)",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=4096 * 4096,
        help="largest decoded image for /v1 translate, in pixels (default 4096*4096)",
    )
    parser.add_argument(
        "--max-sample", type=int, default=64, help="most images per /v1 sample request (default 64)"
    )
    parser.add_argument(
        "--max-inflight-mb",
        type=finite_float(minimum=0, exclusive=True),
        default=1024.0,
        help="memory budget for decoded /v1 images in flight, in MiB, at about 24 bytes per pixel "
        "(default 1024); beyond it 503 + Retry-After",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=1024,
        help="open connections before new ones get 503 (default 1024)",
    )
    parser.add_argument(
        "--runtime",
        choices=("auto", *BACKENDS),
        default="auto",
        help="ganrt.load backend running the models (default auto: the fastest available here)",
    )
    parser.add_argument(
        "--device", default="auto", help="ganrt.load device: auto, cpu, cuda, cuda:N (default auto)"
    )
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="copies of each model computing concurrently, like Triton's instance groups (default 1); "
        "on CPU the threads are split between them",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads per instance (default: physical cores / instances)",
    )
    parser.add_argument(
        "--no-ui",
        action="store_true",
        help="do not serve the web page at / (the /v1 and /v2 APIs stay)",
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=("critical", "error", "warning", "info", "debug"),
        help="server log level",
    )


def run(args: argparse.Namespace) -> int:
    from ganrt.cli_checks import cpu_count, thread_count
    from ganrt.errors import CLIError
    from ganrt.serve.config import ServeConfig
    from ganrt.serve.server import parse_model_specs

    try:
        config = ServeConfig(
            max_batch=args.max_batch,
            max_delay_ms=args.max_delay_ms,
            max_queue=args.max_queue,
            timeout_s=args.timeout_s,
            max_body_bytes=int(args.max_body_mb * 1024 * 1024),
            max_pixels=args.max_pixels,
            max_sample=args.max_sample,
            max_connections=args.max_connections,
            ui=not args.no_ui,
            max_inflight_bytes=max(1, int(args.max_inflight_mb * 1024 * 1024)),
        )
        specs = parse_model_specs(args.models)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    from ganrt.runtime.sampler import MAX_COUNT

    if args.max_sample > MAX_COUNT:
        raise CLIError(
            f"--max-sample must be at most {MAX_COUNT} (the runtime's limit per call), got {args.max_sample}"
        )
    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port must be in 0..65535, got {args.port}")
    if args.instances < 1:
        raise CLIError(f"--instances must be >= 1, got {args.instances}")
    limit = 4 * cpu_count()
    if args.instances > limit:
        raise CLIError(
            f"--instances must be at most {limit} (4 per logical CPU; each instance is a full copy of the "
            f"model), got {args.instances}"
        )
    try:
        thread_count(args.threads, what="--threads")
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if args.backend == "pytriton":
        from ganrt.serve.pytriton_backend import PyTritonUnavailableError, import_pytriton

        try:  # fail before spending time on loading models
            import_pytriton()
        except PyTritonUnavailableError as exc:
            raise CLIError(str(exc)) from None
        if args.port == 0:
            raise CLIError("--backend pytriton needs an explicit --port (it also uses PORT+1 and PORT+2)")

    models: dict[str, list[Model]] = {}
    try:
        for name, path in specs.items():
            if not path.exists():
                raise CLIError(f"model {name!r}: {path} does not exist")
            models[name] = []  # filled as loaded, so a failure part-way still closes what was opened
            try:
                _load_instances(models[name], path, args)
            except (OSError, ValueError, TypeError, RuntimeError) as exc:
                raise CLIError(f"cannot load model {name!r} from {path}: {exc}") from None
        if args.host not in _LOOPBACK:
            print(
                f"ganrt serve: listening on {args.host}, reachable from other machines; the server has no "
                f"authentication",
                file=sys.stderr,
            )
        if args.backend == "pytriton":
            from ganrt.serve.pytriton_backend import serve_pytriton

            print(
                f"ganrt serve: starting Triton (PyTriton) on http://{args.host}:{args.port} "
                f"({', '.join(models)})",
                flush=True,
            )
            serve_pytriton(models, host=args.host, port=args.port, config=config)
            return 0

        from ganrt.serve.server import serve

        def announce(host: str, port: int) -> None:
            page = "; web page at /" if config.ui else ""
            print(f"ganrt serve: listening on http://{host}:{port} ({', '.join(models)}){page}", flush=True)

        serve(
            models,
            host=args.host,
            port=args.port,
            config=config,
            log_level=args.log_level,
            on_started=announce,
        )
    finally:
        for instances in models.values():
            for model in instances:
                model.close()
    return 0


def _load_instances(into: list[Model], path: Path, args: argparse.Namespace) -> None:
    """Load ``args.instances`` copies of ``path`` into ``into``, splitting the default CPU threads.

    Split before the first load: with ``--runtime auto`` the backend selection is timed (and recorded) at the
    thread count the instances will run with, and the other instances reuse its record."""
    import ganrt
    from ganrt.backends.device import physical_cores
    from ganrt.runtime.loader import classify

    threads = args.threads
    if args.instances > 1 and threads is None and classify(path)[0] != "engine":
        # the runtime's default is every physical core; instances computing at once would oversubscribe them
        threads = max(1, physical_cores() // args.instances)
    for _ in range(args.instances):
        into.append(ganrt.load(path, backend=args.runtime, device=args.device, threads=threads))
