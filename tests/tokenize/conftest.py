"""Tokenizer tests: one torch thread (CI boxes are small and shared; OpenMP spin-waits on busy
cores cost far more than a second thread gains on these tiny models)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
