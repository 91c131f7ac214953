"""Fixtures of the model tests: the independent reference re-implementation.

Tolerances come from ``tests.tolerances`` like everywhere else in the suite.
"""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.models import upstream_arch as _upstream_arch


@pytest.fixture(scope="session")
def upstream_arch() -> ModuleType:
    """tests/models/upstream_arch.py: the reference generators with their exact state_dict layout."""
    return _upstream_arch
