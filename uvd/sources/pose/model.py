"""MMPose for uvd: the optional import, model loading and a RunInference handler over person crops.

This module imports without the extra (scripts/setup-pose.sh calls `import_mmpose` to check the
install); mmpose itself loads only in `import_mmpose`, i.e. in `load_pose_model` on a worker.

    handler = MMPoseModelHandler(config="rtmpose-t", checkpoint="rtmpose-t.pth")
    examples | RunInference(handler)   # {"image": RGB uint8 (H, W, 3), "boxes": (N, 4) xyxy}
                                       # -> PredictionResult(example, (N, 17, 3) x, y, score)

Configs: a name in uvd/sources/pose/configs (`rtmpose-t`), a path to any MMPose config file, or
`mmpose::<path under MMPose's configs/>` (the stock configs shipped in the mmpose wheel).
Checkpoints: a local path or an http(s) URL (downloaded once into the torch hub cache); none
means random weights, which only the plumbing tests use.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger("uvd")

INSTALL_HINT = "install uvd[pose]: make setup-pose (runs scripts/setup-pose.sh)"
CONFIG_DIR = os.path.join(os.path.dirname(__file__), "configs")
# Short names for the configs in CONFIG_DIR.
CONFIGS = {"rtmpose-t": "rtmpose_t_coco_256x192.py"}
DEFAULT_CONFIG = "rtmpose-t"
NUM_KEYPOINTS = 17  # COCO-17


class MissingExtraError(ImportError):
    """An optional extra is not installed; the message says how to install it (uvd.cli prints it)."""

    extra = "pose"


def _allow_mmcv_lite() -> None:
    """Let mmpose import on mmcv-lite (mmcv without compiled kernels).

    mmpose's package imports pull in `mmcv.ops` (edpose_head imports a deformable-attention op at
    module level), and `mmcv.ops` asks `mmcv._ext` for ~200 kernels at import. Top-down pose models
    call none of them, so when the compiled module is absent we register one whose every kernel
    raises a clear error if a model ever calls it, instead of failing every import.
    """
    if "mmcv._ext" in sys.modules:
        return
    try:
        importlib.import_module("mmcv._ext")
        return
    except ImportError:
        pass
    missing = types.ModuleType("mmcv._ext")
    missing.__doc__ = "Placeholder: mmcv-lite has no compiled ops (uvd.sources.pose.model)."

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def kernel(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError(
                f"mmcv op {name!r} needs mmcv built with its C++ ops; mmcv-lite has none. "
                "Top-down pose models do not use it: check the model config."
            )

        return kernel

    missing.__getattr__ = __getattr__  # type: ignore[attr-defined]
    sys.modules["mmcv._ext"] = missing


def import_mmpose() -> str:
    """Import mmengine, mmcv and mmpose, or raise MissingExtraError with the install hint."""
    try:
        import mmcv
        import mmengine

        _allow_mmcv_lite()
        import mmpose
    except (ImportError, AssertionError) as exc:  # mmpose asserts its mmcv/mmengine version range
        raise MissingExtraError(
            f"the pose stage needs the uvd[pose] extra ({type(exc).__name__}: {exc}); {INSTALL_HINT}"
        ) from None
    return f"mmpose {mmpose.__version__}, mmcv {mmcv.__version__}, mmengine {mmengine.__version__}"


def resolve_config(config: str) -> str:
    """A config name, path or `mmpose::` reference -> a file path (ValueError when missing)."""
    if config in CONFIGS:
        path = os.path.join(CONFIG_DIR, CONFIGS[config])
    elif config.startswith("mmpose::"):
        import mmpose

        path = os.path.join(os.path.dirname(mmpose.__file__), ".mim", "configs", config[len("mmpose::") :])
    else:
        path = config
    if not os.path.isfile(path):
        raise ValueError(
            f"pose config {config!r} not found ({path}); use one of {sorted(CONFIGS)}, a file path, "
            "or mmpose::<path under mmpose configs/>"
        )
    return path


@dataclass
class PoseModel:
    """A loaded top-down estimator with its test pipeline (bbox -> affine crop -> tensors).

    A plain class, not a tuple: RunInference shares the model across threads via a weak reference.
    """

    model: Any  # mmpose TopdownPoseEstimator, eval mode
    pipeline: Any  # mmengine Compose of the config's test pipeline
    dataset_meta: dict  # keypoint names, flip pairs... (COCO-17)
    device: str


# Globals an OpenMMLab checkpoint may pickle besides tensors: numpy arrays in `meta.dataset_meta`
# and mmengine's HistoryBuffer in `message_hub`. Anything else needs trust_checkpoint=True.
SAFE_GLOBAL_PREFIXES = ("numpy.", "collections.OrderedDict", "mmengine.logging.history_buffer.")


def _resolve_global(name: str) -> Any:
    """'numpy._core.multiarray._reconstruct' -> the object (longest importable module prefix)."""
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


def checkpoint_path(checkpoint: str) -> str:
    """A local path as is; an http(s) URL downloaded once into the torch hub cache."""
    if not checkpoint.startswith(("http://", "https://")):
        if not os.path.isfile(checkpoint):
            raise FileNotFoundError(f"pose checkpoint not found: {checkpoint}")
        return checkpoint
    import torch

    target = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(checkpoint.split("?")[0]))
    if not os.path.isfile(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        log.info("pose: downloading %s -> %s", checkpoint, target)
        torch.hub.download_url_to_file(checkpoint, target)
    return target


def read_checkpoint(path: str, trust: bool = False) -> dict:
    """torch.load with weights_only, allowing only the plain globals OpenMMLab checkpoints hold.

    torch >= 2.6 refuses numpy arrays under weights_only, and mmengine's loader predates that;
    `trust=True` loads arbitrary pickles (only for checkpoints you made or trust).
    """
    import torch

    if trust:
        return torch.load(path, map_location="cpu", weights_only=False)
    names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    unsafe = [n for n in names if not n.startswith(SAFE_GLOBAL_PREFIXES)]
    if unsafe:
        raise ValueError(
            f"pose checkpoint {path} pickles {unsafe[:3]}: refusing to unpickle them; "
            "set trust_checkpoint if you trust this file"
        )
    allowed = [_resolve_global(n) for n in names]
    if any(n.startswith("numpy.") for n in names):  # dtype classes are built inside numpy's reduce
        allowed += [np.ndarray, np.dtype] + [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location="cpu", weights_only=True)


def load_weights(model: Any, checkpoint: dict) -> None:
    """Copy a checkpoint's state_dict into the model; a missing parameter is an error (a config
    and checkpoint that do not match would give plausible-looking garbage labels)."""
    state = checkpoint.get("state_dict", checkpoint)
    state = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state.items()}
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys:
        raise ValueError(
            f"pose checkpoint lacks {len(result.missing_keys)} of the model's weights, e.g. "
            f"{result.missing_keys[:3]}: does the config match the checkpoint?"
        )
    if result.unexpected_keys:
        log.warning(
            "pose: checkpoint has %d weights the model does not use, e.g. %s",
            len(result.unexpected_keys),
            result.unexpected_keys[:3],
        )


def load_pose_model(
    config: str = DEFAULT_CONFIG,
    checkpoint: str | None = None,
    device: str = "cpu",
    flip_test: bool = False,
    trust_checkpoint: bool = False,
) -> PoseModel:
    """Build the config's model and load the checkpoint (path or URL); random weights when none."""
    import_mmpose()
    import torch
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    from mmpose.models import build_pose_estimator

    cfg = Config.fromfile(resolve_config(config))
    init_default_scope(cfg.get("default_scope", "mmpose"))
    cfg.model.train_cfg = None
    cfg.model.setdefault("test_cfg", {})["flip_test"] = bool(flip_test)
    backbone = cfg.model.get("backbone", {})
    if isinstance(backbone, dict):
        backbone["init_cfg"] = None  # no pretrained-backbone download: weights come from `checkpoint`
    with torch.random.fork_rng():  # random weights (no checkpoint) are the same on every worker and run
        torch.manual_seed(0)
        model = build_pose_estimator(cfg.model)
    meta = None
    if checkpoint:
        ckpt = read_checkpoint(checkpoint_path(checkpoint), trust=trust_checkpoint)
        load_weights(model, ckpt)
        meta = (ckpt.get("meta") or {}).get("dataset_meta")
    else:
        log.warning("pose: no checkpoint given, %s has RANDOM weights (plumbing tests only)", config)
    model.dataset_meta = meta or parse_pose_metainfo(dict(from_file="configs/_base_/datasets/coco.py"))
    model.cfg = cfg
    model.to(device).eval()
    pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
    return PoseModel(model, pipeline, dict(model.dataset_meta), device)


def predict_keypoints(
    pose: PoseModel, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray], max_crops: int = 64
) -> list[np.ndarray]:
    """Top-down keypoints for every box of every image, crops batched `max_crops` at a time.

    images: RGB uint8 (H, W, 3); boxes: float (N_i, 4) x0, y0, x1, y1 in that image's pixels.
    Returns per image float32 (N_i, 17, 3): x, y in the image's pixels and the model's score.
    MMPose configs expect BGR (their data preprocessor swaps to RGB), so crops are fed as BGR.
    """
    import torch
    from mmengine.dataset import pseudo_collate

    crops, owners = [], []
    for i, (image, image_boxes) in enumerate(zip(images, boxes)):
        bgr = np.ascontiguousarray(np.asarray(image)[..., ::-1])
        for box in np.asarray(image_boxes, np.float32).reshape(-1, 4):
            info = {"img": bgr, "bbox": box[None], "bbox_score": np.ones(1, np.float32)}
            info.update(pose.dataset_meta)
            crops.append(info)
            owners.append(i)
    people: list[np.ndarray] = []
    with torch.no_grad():
        for start in range(0, len(crops), max(1, max_crops)):
            batch = pseudo_collate([pose.pipeline(c) for c in crops[start : start + max_crops]])
            for sample in pose.model.test_step(batch):
                pred = sample.pred_instances
                xy = np.asarray(pred.keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 2)[0]
                score = np.asarray(pred.keypoint_scores, np.float32).reshape(-1, NUM_KEYPOINTS)[0]
                people.append(np.concatenate([xy, score[:, None]], axis=1))
    out = [np.zeros((0, NUM_KEYPOINTS, 3), np.float32) for _ in images]
    for i in range(len(images)):
        mine = [p for p, owner in zip(people, owners) if owner == i]
        if mine:
            out[i] = np.stack(mine)
    return out


def _model_handler_base() -> type:
    from apache_beam.ml.inference.base import ModelHandler

    return ModelHandler


class MMPoseModelHandler(_model_handler_base()):  # type: ignore[misc]
    """RunInference handler: {"image", "boxes"} examples -> PredictionResult(example, (N, 17, 3)).

    The model loads once per worker (RunInference calls load_model); a batch of examples becomes
    one list of crops, run `max_crops` per forward pass.
    """

    def __init__(
        self,
        config: str = DEFAULT_CONFIG,
        checkpoint: str | None = None,
        device: str = "cpu",
        flip_test: bool = False,
        trust_checkpoint: bool = False,
        max_crops: int = 64,
        min_batch_size: int = 1,
        max_batch_size: int = 8,
    ) -> None:
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size)
        self.config, self.checkpoint, self.device = config, checkpoint, device
        self.flip_test, self.trust_checkpoint, self.max_crops = flip_test, trust_checkpoint, max_crops

    def load_model(self) -> PoseModel:
        return load_pose_model(self.config, self.checkpoint, self.device, self.flip_test, self.trust_checkpoint)

    def run_inference(
        self, batch: Sequence[dict], model: PoseModel, inference_args: dict | None = None
    ) -> Iterable[Any]:
        from apache_beam.ml.inference.base import PredictionResult

        keypoints = predict_keypoints(
            model, [ex["image"] for ex in batch], [ex["boxes"] for ex in batch], self.max_crops
        )
        return [
            PredictionResult(ex, kp, model_id=self.checkpoint or f"{self.config}:random")
            for ex, kp in zip(batch, keypoints)
        ]

    def get_num_bytes(self, batch: Sequence[dict]) -> int:
        return int(sum(np.asarray(ex["image"]).nbytes for ex in batch))

    def get_metrics_namespace(self) -> str:
        return "uvd.pose.inference"
