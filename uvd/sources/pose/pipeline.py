"""`uvd pose`: MMPose keypoints for images without pose labels -> OpenPose skeleton pairs.

    items (folder images | COCO images + person boxes) --Reshuffle--> Decode --> RunInference
    (MMPose top-down, crops batched) --> KeepPeople (thresholds; none -> "no_person" skip)
    --> annotation records, drawn by the shared renderer (image + skeleton rows) --> PairSentences

The records are the ones the dataset adapters emit (uvd.annotated.records), task
"pose", type "keypoints", so skeletons come out of uvd.transforms.pose.render_pose exactly like
COCO's labelled ones, and sentences are 8 (image, skeleton) pairs from ann/<task> pools.
Needs the uvd[pose] extra (make setup-pose); importing this module without it raises
MissingExtraError with that hint.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import PredictionResult, RunInference

from uvd.annotated.emit import emit_record, with_pair_sentences
from uvd.annotated.options import AnnotatedOptions
from uvd.annotated.records import RecordError, annotation, make_record
from uvd.config import require
from uvd.core import files
from uvd.core.outputs import FAILURES, DeadLetterDoFn, RunSource, SourceOutputs, SourceTransform
from uvd.core.stage import SourceStage
from uvd.schema import failure_row
from uvd.sources.pose import people as pose_people
from uvd.sources.pose.model import DEFAULT_CONFIG, MMPoseModelHandler, import_mmpose

import_mmpose()  # fail here, with the install hint, rather than on a worker

STAGE = "pose"
TASK = "pose"
log = logging.getLogger("uvd")


@dataclass
class Config(AnnotatedOptions):
    input: str  # folder of images, or the folder `coco`/`images` are relative to
    coco: str | None = None  # COCO JSON (relative to input): its person boxes, else whole image
    images: str = ""  # folder the COCO file_name values are relative to (under input)
    name: str = "mmpose"  # dataset name: image rows' source ann/<name>, pair pools
    split: str | None = None  # dataset-native split, if any
    config: str = DEFAULT_CONFIG  # uvd.sources.pose.model.CONFIGS name, config path or mmpose::...
    checkpoint: str = ""  # local path or URL; empty = random weights (tests only)
    trust_checkpoint: bool = False  # unpickle arbitrary objects in the checkpoint
    device: str = "cpu"
    flip_test: bool = False  # average with the mirrored crop (2x compute, better joints)
    keypoint_threshold: float = 0.3  # a joint is drawn when its score is above this
    person_threshold: float = 0.3  # a person is kept when its mean joint score reaches this
    min_keypoints: int = 4  # ... and at least this many joints are above keypoint_threshold
    min_box_size: float = 16.0  # COCO person boxes smaller than this (px, either side) are ignored
    max_people: int = 20  # largest COCO person boxes kept per image
    batch_size: int = 8  # images per RunInference batch
    max_crops: int = 64  # person crops per forward pass

    def validate(self) -> None:
        require(bool(self.input), "input", "give the folder of images (or of the COCO JSON)")
        for name in ("keypoint_threshold", "person_threshold", "min_box_size"):
            value = getattr(self, name)
            require(np.isfinite(value) and value >= 0, name, f"must be a number >= 0, got {value}")
        require(
            0 <= self.min_keypoints <= pose_people.NUM_KEYPOINTS,
            "min_keypoints",
            f"must be 0..{pose_people.NUM_KEYPOINTS}, got {self.min_keypoints}",
        )
        for name in ("max_people", "batch_size", "max_crops"):
            require(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        self.validate_annotated()


def list_items(cfg: Config) -> Iterator[dict]:
    """The stage's inputs: COCO images with person boxes, or every image under `input`."""
    if cfg.coco:
        data = files.read_bytes(files.join(cfg.input, cfg.coco))
        yield from pose_people.coco_items(
            data, files.join(cfg.input, cfg.images), cfg.name, cfg.split, cfg.min_box_size, cfg.max_people
        )
    else:
        yield from pose_people.folder_items(cfg.input, cfg.name, cfg.split)


def _source(cfg: Config) -> str:
    return f"ann/{cfg.name}"


class _Decode(DeadLetterDoFn):
    """item -> inference example {record_id, image, boxes...}, or a failure row (tag FAILURES)."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(_source(cfg), STAGE, "decode")
        self.cfg = cfg

    def convert(self, item: dict) -> Iterator:
        decoded = files.read_image(item["file"])
        h, w = decoded.pixels.shape[:2]
        boxes = (
            pose_people.whole_image_box(h, w)
            if item["boxes"] is None
            else np.asarray(item["boxes"], np.float32).reshape(-1, 4)
        )
        if not len(boxes):
            raise RecordError(
                "no_person", f"{item['file']}: no person box of >= {self.cfg.min_box_size} px", status="skipped"
            )
        yield {**item, "image": decoded.pixels, "boxes": boxes}


class KeepPeople:
    """PredictionResult(example, (N, 17, 3)) -> image + skeleton rows, or a "no_person" skip."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def __call__(self, result: PredictionResult) -> Iterator[tuple[str, dict]]:
        cfg, ex = self.cfg, result.example
        h, w = ex["image"].shape[:2]
        people = pose_people.select_people(
            result.inference, h, w, cfg.keypoint_threshold, cfg.person_threshold, cfg.min_keypoints
        )
        if not len(people):
            yield (
                FAILURES,
                failure_row(
                    ex["record_id"],
                    _source(cfg),
                    STAGE,
                    "no_person",
                    f"{len(ex['boxes'])} boxes, none with mean score >= {cfg.person_threshold} and "
                    f">= {cfg.min_keypoints} joints above {cfg.keypoint_threshold}",
                    status="skipped",
                ),
            )
            return
        provenance = {
            "path": ex["file"],
            "model": result.model_id,
            "people": int(len(people)),
            "keypoints": people.astype(np.float64).tolist(),
        }  # exact: re-renders bit for bit
        record = make_record(
            ex["record_id"],
            cfg.name,
            ex["image"],
            {TASK: annotation("keypoints", people, score_threshold=cfg.keypoint_threshold)},
            group=ex["record_id"],
            split=ex.get("split"),
            provenance=provenance,
        )
        yield from emit_record(
            record, cfg, source=_source(cfg), stage=STAGE
        )  # skipped rows: e.g. joints outside the crop


def _inference_failures(failed: tuple, cfg: Config) -> Iterator[dict]:
    """RunInference's dead letter (a whole batch and its exception) -> one failure row per image."""
    batch, exc = failed
    for ex in batch:
        yield failure_row(ex["record_id"], _source(cfg), STAGE, f"inference_{type(exc).__name__}", str(exc)[:300])


class PoseSource(SourceTransform):
    """PBegin -> SourceOutputs(images, sentences, failures) of pose pseudo-labels."""

    def expand(self, pbegin) -> SourceOutputs:
        cfg = self.cfg
        handler = MMPoseModelHandler(
            cfg.config,
            cfg.checkpoint or None,
            cfg.device,
            cfg.flip_test,
            cfg.trust_checkpoint,
            cfg.max_crops,
            max_batch_size=cfg.batch_size,
        )
        decoded = (
            pbegin
            | "Config" >> beam.Create([cfg])
            | "Items" >> beam.FlatMap(list_items)
            | "Spread" >> beam.Reshuffle()
            | "Decode" >> beam.ParDo(_Decode(cfg)).with_outputs(FAILURES, main="examples")
        )
        predictions, dead = decoded.examples | "Keypoints" >> RunInference(handler).with_exception_handling()
        failed_inference = dead.failed_inferences | "InferenceFailures" >> beam.FlatMap(_inference_failures, cfg)
        out = predictions | "KeepPeople" >> RunSource(
            KeepPeople(cfg), source=_source(cfg), stage=STAGE, record_id=lambda r: r.example["record_id"]
        )
        return with_pair_sentences(out, cfg, decoded[FAILURES], failed_inference)


STAGE_SPEC = SourceStage("pose", Config, PoseSource, __doc__)
source_transform = STAGE_SPEC.source_transform  # `uvd dataset`: the entry's options checked before any work
run = STAGE_SPEC.run  # `uvd pose --input DIR --output OUT [--coco instances.json] [--checkpoint CKPT] [options]`
