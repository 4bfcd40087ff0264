"""The tabular plugin's tests use tiny models and batches: one torch thread is faster, and on a
busy machine several threads spin against each other (the suite ran 3-4x slower)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
