"""The ``ganrt`` command line: parses arguments and hands them to the stage packages.

Each subcommand lives in ``ganrt/<stage>/cli.py`` as a module with ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``. Those modules import nothing heavy at module level so ``ganrt --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from ganrt import __version__
from ganrt.errors import CLIError

# subcommand -> module providing HELP, add_arguments(parser), run(args)
COMMANDS: dict[str, str] = {
    "train": "ganrt.train.cli",
    "import-upstream": "ganrt.train.import_cli",
    "export": "ganrt.export.cli",
    "lint": "ganrt.export.lint_cli",
    "translate": "ganrt.runtime.cli_translate",
    "sample": "ganrt.runtime.cli_sample",
    "info": "ganrt.runtime.cli_info",
    "serve": "ganrt.serve.cli",
    "bench": "ganrt.bench.cli",
}


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (``ganrt train: error: argument --lr: must be a finite number, got 'nan'``)
    and exit status 2, like every other CLI error; ``--help`` still shows the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ganrt", description="Train, export and serve image GANs and VAEs.")
    parser.add_argument("--version", action="version", version=f"ganrt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except CLIError as exc:
        print(f"ganrt {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ganrt {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
