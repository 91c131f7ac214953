"""Training tests run single-threaded: tiny CPU models gain nothing from a second thread, and on a shared
machine OpenMP's spinning threads make timings erratic."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
