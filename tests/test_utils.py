"""ganrt.utils: atomic writes publish files with the permissions a plain write would give them."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ganrt.utils import _ORPHAN, atomic_path, atomic_write, fresh_temp, remove_orphan_temps


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_file_gets_the_umask_mode_not_owner_only(tmp_path: Path, umask_022: None) -> None:
    target = atomic_write(tmp_path / "model.onnx", b"weights")
    assert target.read_bytes() == b"weights"
    assert _mode(target) == 0o644  # mkstemp would have left 0o600: unreadable to a serving user
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_rewrite_keeps_the_existing_files_mode(tmp_path: Path, umask_022: None) -> None:
    target = tmp_path / "config.json"
    target.write_text("{}")
    target.chmod(0o640)
    atomic_write(target, "{\"a\": 1}")
    assert target.read_text() == "{\"a\": 1}" and _mode(target) == 0o640


def test_folder_gets_the_umask_mode(tmp_path: Path, umask_022: None) -> None:
    folder = fresh_temp(tmp_path / "step_00000010", directory=True)
    assert folder.is_dir() and _mode(folder) == 0o755 and _ORPHAN.match(folder.name)


def test_failed_write_leaves_the_target_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_temporaries_are_what_orphan_cleanup_removes(tmp_path: Path) -> None:
    names = {fresh_temp(tmp_path / "weights.safetensors").name for _ in range(20)}
    assert len(names) == 20 and all(_ORPHAN.match(n) for n in names)
    (tmp_path / "notes.tmp").write_text("a user's file")
    assert {p.name for p in remove_orphan_temps(tmp_path)} == names
    assert [p.name for p in tmp_path.iterdir()] == ["notes.tmp"]
