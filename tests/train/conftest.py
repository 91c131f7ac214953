"""Training tests run single-threaded: tiny CPU models gain nothing from a second thread, and on a shared
machine OpenMP's spinning threads make timings erratic."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(params=["fp32", pytest.param("bf16", marks=pytest.mark.bf16)])
def precision(request: pytest.FixtureRequest) -> str:
    """A training precision: tests taking it run once in fp32 and once in bf16 (where the CPU has it)."""
    return str(request.param)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
