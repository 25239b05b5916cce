"""Shared test settings: GPU tests skip without CUDA; pose tests need the uvd[pose] extra."""

from __future__ import annotations

import importlib.util

import pytest


def _has_cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    skip_pose = pytest.mark.skip(reason="needs the uvd[pose] extra: make setup-pose")
    has_pose = importlib.util.find_spec("mmpose") is not None
    cuda = None
    for item in items:
        if "gpu" in item.keywords:
            cuda = _has_cuda() if cuda is None else cuda
            if not cuda:
                item.add_marker(skip_gpu)
        if "pose" in item.keywords and not has_pose:
            item.add_marker(skip_pose)
