"""uvd.devices: one device rule and one autocast rule."""

from __future__ import annotations

import pytest
import torch

from uvd.devices import autocast, pick_device


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    want = "cuda:1" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto", index=1) == torch.device(want)


def test_autocast_bf16_only_when_it_pays_or_is_asked_for():
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with autocast("cpu", "auto"):
        assert (a @ b).dtype == torch.float32  # CPU bf16 is slower: auto stays fp32
    for name in ("bf16", "bfloat16"):
        with autocast(torch.device("cpu"), name):
            assert (a @ b).dtype == torch.bfloat16
    with autocast("cpu", "float32"):
        assert (a @ b).dtype == torch.float32
    with pytest.raises(ValueError, match="precision"):
        autocast("cpu", "half")
