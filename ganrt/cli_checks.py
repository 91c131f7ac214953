"""Option validators every ``ganrt`` subcommand shares, so a bad value fails at once with one line naming the
option, before any slow work (loading models, exporting, training, benchmarking).

- argparse ``type=`` converters (:func:`finite_float`, :func:`positive_int`): NaN, infinities and values
  out of range are refused while parsing; argparse names the option.
- :func:`output_file` / :func:`output_dir`: an output path that is the wrong kind of thing (a folder where a
  file goes, a file where a folder goes, or below a file) is refused before the work that would write it.
- :func:`thread_count`: the most CPU threads a caller may ask for (the cores there are).

Nothing here imports torch, so ``ganrt --help`` stays fast.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

from ganrt.errors import CLIError


def finite_float(
    *, minimum: float | None = None, exclusive: bool = False, maximum: float | None = None
) -> Callable[[str], float]:
    """An argparse ``type=`` accepting finite numbers in [minimum, maximum] (``(minimum, ...`` when
    ``exclusive``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if minimum is not None and (value <= minimum if exclusive else value < minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if exclusive else '>='} {minimum:g}, got {text}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum:g}, got {text}")
        return value

    return parse


def positive_int(*, maximum: int | None = None, what: str = "") -> Callable[[str], int]:
    """An argparse ``type=`` accepting integers in [1, maximum]; ``what`` says what the maximum is."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
        if maximum is not None and value > maximum:
            why = f" ({what})" if what else ""
            raise argparse.ArgumentTypeError(f"must be <= {maximum}{why}, got {value}")
        return value

    return parse


def cpu_count() -> int:
    """Logical CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def thread_count(threads: int | None, *, what: str = "threads") -> int | None:
    """``threads`` checked against the cores there are: ``None`` stays ``None`` (the default), values below 1
    or above the logical CPU count raise ``ValueError`` naming the limit (more threads than cores only
    oversubscribe them, and a typo such as 100000 would start that many OS threads)."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"{what} must be a positive integer or None, got {threads!r}")
    cores = cpu_count()
    if threads > cores:
        raise ValueError(f"{what} must be at most {cores} (the logical CPUs of this machine), got {threads}")
    return threads


def output_file(path: str | os.PathLike[str] | None, option: str) -> Path | None:
    """``path`` as a Path after checking a file can be written there: not an existing folder, and no
    existing file where one of its parent folders would go. Raises :class:`CLIError` naming ``option``."""
    if path is None:
        return None
    target = Path(path).expanduser()
    if target.is_dir():
        raise CLIError(f"{option} {str(path)!r} is a folder; give a file path")
    _check_parents(target, option, path)
    return target


def output_dir(path: str | os.PathLike[str] | None, option: str) -> Path | None:
    """``path`` as a Path after checking a folder can be created there (it is a folder or does not exist,
    and no parent is a file). Raises :class:`CLIError` naming ``option``."""
    if path is None:
        return None
    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise CLIError(f"{option} {str(path)!r} is a file; give a folder")
    _check_parents(target, option, path)
    return target


def _check_parents(target: Path, option: str, given: str | os.PathLike[str]) -> None:
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CLIError(f"{option} {str(given)!r}: {str(parent)!r} is a file, not a folder")
            return
