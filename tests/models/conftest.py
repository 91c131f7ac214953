"""Fixtures of the model tests: the independent reference re-implementation, loaded by path.

The test suite runs with ``--import-mode=importlib`` (no ``sys.path`` changes, no ``tests`` package), so the
helper module is loaded from its file rather than imported by name.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


def _load(name: str) -> ModuleType:
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"ganrt_tests_models_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def upstream_arch() -> ModuleType:
    """tests/models/upstream_arch.py: the reference generators with their exact state_dict layout."""
    return _load("upstream_arch")


@pytest.fixture(scope="session")
def tol() -> ModuleType:
    """tests/models/tolerances.py: every tolerance the model tests use."""
    return _load("tolerances")
