"""Loading a `transformers` vision model and its preprocessing by hub id or local folder.

`from_pretrained` takes either, so a hub id (Intel/dpt-large) and a folder written by
`save_pretrained` go through exactly the same code. Preprocessing numbers (input size, mean, std,
resample) come from the checkpoint's preprocessor_config.json when it has one, else from the
expert's defaults; the images are then squashed to that size in numpy (handler.to_batch), which
is what the processors of DPT and SegFormer do, and lets one batch hold images of any size.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from uvd.devices import pick_device

log = logging.getLogger("uvd")

# PIL resample codes used in preprocessor configs -> our names
_RESAMPLE = {2: "bilinear", 3: "bicubic", 1: "area"}


@dataclass(frozen=True)
class Preprocess:
    size: tuple[int, int]  # (h, w) the model sees
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resample: str = "bicubic"


def read_preprocess(checkpoint: str, default: Preprocess) -> Preprocess:
    """The checkpoint's preprocessor_config.json (size, image_mean, image_std, resample), else `default`."""
    from transformers.utils import cached_file

    try:
        path = cached_file(checkpoint, "preprocessor_config.json", _raise_exceptions_for_missing_entries=False)
    except OSError:
        path = None
    if not path:
        log.info("label: %s has no preprocessor_config.json; using %s", checkpoint, default)
        return default
    with open(path) as f:
        cfg = json.load(f)
    size = cfg.get("size") or {}
    if isinstance(size, int):
        hw = (size, size)
    elif "height" in size and "width" in size:
        hw = (int(size["height"]), int(size["width"]))
    elif "shortest_edge" in size:
        hw = (int(size["shortest_edge"]),) * 2
    else:
        hw = default.size
    return Preprocess(
        size=hw,
        mean=tuple(cfg.get("image_mean", default.mean)),
        std=tuple(cfg.get("image_std", default.std)),
        resample=_RESAMPLE.get(cfg.get("resample"), default.resample),
    )


def load_hf_model(auto_class: str, checkpoint: str, device: str) -> Any:
    """`transformers.<auto_class>.from_pretrained(checkpoint)` in eval mode on `device`."""
    import transformers

    cls = getattr(transformers, auto_class)
    model = cls.from_pretrained(checkpoint)
    return model.eval().to(pick_device(device))
