"""``ganrt info MODEL``: what a model is and how ganrt would run it."""

from __future__ import annotations

import argparse
import json

from ganrt.errors import CLIError
from ganrt.runtime._cli_common import add_load_arguments, load_model

HELP = "Show a model's family, task, I/O, backend, device and precision."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_load_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="also recompute the weights' sha256 and compare it with the one recorded at export, and check "
        "every weight is finite (exit 2 when either fails)",
    )


def run(args: argparse.Namespace) -> int:
    with load_model(args) as model:
        info = model.info()
    if args.verify:
        from ganrt.errors import ArtifactError
        from ganrt.runtime.verify import verify

        try:
            check = verify(args.model)
        except (ArtifactError, OSError) as exc:
            raise CLIError(str(exc).splitlines()[0]) from None
        info["verify"] = check.describe()
        if not check.ok:
            raise CLIError(f"{args.model}: {info['verify']['status']}")
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(info["path"]), show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in info.items():
        if key in ("inputs", "outputs"):
            value = "\n".join(f"{t['name']}: {t['dtype']} {tuple(t['shape'])}" for t in value)
        elif isinstance(value, (list, dict)):
            value = json.dumps(value)
        table.add_row(key, str(value))
    Console().print(table)
    return 0
