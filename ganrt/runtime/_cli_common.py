"""Options and error handling shared by ``ganrt translate``, ``ganrt sample`` and ``ganrt info``."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ganrt.backends import BACKENDS
from ganrt.errors import CLIError

if TYPE_CHECKING:
    from ganrt.runtime.model import Model


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a .engine/.plan, a .onnx or a ganrt run directory")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=("auto", *BACKENDS),
        help="inference backend (default: the fastest that can run MODEL here)",
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:<i> (default: auto)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: physical cores)")
    parser.add_argument(
        "--precision",
        choices=("fp32", "fp16", "bf16"),
        default=None,
        help="inference precision (default: chosen with the backend; bf16 only within the quality bound)",
    )


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the runtime's expected failures (bad paths, artifacts, inputs, missing backends) into one line."""
    from ganrt.errors import BackendUnavailableError

    try:
        yield
    except (FileNotFoundError, IsADirectoryError, ValueError, TypeError, BackendUnavailableError) as exc:
        message = str(exc).strip().splitlines()
        raise CLIError(message[0] if message else type(exc).__name__) from exc


def load_model(args: argparse.Namespace) -> Model:
    from ganrt.runtime import load

    with user_errors():
        return load(
            args.model,
            backend=args.backend,
            device=args.device,
            threads=args.threads,
            precision=args.precision,
        )
