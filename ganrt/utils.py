"""Helpers every stage needs, written once: atomic file writes (and the cleanup of their orphans) and PSNR.

Nothing here imports torch, so the CLI can use it without slowing ``ganrt --help``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; when the block succeeds, fsync it and rename it over
    ``path``, so readers see the old file or the new one, never a partial one. On failure the temporary file
    is removed and ``path`` is untouched.

    The temporary name is unique (:func:`fresh_temp`), so concurrent writers of the same file never collide; it
    starts with a dot and ends in ``.tmp``, so an interrupted write is easy to recognise and clean up.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = fresh_temp(target)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def fresh_temp(target: Path, *, directory: bool = False) -> Path:
    """Create an empty, uniquely named file (or folder) beside ``target``, named like
    ``.<target name>.<8 hex digits>.tmp``, with the mode a plain ``open``/``mkdir`` of ``target`` would give
    it: 0o666/0o777 less the umask, or ``target``'s own mode when a file of that name exists. ``mkstemp`` and
    ``mkdtemp`` make it 0o600/0o700, and the rename into place would then hand a model, an export or a
    checkpoint to its owner alone."""
    try:
        mode = target.stat().st_mode & 0o7777 if not directory else None
    except OSError:
        mode = None
    while True:
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:
            if directory:
                os.mkdir(tmp, 0o777)
                return tmp
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        try:
            if mode is not None:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
        return tmp


# What fresh_temp's files and folders look like: ".<target name>.<8 random characters>.tmp" (older versions
# used mkstemp/mkdtemp's 8-character suffix, which matches too).
_ORPHAN = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def remove_orphan_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries an interrupted :func:`atomic_path` (or a killed process) left directly in
    ``folder``, and nothing else; returns what was removed. Only call it where no other writer is at work
    (a run directory owned by this process)."""
    import shutil

    root = Path(folder)
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for entry in root.iterdir():
        if _ORPHAN.match(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def psnr(reference: np.ndarray, actual: np.ndarray, peak: float) -> float:
    """PSNR in dB of ``actual`` against ``reference`` for a signal of peak-to-peak ``peak`` (2.0 for images in
    [-1, 1], 255 for uint8 pictures); ``inf`` when they are identical. Computed in float64."""
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(actual, np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(peak * peak / mse)
