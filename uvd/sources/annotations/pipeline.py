"""`uvd annotations`: labelled datasets -> annotated images and sentences (7.15% + 0.06% of UVDv1).

    adapter specs --ListItems--> items --Reshuffle--> RunSource(ProcessItem) --> images, failures,
                                                      multi-annotation + video sentences
    images --PairSentences--> 8-pair sentences per (dataset, task, split, bucket)

Run: uvd annotations --input uvd/sample/annotations --output out/ann   (tables: images, sentences,
failures under out/ann/). Pose and expert pseudo-labels reuse `emit_record` and `PairSentences`.

Adapters (config `adapters`, each a dict with `type`): coco, dense, pairs, synthetic, video; their
options are the dataclasses in coco.py, dense.py, pairs.py, synthetic_pairs.py, video.py. Paths
are relative to `input`. With no `adapters`, `<input>/adapters.yaml` lists them (the sample does).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import apache_beam as beam
import yaml

from uvd.config import ConfigError, from_dict, require
from uvd.core import tables
from uvd.core.options import setup_logging, split_args
from uvd.core.outputs import FAILURES, IMAGES, RunSource, SENTENCES, SourceOutputs
from uvd.sources.annotations import coco, dense, pairs, synthetic_pairs, video
from uvd.core import files
from uvd.annotated import sentences
from uvd.annotated.pooling import PairSentences
from uvd.annotated.records import RecordError, defect_rows, is_input_type
from uvd.annotated.render import image_row, record_image_rows, render_record, skipped_rows
from uvd.schema import failure_row

STAGE = "annotations"
log = logging.getLogger("uvd")

# adapter type -> (options dataclass, module with list_items(opts, root) and load_record(item, size))
ADAPTERS = {
    "coco": (coco.CocoOptions, coco),
    "dense": (dense.DenseOptions, dense),
    "pairs": (pairs.PairsOptions, pairs),
    "synthetic": (synthetic_pairs.SyntheticOptions, synthetic_pairs),
    "video": (video.VideoOptions, video),
}


@dataclass
class Config:
    input: str                                   # folder the adapters' paths are relative to
    adapters: list = field(default_factory=list)  # [{type: coco|dense|pairs|synthetic|video, ...}]
    image_size: int = 256
    resize: str = "crop"                         # crop (shorter side + centre crop) | squash
    seed: int = 0
    pairs_per_sentence: int = sentences.PAIRS_PER_SENTENCE
    min_pairs: int = 2                           # a last, smaller pool chunk below this -> skipped rows
    pair_buckets: int = 1                        # pools per (dataset, task, split): raise for big data
    multi_annotation: bool = True                # images with >= multi_min_annotations -> m-of-(1+k)
    multi_min_annotations: int = 2

    def validate(self) -> None:
        require(self.image_size > 0, "image_size", f"must be > 0, got {self.image_size}")
        require(self.resize in ("crop", "squash"), "resize", f"must be crop or squash, got {self.resize!r}")
        require(1 <= self.pairs_per_sentence <= sentences.PAIRS_PER_SENTENCE, "pairs_per_sentence",
                f"must be 1..{sentences.PAIRS_PER_SENTENCE}, got {self.pairs_per_sentence}")
        require(1 <= self.min_pairs <= self.pairs_per_sentence, "min_pairs",
                f"must be 1..pairs_per_sentence, got {self.min_pairs}")
        require(self.pair_buckets >= 1, "pair_buckets", f"must be >= 1, got {self.pair_buckets}")
        require(self.multi_min_annotations >= 1, "multi_min_annotations", "must be >= 1")
        self.adapter_options()

    def adapter_options(self) -> list:
        """Each adapter spec checked into its options dataclass (ConfigError names the entry)."""
        specs = self.adapters or _adapters_file(self.input)
        require(bool(specs), "adapters", f"give a list of adapters, or put adapters.yaml in {self.input!r}")
        out = []
        for i, spec in enumerate(specs):
            kind = spec.get("type") if isinstance(spec, dict) else None
            require(kind in ADAPTERS, f"adapters[{i}].type", f"must be one of {sorted(ADAPTERS)}, got {kind!r}")
            out.append(from_dict(ADAPTERS[kind][0], spec, where=f"adapters[{i}]"))
        return out


def _adapters_file(folder: str) -> list:
    path = files.join(folder, "adapters.yaml")
    if not folder or not files.exists(path):
        return []
    data = yaml.safe_load(files.read_bytes(path)) or {}
    if not isinstance(data, dict) or not isinstance(data.get("adapters"), list):
        raise ConfigError(f"{path}: expected a mapping with an `adapters:` list")
    return data["adapters"]


def list_items(opts, root: str) -> Iterator[dict]:
    """An adapter's items; a listing that fails (missing JSON, unreadable folder) is one failure item."""
    module = ADAPTERS[opts.type][1]
    record_id = getattr(opts, "name", "") or getattr(opts, "task", "") or opts.type
    try:
        yield from module.list_items(opts, root)
    except RecordError as exc:
        yield {"adapter": opts.type, "record_id": record_id, "failure": exc.reason, "detail": exc.detail}
    except (ValueError, KeyError, TypeError) as exc:       # a malformed JSON/listing, not a crash
        yield {"adapter": opts.type, "record_id": record_id, "failure": "bad_annotation_file",
               "detail": f"{type(exc).__name__}: {exc}"}


def _source(item: dict) -> str:
    return f"ann/{item.get('dataset') or item.get('adapter', 'unknown')}"


class ProcessItem:
    """One item -> image rows (record image + rendered annotations), multi/video sentences, or failures."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def __call__(self, item: dict) -> Iterator[tuple[str, dict]]:
        if "failure" in item:
            yield FAILURES, failure_row(item["record_id"], _source(item), STAGE, item["failure"],
                                        item.get("detail", ""), status=item.get("status", "failed"))
            return
        try:
            if item["adapter"] == "video":
                rows = list(self._clip(item))
            else:
                record = ADAPTERS[item["adapter"]][1].load_record(item, self.cfg.image_size)
                rows = list(emit_record(record, self.cfg))
        except RecordError as exc:
            rows = [(FAILURES, row) for row in defect_rows(exc, item["record_id"], _source(item), STAGE)]
        yield from rows

    def _clip(self, item: dict) -> Iterator[tuple[str, dict]]:
        frames, masks = video.render_clip(item, self.cfg.image_size, self.cfg.resize)
        source = _source(item)
        frame_ids, mask_ids = [], []
        for i, (frame, mask, fpath, mpath) in enumerate(zip(frames, masks, item["frames"], item["masks"])):
            base = {"dataset": item["dataset"], "record_id": item["record_id"], "clip": item["clip"], "frame": i,
                    "unlabelled_frames": item.get("unlabelled_frames", 0)}
            f_row = image_row(frame, source, {**base, "role": "frame", "path": fpath})
            m_row = image_row(mask, source, {**base, "role": "annotation", "task": item["task"], "path": mpath})
            frame_ids.append(f_row["image_id"])
            mask_ids.append(m_row["image_id"])
            yield IMAGES, f_row
            yield IMAGES, m_row
        group = f"ann_video/{item['dataset']}/{item['clip']}"
        made = list(sentences.video_sentences(frame_ids, mask_ids, item["task"], group, item.get("split"),
                                              window=item["window"]))
        if not made:
            raise RecordError("too_short", f"{len(frames)} annotated frames", status="skipped")
        for row in made:
            yield SENTENCES, row


def emit_record(record, cfg: Config, source: str | None = None, stage: str = STAGE) -> Iterator[tuple[str, dict]]:
    """A checked annotation record -> (tag, row): its image rows and, with >= multi_min_annotations
    outputs, a multi-annotation sentence. Pair sentences come later from `PairSentences` over the
    image rows. Pose and expert pseudo-labels call this from their own RunSource functions.

    Each defect of the record and each task whose target is empty is a skipped failure row
    (`source` defaults to the record's `ann/<dataset>`); an image left with no target at all
    gives no image rows.
    """
    rendered = render_record(record, cfg.image_size, cfg.resize, cfg.seed)
    for row in skipped_rows(record, rendered, source or f"ann/{record['dataset']}", stage):
        yield FAILURES, row
    if not rendered.annotations:
        return
    bucket = sentences.bucket_of(record["group"], cfg.pair_buckets)
    rows, image_id, ann_ids = record_image_rows(record, rendered, bucket)
    for row in rows:
        yield IMAGES, row
    outputs = {t: i for t, i in ann_ids.items() if not is_input_type(record["annotations"][t])}
    if cfg.multi_annotation and len(outputs) >= cfg.multi_min_annotations:
        row = sentences.multi_annotation_sentence(
            image_id, outputs, record["record_id"], sentences.pool_group(record["dataset"], bucket),
            record.get("split"), cfg.seed)
        if row is not None:
            yield SENTENCES, row


class AnnotationsSource(beam.PTransform):
    """PBegin -> SourceOutputs(images, sentences, failures) for every configured adapter."""

    def __init__(self, cfg: Config, label: str | None = None) -> None:
        super().__init__(label)
        self.cfg = cfg

    def expand(self, pbegin) -> SourceOutputs:
        cfg = self.cfg
        items = (
            pbegin
            | "Adapters" >> beam.Create(cfg.adapter_options())
            | "ListItems" >> beam.FlatMap(list_items, cfg.input)
            | "Spread" >> beam.Reshuffle()
        )
        out = items | "Render" >> RunSource(
            ProcessItem(cfg), source="annotations", stage=STAGE, record_id=lambda it: it.get("record_id", "?"))
        pair_sentences, pair_failures = out.images | "PairSentences" >> PairSentences(
            cfg.seed, cfg.pairs_per_sentence, cfg.min_pairs)
        all_sentences = (out.sentences, pair_sentences) | "Sentences" >> beam.Flatten()
        all_failures = (out.failures, pair_failures) | "Failures" >> beam.Flatten()
        return SourceOutputs(out.images, all_sentences, all_failures)


def source_transform(config: dict) -> beam.PTransform:
    """The annotations source for `uvd dataset`: options checked here, before any work."""
    return AnnotationsSource(from_dict(Config, config, where="sources.annotations.options"))


def run(argv: list[str] | None = None) -> int:
    """`uvd annotations --input DIR [--config adapters.yaml] --output OUT [options] [beam flags]`."""
    defaults = Config(input="")
    parser = argparse.ArgumentParser(prog="uvd annotations", description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True, help="folder the adapters' paths are relative to")
    parser.add_argument("--output", required=True, help="folder for the images/sentences/failures tables")
    parser.add_argument("--config", help="YAML with `adapters:` (default: <input>/adapters.yaml)")
    helps = {"image_size": "output side in pixels", "seed": "seeds synthetic inputs, pair chunks and m picks",
             "pairs_per_sentence": "(input, output) pairs per sentence (8 -> 16 images)",
             "min_pairs": "a pool's last chunk below this becomes 'skipped' rows",
             "pair_buckets": "pools per (dataset, task, split); raise (e.g. 1024) for millions of records"}
    for name, help_ in helps.items():
        parser.add_argument(f"--{name}", type=int, default=getattr(defaults, name), help=help_)
    parser.add_argument("--resize", default=defaults.resize, choices=("crop", "squash"),
                        help="shorter side + centre crop, or squash (the official LVM code squashes)")
    parser.add_argument("--no_multi_annotation", action="store_true", help="no m-of-(1+k) sentences")
    args, options = split_args(parser, argv)
    values = {k: v for k, v in vars(args).items() if k not in ("output", "config", "no_multi_annotation")}
    if args.config:
        with open(args.config) as f:
            values["adapters"] = (yaml.safe_load(f) or {}).get("adapters", [])
    cfg = from_dict(Config, {**values, "multi_annotation": not args.no_multi_annotation}, where="annotations")
    setup_logging()
    log.info("annotations config: %s", json.dumps(asdict(cfg), default=str))
    with beam.Pipeline(options=options) as p:
        out = p | "Annotations" >> AnnotationsSource(cfg)
        tables.write_source_tables(out, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
