"""`uvd label`: expert pseudo-labels (depth, normals, edges, segmentation) for unlabelled images.

    input (image folder, or a folder with an images table) --List--> --Spread--> --Decode--> items
      --RunInference(expert 1)--> ... --RunInference(expert k)-->   (each adds its annotation)
      --Emit (RunSource: records.make_record + annotations.pipeline.emit_record)--> images,
        multi-annotation sentences, failures ("skipped" for degenerate outputs)
    images --PairSentences--> 8-pair sentences "ann/<task>" (the annotations stage's builder)

Run:
    uvd label --expert depth --input uvd/sample/images --output out/label
    uvd label --expert depth,segmentation,edges --input out/laion --output out/label \
        --depth_model Intel/dpt-large --accelerator "type:nvidia-l4;count:1;install-nvidia-driver"
    uvd label --expert depth,edges --image photo.jpg --output photo_labels.png   # one image, no Beam

Records are the annotation records of the dataset adapters, so pseudo-labels and ground truth share
renderers and sentence builders. Each expert's RunInference step alone carries the accelerator
hint. Models load by hub id or local folder (save_pretrained); see the expert modules.
"""

from __future__ import annotations

import argparse
import logging
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import RunInference

from uvd import schema
from uvd.annotated.emit import emit_record, with_pair_sentences
from uvd.annotated.options import AnnotatedOptions
from uvd.annotated.records import RecordError, make_record
from uvd.config import ConfigError, require
from uvd.core import tables
from uvd.core.outputs import FAILURES, DeadLetterDoFn, RunSource, SourceOutputs, SourceTransform
from uvd.core.stage import SourceStage
from uvd.sources.label.depth import DEFAULT_DEPTH_MODEL, DepthHandler
from uvd.sources.label.edges import EDGE_OUTPUTS, CannyHandler, LearnedEdgesHandler
from uvd.sources.label.handler import PRECISIONS, ExpertHandler, new_item
from uvd.sources.label.normals import NORMALS_RANGES, NormalsHandler
from uvd.sources.label.segmentation import DEFAULT_SEGMENTATION_MODEL, SegmentationHandler
from uvd.transforms import image as img

STAGE = "label"
EXPERTS = ("depth", "normals", "edges", "segmentation")
INPUT_FORMATS = ("auto", "folder", "table")

log = logging.getLogger("uvd")


@dataclass
class Config(AnnotatedOptions):
    input: str = field(metadata={"flag_default": None})  # image folder (recursive) or a folder with images/
    experts: list | str = field(
        default_factory=lambda: ["depth", "segmentation", "edges"], metadata={"flag": "expert"}
    )  # comma-separated: depth,segmentation,edges,normals
    input_format: str = "auto"  # auto: a table when <input>/images/part*.parquet exists
    dataset: str = "pseudo"  # names the pair pools (ann/<dataset>/<bucket>) and image rows
    depth_model: str = DEFAULT_DEPTH_MODEL  # hub id or folder (AutoModelForDepthEstimation)
    segmentation_model: str = DEFAULT_SEGMENTATION_MODEL  # hub id or folder (AutoModelForSemanticSegmentation)
    normals_model: str = ""  # TorchScript file or module:factory (see normals.py)
    normals_range: str = "signed"  # signed: n in [-1, 1]; unit: (n + 1) / 2
    edges_model: str = ""  # empty: Canny; else TorchScript file or module:factory
    edges_output: str = "prob"  # prob | logits (a sigmoid is applied)
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    batch_size: int = 16
    accelerator: str = ""  # resource hint for the expert steps only (Dataflow)
    large_model: bool = False  # one model copy per machine, shared by its processes
    decode_min_size: int = 512  # JPEGs decode at reduced scale keeping sides >= this
    max_pixels: int = img.DEFAULT_MAX_PIXELS
    min_valid_depth: float = 0.5  # degenerate checks (checks.py)
    min_depth_range: float = 1e-3
    max_class_fraction: float = 0.99
    min_edge_fraction: float = 0.002
    min_normal_spread: float = 1e-2

    def validate(self) -> None:
        require(bool(self.input), "input", "give an image folder or a folder holding an images table")
        if isinstance(self.experts, str):
            self.experts = [e.strip() for e in self.experts.split(",") if e.strip()]
        require(
            bool(self.experts) and all(e in EXPERTS for e in self.experts),
            "experts",
            f"a non-empty list of {EXPERTS}, got {self.experts!r}",
        )
        require(len(set(self.experts)) == len(self.experts), "experts", f"repeats an expert: {self.experts}")
        require(
            "normals" not in self.experts or bool(self.normals_model),
            "normals_model",
            "no library ships a normal estimator: give a TorchScript file or module:factory "
            "(e.g. an Omnidata v2 DPT-Hybrid export, see uvd/sources/label/normals.py)",
        )
        for name in ("depth_model", "segmentation_model", "normals_model", "edges_model"):
            problem = model_spec_problem(getattr(self, name))
            require(problem is None, name, problem or "")
        require(self.input_format in INPUT_FORMATS, "input_format", f"one of {INPUT_FORMATS}")
        require(self.normals_range in NORMALS_RANGES, "normals_range", f"one of {NORMALS_RANGES}")
        require(self.edges_output in EDGE_OUTPUTS, "edges_output", f"one of {EDGE_OUTPUTS}")
        require(self.precision in PRECISIONS, "precision", f"one of {PRECISIONS}, got {self.precision!r}")
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        require(self.decode_min_size >= 64, "decode_min_size", f"must be >= 64, got {self.decode_min_size}")
        self.validate_annotated()
        require(0.0 <= self.min_valid_depth <= 1.0, "min_valid_depth", "must be in [0, 1]")
        require(0.0 < self.max_class_fraction <= 1.0, "max_class_fraction", "must be in (0, 1]")
        require(0.0 <= self.min_edge_fraction < 1.0, "min_edge_fraction", "must be in [0, 1)")


def model_spec_problem(spec: str) -> str | None:
    """Why a model reference cannot work, checked up front: a local-looking path that is missing
    (hub ids `org/name` and `module:factory` specs are checked when a worker loads them)."""
    if spec and spec.startswith(("/", "./", "../", "~")) and not os.path.exists(os.path.expanduser(spec)):
        return f"no such file or folder {spec!r} (give a hub id, a local folder or a TorchScript file)"
    return None


def make_handler(expert: str, cfg: Config) -> ExpertHandler:
    """The ModelHandler of one expert, configured from the stage's config."""
    common_kw = {
        "device": cfg.device,
        "precision": cfg.precision,
        "max_batch_size": cfg.batch_size,
        "accelerator": cfg.accelerator or None,
        "large_model": cfg.large_model,
    }
    if expert == "depth":
        return DepthHandler(
            cfg.depth_model, min_valid=cfg.min_valid_depth, min_relative_range=cfg.min_depth_range, **common_kw
        )
    if expert == "segmentation":
        return SegmentationHandler(cfg.segmentation_model, max_class_fraction=cfg.max_class_fraction, **common_kw)
    if expert == "normals":
        return NormalsHandler(
            cfg.normals_model,
            normals_range=cfg.normals_range,
            min_valid=cfg.min_valid_depth,
            min_spread=cfg.min_normal_spread,
            **common_kw,
        )
    if expert == "edges":
        if cfg.edges_model:
            return LearnedEdgesHandler(
                cfg.edges_model, edges_output=cfg.edges_output, min_fraction=cfg.min_edge_fraction, **common_kw
            )
        return CannyHandler(
            image_size=cfg.image_size,
            resize=cfg.resize,
            min_fraction=cfg.min_edge_fraction,
            **{**common_kw, "max_batch_size": max(cfg.batch_size, 64)},
        )
    raise ValueError(f"unknown expert {expert!r}; use one of {EXPERTS}")


# --- inputs ----------------------------------------------------------------------------------------
def is_table(cfg: Config) -> bool:
    if cfg.input_format != "auto":
        return cfg.input_format == "table"
    return bool(FileSystems.match([tables.table_pattern(cfg.input, "images")])[0].metadata_list)


def relative_id(path: str, root: str) -> str:
    """A file's id relative to the input folder (stable across machines and buckets)."""
    root = root.rstrip("/")
    return posixpath.relpath(path, root) if path.startswith(root + "/") else path


def _source(cfg: Config) -> str:
    return f"ann/{cfg.dataset}"


class DecodeInput(DeadLetterDoFn):
    """A listed file {"path"} or an images-table row -> a label item, or a failure row."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(_source(cfg), STAGE, "decode")
        self.cfg = cfg

    def record_id(self, element: dict) -> str:
        return relative_id(element["path"], self.cfg.input) if element.get("path") else element.get("image_id") or "?"

    def convert(self, element: dict) -> Iterator:
        cfg = self.cfg
        try:
            if "path" in element:
                with FileSystems.open(element["path"]) as f:
                    data = f.read()
                provenance = {"path": element["path"]}
            else:
                data = element.get("image") or b""
                provenance = {"image_id": element.get("image_id"), "source": element.get("source")}
            decoded = img.decode_image(data, min_size=cfg.decode_min_size, max_pixels=cfg.max_pixels)
        except img.ImageError as exc:
            raise RecordError(exc.reason, exc.detail) from None
        except OSError as exc:
            raise RecordError("unreadable_file", f"{type(exc).__name__}: {exc}") from None
        yield new_item(self.record_id(element), decoded.pixels, provenance)


class EmitItem:
    """A labelled item -> the annotation record's image rows and sentences; its skipped tasks and
    errors -> failure rows (RunSource callable)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def __call__(self, item: dict) -> Iterator[tuple[str, dict]]:
        source, rid = _source(self.cfg), item["record_id"]
        if item.get("error"):
            reason, detail = item["error"]
            yield FAILURES, schema.failure_row(rid, source, STAGE, reason, detail)
            return
        for task, (reason, detail) in sorted(item["skipped"].items()):
            yield FAILURES, schema.failure_row(rid, source, STAGE, reason, f"{task}: {detail}", status="skipped")
        if not item["annotations"]:
            return
        try:
            record = make_record(
                rid, self.cfg.dataset, item["image"], item["annotations"], provenance=item["provenance"]
            )
            rows = list(emit_record(record, self.cfg, source=source, stage=STAGE))
        except RecordError as exc:
            rows = [(FAILURES, schema.failure_row(rid, source, STAGE, exc.reason, exc.detail, exc.status))]
        yield from rows


class LabelSource(SourceTransform):
    """PBegin -> SourceOutputs(images, sentences, failures) of every configured expert."""

    def expand(self, pbegin) -> SourceOutputs:
        cfg = self.cfg
        if is_table(cfg):
            listed = pbegin | "ReadImages" >> tables.ReadTable(cfg.input, "images")
        else:
            pattern = FileSystems.join(cfg.input.rstrip("/"), "**")
            listed = (
                pbegin
                | "MatchFiles" >> fileio.MatchFiles(pattern)  # every file is an input: decoded
                | "ToPath" >> beam.Map(lambda m: {"path": m.path})
            )  # by content, else a failure row
        decoded = (
            listed
            | "Spread" >> beam.Reshuffle()
            | "Decode" >> beam.ParDo(DecodeInput(cfg)).with_outputs(FAILURES, main="items")
        )
        items = decoded.items
        for expert in cfg.experts:
            items = items | f"Expert_{expert}" >> RunInference(make_handler(expert, cfg))
        out = items | "Emit" >> RunSource(
            EmitItem(cfg), source=_source(cfg), stage=STAGE, record_id=lambda it: it.get("record_id", "?")
        )
        return with_pair_sentences(out, cfg, decoded[FAILURES])


def label_one(data: bytes, cfg: Config, record_id: str = "image") -> dict:
    """One image's bytes through every configured expert, without Beam (for debugging a model)."""
    decoded = img.decode_image(data, min_size=cfg.decode_min_size, max_pixels=cfg.max_pixels)
    item = new_item(record_id, decoded.pixels)
    for expert in cfg.experts:
        handler = make_handler(expert, cfg)
        handler.run_inference([item], handler.load_model())
    return item


def preview_one(path: str, cfg: Config, out_png: str) -> int:
    """`uvd label --image PATH`: write the 256 px image and each rendered label side by side."""
    import numpy as np

    from uvd.annotated.render import render_record

    with FileSystems.open(path) as f:
        item = label_one(f.read(), cfg, posixpath.basename(path))
    if item["error"]:
        print(f"{path}: failed {item['error'][0]}: {item['error'][1]}")
        return 1
    for task, (reason, detail) in sorted(item["skipped"].items()):
        print(f"{path}: {task} skipped ({reason}: {detail})")
    record = make_record(item["record_id"], cfg.dataset, item["image"], item["annotations"])
    rendered = render_record(record, cfg.image_size, cfg.resize, cfg.seed)
    tasks = [t for t in cfg.experts if t in rendered.annotations]
    strip = np.concatenate([rendered.image] + [rendered.annotations[t] for t in tasks], axis=1)
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    with open(out_png, "wb") as f:
        f.write(img.encode_png(strip))
    print(f"{path}: image, {', '.join(tasks) or 'no labels'} -> {out_png}")
    return 0


def _image_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--image", help="debug one image without Beam: write it and its labels side by side to --output (a PNG path)"
    )


def _input_or_image(args: argparse.Namespace) -> dict:
    if not args.input and not args.image:
        raise ConfigError("input: give --input (a folder) or --image (one file)")
    return {"input": args.input or args.image}


def _one_image(args: argparse.Namespace, cfg: Config) -> int | None:
    return preview_one(args.image, cfg, args.output) if args.image else None


STAGE_SPEC = SourceStage(
    "label", Config, LabelSource, __doc__, add_flags=_image_flag, extra_values=_input_or_image, alone=_one_image
)
source_transform = STAGE_SPEC.source_transform  # `uvd dataset`: the entry's options checked before any work
run = STAGE_SPEC.run  # `uvd label --expert depth[,segmentation,...] --input DIR --output OUT [options] [beam flags]`
