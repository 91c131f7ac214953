"""ganrt's cache folder: one root for OpenVINO's compiled models and the runtime's backend selection records.

The root is ``$GANRT_CACHE_DIR``, else ``$XDG_CACHE_HOME/ganrt``, else ``~/.cache/ganrt``. Everything in it
can be deleted at any time: it is rebuilt on the next load. Artifacts are identified by the SHA-256 of their
contents; a small memo keyed by the file's identity (device, inode, size, modification and change times, which
every write updates) saves re-reading a large model on every load.

A folder that cannot be written (read-only, full, not a folder) is not an error: the caller gets ``None`` and
a :class:`CacheWarning`, and runs without the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from pathlib import Path

ENV = "GANRT_CACHE_DIR"
_DIGEST_FORMAT = "ganrt-digest/1"
_memo: dict[tuple, str] = {}
_memo_lock = threading.Lock()


class CacheWarning(UserWarning):
    """ganrt's cache folder cannot be used; the runtime continues without it."""


def cache_root() -> Path:
    """The cache root (see the module docstring); not created here."""
    explicit = os.environ.get(ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ganrt"


def writable_dir(*parts: str) -> Path | None:
    """``cache_root()/parts...``, created and proven writable by writing a probe file, else ``None`` after a
    :class:`CacheWarning` naming the folder and the reason."""
    folder = cache_root().joinpath(*parts)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}-{threading.get_ident()}"
        with open(probe, "wb") as f:
            f.write(b"ganrt")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as exc:
        warn_unusable(folder, exc)
        return None
    return folder


def warn_unusable(folder: Path, exc: BaseException) -> None:
    """The one warning for a cache folder that cannot be used."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
    warnings.warn(
        f"ganrt cache folder {folder} cannot be written ({reason}); continuing without the cache, so loads "
        f"repeat the compilation and backend selection. Set {ENV} to a writable folder to keep them.",
        CacheWarning,
        stacklevel=3,
    )


def artifact_digest(path: Path) -> str:
    """SHA-256 (hex) of the file's contents, memoized per file identity in this process and in the cache."""
    st = path.stat()
    resolved = path.resolve()
    ident = (str(resolved), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _memo_lock:
        if ident in _memo:
            return _memo[ident]
    memo_file = cache_root() / "digests" / (hashlib.sha256(str(resolved).encode()).hexdigest()[:32] + ".json")
    digest = _read_memo(memo_file, ident)
    if digest is None:
        sha = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                sha.update(chunk)
        digest = sha.hexdigest()
        _write_memo(memo_file, ident, digest)
    with _memo_lock:
        _memo[ident] = digest
    return digest


def _read_memo(memo_file: Path, ident: tuple) -> str | None:
    try:
        document = json.loads(memo_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(document, dict) or document.get("format") != _DIGEST_FORMAT:
        return None
    digest = document.get("sha256")
    if document.get("ident") != list(ident) or not isinstance(digest, str) or len(digest) != 64:
        return None
    return digest


def _write_memo(memo_file: Path, ident: tuple, digest: str) -> None:
    from ganrt.utils import atomic_write

    document = {"format": _DIGEST_FORMAT, "ident": list(ident), "sha256": digest}
    try:
        atomic_write(memo_file, json.dumps(document) + "\n")
    except OSError:
        pass  # only a shortcut: the selection and compile caches report an unusable folder themselves


__all__ = ["ENV", "CacheWarning", "artifact_digest", "cache_root", "warn_unusable", "writable_dir"]
