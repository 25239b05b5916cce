"""`uvd hf`: a Hugging Face dataset (save_to_disk folder, Parquet/Arrow export, cached hub id) -> sentences.

    Config check    layout listed (no rows read), mapping checked against the features: a wrong
                    column is a ConfigError naming the role and the dataset's columns
    Shards          one element per Parquet row group / Arrow file / hub stream shard
    Reshuffle       shards spread across workers
    ReadRows        a shard's rows, a batch at a time (image bytes undecoded); a shard that cannot
                    be read becomes one failure row
    Reshuffle       rows spread (a shard's rows decode on many workers)
    Rows            RunSource(ProcessRow): decode, check, one image row / annotation record per
                    row, or a failure row naming the column at fault
    classification: images --ByClass--> imagenet.ClassSentences (the ImageNet stage's sampling)
    segmentation / depth / detection: annotations.emit_record --> PairSentences (8-pair sentences);
           `annotations` adds more maps of the same image (k tasks: m-of-(1+k) sentences too)
    video: rows -> video dicts --> video.PlanClips --Reshuffle--> video.DecodeClips (the video
           stage's clips at strides 10/20/30, 16 frames each)

Run: uvd hf --input DATASET --mapping classification --output out/hf [--columns label=fine_label]
(tables images, sentences, failures under out/hf/). Every row ends as an image row (or an
annotation record's rows, or video clips) or a failure row: undecodable image, label map of the
wrong shape or size, missing column or value; the failure's detail names the column.

Manifest entries (`input` plus this module's Config fields as `options`):
    imagenet_hf:
      stage: hf
      input: hf://datasets/ILSVRC/imagenet-1k   # the cached snapshot (huggingface-cli download)
      weight: 1.4
      options: {mapping: classification, split: train}
    ade20k:
      stage: hf
      input: /data/scene_parse_150              # a save_to_disk folder
      weight: 1.0
      options: {mapping: segmentation}          # columns image + annotation, ADE20K ids
    cifar100:
      stage: hf
      input: /data/cifar100/*.parquet
      weight: 0.1
      options: {mapping: classification, columns: {image: img, label: fine_label}}
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam.metrics import Metrics

from uvd import schema
from uvd.annotated.emit import emit_record, with_pair_sentences
from uvd.annotated.options import AnnotatedOptions
from uvd.annotated.records import RecordError, annotation, make_record
from uvd.annotated.render import BOX_CANVASES
from uvd.config import from_dict, require
from uvd.core.outputs import FAILURES, IMAGES, DeadLetterDoFn, RunSource, SourceOutputs, SourceTransform
from uvd.core.stage import SourceStage
from uvd.sources.hf import mappings, reader
from uvd.sources.imagenet import pipeline as imagenet
from uvd.sources.video import pipeline as video
from uvd.transforms import image as img

STAGE = "hf"
log = logging.getLogger("uvd.hf")

# mapping -> (annotation task name, record annotation type) for the annotated mappings
TASKS = {
    "segmentation": ("segmentation", "segmentation"),
    "depth": ("depth", "depth"),
    "detection": ("detection", "boxes"),
}


@dataclass
class Config(AnnotatedOptions):
    """Options of the Hugging Face source (manifest options or `uvd hf` flags)."""

    input: str  # save_to_disk folder, .parquet/.arrow file/glob/folder, or hub id
    mapping: str = "classification"  # classification | segmentation | depth | detection | video
    columns: dict = field(default_factory=dict)  # role -> column overrides (mappings.MAPPINGS)
    annotations: dict = field(default_factory=dict, metadata={"flag": False})  # {task: {column, type, ...}}
    name: str = ""  # dataset name (classes, pools, record ids); default: from input
    format: str = "auto"  # auto | disk | parquet | arrow | hub | stream (reader.py)
    split: str | None = None  # one split (default: every split, each kept as the sentence split)
    config_name: str | None = None  # stream: dataset configuration (load_dataset name=)
    revision: str | None = None  # hub: branch, tag or commit of the dataset repo
    cache_dir: str | None = None  # hub: the hub cache (default: HF_HUB_CACHE, ~/.cache/huggingface/hub)
    offline: bool = field(default=True, metadata={"negate": "online"})  # hub: only the local cache (--online: download)
    # image geometry
    max_pixels: int = img.DEFAULT_MAX_PIXELS
    # mapping values
    reduce_zero_label: bool = field(default=True, metadata={"negate": "keep_zero_label"})  # ADE20K: 0 = ignore
    depth_scale: float = 1000.0  # depth: integer maps are in 1/depth_scale metres (mm)
    depth_inverse: bool = field(default=True, metadata={"negate": "disparity"})  # false: the column holds disparity
    bbox_format: str = "xywh"  # detection: xywh (COCO) | xyxy
    box_canvas: str = "image"  # detection: boxes over the image (the paper's) | black
    # classification sentences (imagenet.Config)
    images_per_sentence: int = 16
    passes: int = 1
    remainder: str = "fill"
    small_class: str = "skip"
    min_images: int = 2
    # video clips (video.Config)
    strides: list[int] = field(default_factory=lambda: [10, 20, 30])
    clips_per_video: int = 1

    def validate(self) -> None:
        require(self.box_canvas in BOX_CANVASES, "box_canvas", f"one of {BOX_CANVASES}, got {self.box_canvas!r}")
        require(bool(self.input), "input", "give a save_to_disk folder, Parquet/Arrow files or a hub id")
        require(
            self.mapping in mappings.MAPPINGS,
            "mapping",
            f"must be one of {sorted(mappings.MAPPINGS)}, got {self.mapping!r}",
        )
        require(self.format in reader.FORMATS, "format", f"must be one of {reader.FORMATS}, got {self.format!r}")
        self.validate_annotated()
        require(self.depth_scale > 0, "depth_scale", f"must be > 0, got {self.depth_scale}")
        require(
            self.bbox_format in mappings.BBOX_FORMATS,
            "bbox_format",
            f"must be one of {mappings.BBOX_FORMATS}, got {self.bbox_format!r}",
        )
        self.class_config()  # imagenet's own checks
        self.video_config()
        self.resolve()  # the dataset is there and fits the mapping

    @property
    def dataset_name(self) -> str:
        if self.name:
            return self.name
        base = posixpath.basename(reader.hub_id(self.input).rstrip("/"))
        return base.replace("*", "").removesuffix(".parquet").removesuffix(".arrow") or "hf"

    def class_config(self) -> imagenet.Config:
        """The ImageNet stage's sampling options (its Config validates them)."""
        return from_dict(
            imagenet.Config,
            {
                "input": self.input,
                "images_per_sentence": self.images_per_sentence,
                "passes": self.passes,
                "remainder": self.remainder,
                "small_class": self.small_class,
                "min_images": self.min_images,
                "seed": self.seed,
                "image_size": self.image_size,
                "resize": self.resize,
                "max_pixels": self.max_pixels,
            },
        )

    def video_config(self) -> video.Config:
        """The video stage's clip options (its Config validates them)."""
        return from_dict(
            video.Config,
            {
                "input": self.input,
                "strides": self.strides,
                "clips_per_video": self.clips_per_video,
                "seed": self.seed,
                "image_size": self.image_size,
                "resize": self.resize,
            },
        )

    def resolve(self) -> tuple[reader.Layout, dict[str, str]]:
        """The dataset's layout (shards, features) and the checked role -> column mapping."""
        layout = reader.list_shards(
            self.input, self.format, self.split, self.config_name, self.revision, self.cache_dir, self.offline
        )
        roles = mappings.resolve_columns(self.mapping, self.columns, layout.features, self.input)
        if self.annotations:
            require(
                self.mapping in TASKS,
                "annotations",
                f"extra annotations need an annotated mapping ({sorted(TASKS)}), not {self.mapping!r}",
            )
            mappings.check_extra_annotations(self.annotations, {TASKS[self.mapping][0]}, layout.features, self.input)
        return layout, roles


# --- rows ------------------------------------------------------------------------------------------
class ReadRows:
    """A shard -> items {record_id, split, group, row}, or one failure item when it cannot be read."""

    def __init__(self, cfg: Config, roles: dict[str, str]) -> None:
        self.name = cfg.dataset_name
        self.roles = roles
        wanted = [*roles.values(), *(spec["column"] for spec in cfg.annotations.values())]
        self.columns = sorted({c.split(".")[0] for c in wanted})

    def __call__(self, shard: reader.Shard) -> Iterator[dict]:
        try:
            for i, row in reader.read_shard(shard, self.columns):
                yield self.item(shard, i, row)
        except Exception as exc:  # noqa: BLE001 - an unreadable shard is data (rows read so far are kept)
            yield {
                "record_id": f"{self.name}/{shard.shard_id}",
                "failure": "unreadable_shard",
                "detail": f"{shard.path}: {type(exc).__name__}: {exc}",
            }

    def item(self, shard: reader.Shard, index: int, row: dict) -> dict:
        def optional(role: str) -> str | None:
            try:
                value = reader.column_value(row, self.roles[role]) if role in self.roles else None
            except KeyError:
                value = None
            return None if value in (None, "") else str(value)

        row_id, split = optional("id"), optional("split") or shard.split
        if row_id:  # ids are often unique only within a split
            record_id = f"{self.name}/{split}/{row_id}" if split else f"{self.name}/{row_id}"
        else:
            record_id = f"{self.name}/{shard.shard_id}#{index}"
        return {"record_id": record_id, "split": split, "group": optional("group"), "row": row}


class ProcessRow:
    """One item -> an image row (classification) or an annotation record's rows, or a failure row."""

    def __init__(self, cfg: Config, roles: dict[str, str], names: list[str] | None) -> None:
        self.cfg = cfg
        self.roles = roles
        self.names = names
        self.name = cfg.dataset_name
        self.source = f"hf/{self.name}"

    def __call__(self, item: dict) -> Iterator[tuple[str, dict]]:
        if "failure" in item:
            yield (
                FAILURES,
                schema.failure_row(item["record_id"], self.source, STAGE, item["failure"], item.get("detail", "")),
            )
            return
        try:
            if self.cfg.mapping == "classification":
                rows = [self.class_image(item)]
            else:
                rows = list(emit_record(self.record(item), self.cfg, source=self.source, stage=STAGE))
        except mappings.RowError as exc:
            rows = [
                (
                    FAILURES,
                    schema.failure_row(
                        item["record_id"], self.source, STAGE, exc.reason, exc.message, status=exc.status
                    ),
                )
            ]
        except RecordError as exc:
            rows = [
                (
                    FAILURES,
                    schema.failure_row(
                        item["record_id"], self.source, STAGE, exc.reason, exc.detail, status=exc.status
                    ),
                )
            ]
        yield from rows

    def value(self, item: dict, role: str):
        return self.cell(item, self.roles[role])

    @staticmethod
    def cell(item: dict, column: str):
        try:
            return reader.column_value(item["row"], column)
        except (KeyError, TypeError) as exc:
            raise mappings.RowError("missing_column", column, f"this row has no {exc.args[0]!r}") from None

    def class_image(self, item: dict) -> tuple[str, dict]:
        label = mappings.label_name(self.value(item, "label"), self.roles["label"], self.names)
        decoded = mappings.decode_photo(
            self.value(item, "image"), self.roles["image"], self.cfg.image_size, self.cfg.max_pixels
        )
        geometry = img.compute_geometry(decoded.height, decoded.width, self.cfg.image_size, self.cfg.resize)
        pixels = img.apply_geometry(decoded.pixels, geometry)
        provenance = {
            "path": item["record_id"],
            "class": f"{self.name}/{label}",
            "split": item["split"],
            "dataset": self.name,
        }
        return IMAGES, {
            "image_id": schema.image_id_for(pixels),
            "image": img.encode_png(pixels),
            "source": imagenet.SOURCE,
            "provenance": json.dumps(provenance, sort_keys=True),
        }

    def record(self, item: dict):
        cfg, roles = self.cfg, self.roles
        decoded = mappings.decode_photo(self.value(item, "image"), roles["image"], cfg.image_size, cfg.max_pixels)
        h, w = decoded.height, decoded.width
        task, type_ = TASKS[cfg.mapping]
        if cfg.mapping == "segmentation":
            ann, column = (
                annotation(
                    type_,
                    mappings.segmentation_labels(self.value(item, "label"), roles["label"], cfg.reduce_zero_label),
                ),
                roles["label"],
            )
        elif cfg.mapping == "depth":
            metres = mappings.depth_metres(self.value(item, "depth"), roles["depth"], cfg.depth_scale)
            ann, column = annotation(type_, metres, inverse=cfg.depth_inverse), roles["depth"]
        else:
            boxes, classes = mappings.boxes_xyxy(
                self.value(item, "boxes"),
                self.value(item, "classes"),
                (roles["boxes"], roles["classes"]),
                cfg.bbox_format,
                h,
                w,
            )
            ann = annotation(type_, {"boxes": boxes, "classes": classes}, canvas=cfg.box_canvas)
            column = roles["boxes"]
        anns, columns = {task: ann}, {task: column}
        for extra, spec in cfg.annotations.items():
            anns[extra] = mappings.extra_annotation(spec, self.cell(item, spec["column"]))
            columns[extra] = spec["column"]
        try:
            return make_record(
                item["record_id"],
                self.name,
                decoded.pixels,
                anns,
                group=item["group"],
                split=item["split"],
                provenance={"hf": item["record_id"]},
                full_size=(h, w),
            )
        except RecordError as exc:  # a map of another size than its image: "<task>: ..."
            at = next((c for t, c in columns.items() if exc.detail.startswith(f"{t}:")), column)
            raise mappings.RowError(exc.reason, at, exc.detail, exc.status) from None


class RowsToVideos(DeadLetterDoFn):
    """Items -> the video stage's video dicts; rows without a usable path -> failure rows (FAILURES tag)."""

    def __init__(self, cfg: Config, roles: dict[str, str]) -> None:
        super().__init__(f"hf/{cfg.dataset_name}", STAGE, "videos")
        self.column = roles["video"]
        local = "://" not in cfg.input and os.path.isdir(cfg.input)
        self.base = os.path.abspath(cfg.input) if local else None

    def convert(self, item: dict) -> Iterator:
        try:
            if "failure" in item:
                raise mappings.RowError(item["failure"], "*", item.get("detail", ""))
            try:
                cell = reader.column_value(item["row"], self.column)
            except (KeyError, TypeError) as exc:
                raise mappings.RowError("missing_column", self.column, f"this row has no {exc.args[0]!r}") from None
            path = mappings.video_path(cell, self.column, self.base)
        except mappings.RowError as exc:
            raise RecordError(exc.reason, exc.detail if exc.column == "*" else exc.message, exc.status) from None
        Metrics.counter(f"uvd.{STAGE}", "videos").inc()
        yield {"path": path, "video_id": item["record_id"], "start": None, "end": None, "split": item["split"]}


def _record_id(item: dict) -> str:
    return item.get("record_id", "?")


# --- the stage -------------------------------------------------------------------------------------
class HFSource(SourceTransform):
    """PBegin -> SourceOutputs(images, sentences, failures) of one Hugging Face dataset."""

    def __init__(self, cfg: Config, label: str | None = None) -> None:
        super().__init__(cfg, label)
        self.layout, self.roles = cfg.resolve()  # listed on the driver: names only, no rows

    def expand(self, pbegin: beam.pvalue.PBegin) -> SourceOutputs:
        cfg, source = self.cfg, f"hf/{self.cfg.dataset_name}"
        names = (
            mappings.class_names(self.layout.features, self.roles["label"]) if cfg.mapping == "classification" else None
        )
        rows = (
            pbegin
            | "Shards" >> beam.Create(self.layout.shards)
            | "SpreadShards" >> beam.Reshuffle()
            | "ReadRows" >> beam.FlatMap(ReadRows(cfg, self.roles))
            | "SpreadRows" >> beam.Reshuffle()
        )
        if cfg.mapping == "video":
            return self.videos(rows)
        out = rows | "Rows" >> RunSource(
            ProcessRow(cfg, self.roles, names), source=source, stage=STAGE, record_id=_record_id
        )
        if cfg.mapping == "classification":
            grouped = (
                out.images
                | "ByClass" >> beam.Map(imagenet.class_key)
                | "GroupByClass" >> beam.GroupByKey()
                | "ClassSentences"
                >> RunSource(
                    imagenet.ClassSentences(cfg.class_config()),
                    source=imagenet.SOURCE,
                    stage=imagenet.GROUP_STAGE,
                    record_id=imagenet.group_record_id,
                )
            )
            failures = (out.failures, grouped.failures) | "Failures" >> beam.Flatten()
            return SourceOutputs(out.images, grouped.sentences, failures)
        return with_pair_sentences(out, cfg)

    def videos(self, rows: beam.PCollection) -> SourceOutputs:
        """Rows -> the video stage's planning and decoding (its own classes, its own failure rows)."""
        vcfg = self.cfg.video_config()
        listed = rows | "ToVideos" >> beam.ParDo(RowsToVideos(self.cfg, self.roles)).with_outputs(
            FAILURES, main="videos"
        )
        out = (
            listed.videos
            | "PlanClips" >> beam.ParDo(video.PlanClips(vcfg))
            | "SpreadClips" >> beam.Reshuffle()
            | "DecodeClips"
            >> RunSource(
                video.DecodeClips(vcfg),
                source=video.SOURCE,
                stage=video.STAGE,
                record_id=video.task_record_id,
                count_records=False,
            )
        )
        failures = (listed[FAILURES], out.failures) | "Failures" >> beam.Flatten()
        return SourceOutputs(out.images, out.sentences, failures)


STAGE_SPEC = SourceStage("hf", Config, HFSource, __doc__, input_field=None)  # a hub id is an input too
source_transform = STAGE_SPEC.source_transform  # `uvd dataset`: the entry's options checked before any work
run = STAGE_SPEC.run  # `uvd hf --input DATASET --output OUT [--mapping ...] [--columns role=column ...]`
