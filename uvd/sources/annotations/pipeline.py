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
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import apache_beam as beam
import yaml

from uvd.annotated import sentences
from uvd.annotated.emit import emit_record, with_pair_sentences
from uvd.annotated.options import AnnotatedOptions
from uvd.annotated.records import RecordError, defect_rows
from uvd.annotated.render import image_row
from uvd.config import ConfigError, from_dict, require
from uvd.core import files
from uvd.core.outputs import FAILURES, IMAGES, SENTENCES, RunSource, SourceOutputs, SourceTransform
from uvd.core.stage import SourceStage
from uvd.schema import failure_row
from uvd.sources.annotations import coco, dense, pairs, synthetic_pairs, video

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
class Config(AnnotatedOptions):
    input: str  # folder the adapters' paths are relative to
    adapters: list[dict] = field(default_factory=list)  # [{type: coco|dense|pairs|synthetic|video, ...}]

    def validate(self) -> None:
        self.validate_annotated()
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
    except (ValueError, KeyError, TypeError) as exc:  # a malformed JSON/listing, not a crash
        yield {
            "adapter": opts.type,
            "record_id": record_id,
            "failure": "bad_annotation_file",
            "detail": f"{type(exc).__name__}: {exc}",
        }


def _source(item: dict) -> str:
    return f"ann/{item.get('dataset') or item.get('adapter', 'unknown')}"


class ProcessItem:
    """One item -> image rows (record image + rendered annotations), multi/video sentences, or failures."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def __call__(self, item: dict) -> Iterator[tuple[str, dict]]:
        if "failure" in item:
            yield (
                FAILURES,
                failure_row(
                    item["record_id"],
                    _source(item),
                    STAGE,
                    item["failure"],
                    item.get("detail", ""),
                    status=item.get("status", "failed"),
                ),
            )
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
            base = {
                "dataset": item["dataset"],
                "record_id": item["record_id"],
                "clip": item["clip"],
                "frame": i,
                "unlabelled_frames": item.get("unlabelled_frames", 0),
            }
            f_row = image_row(frame, source, {**base, "role": "frame", "path": fpath})
            m_row = image_row(mask, source, {**base, "role": "annotation", "task": item["task"], "path": mpath})
            frame_ids.append(f_row["image_id"])
            mask_ids.append(m_row["image_id"])
            yield IMAGES, f_row
            yield IMAGES, m_row
        group = f"ann_video/{item['dataset']}/{item['clip']}"
        made = list(
            sentences.video_sentences(
                frame_ids, mask_ids, item["task"], group, item.get("split"), window=item["window"]
            )
        )
        if not made:
            raise RecordError("too_short", f"{len(frames)} annotated frames", status="skipped")
        for row in made:
            yield SENTENCES, row


class AnnotationsSource(SourceTransform):
    """PBegin -> SourceOutputs(images, sentences, failures) for every configured adapter."""

    def expand(self, pbegin) -> SourceOutputs:
        cfg = self.cfg
        items = (
            pbegin
            | "Adapters" >> beam.Create(cfg.adapter_options())
            | "ListItems" >> beam.FlatMap(list_items, cfg.input)
            | "Spread" >> beam.Reshuffle()
        )
        out = items | "Render" >> RunSource(
            ProcessItem(cfg), source="annotations", stage=STAGE, record_id=lambda it: it.get("record_id", "?")
        )
        return with_pair_sentences(out, cfg)


def _adapters_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML with `adapters:` (default: <input>/adapters.yaml)")


def _adapters_from_file(args: argparse.Namespace) -> dict:
    if not args.config:
        return {}
    with open(args.config) as f:
        return {"adapters": (yaml.safe_load(f) or {}).get("adapters", [])}


STAGE_SPEC = SourceStage(
    "annotations", Config, AnnotationsSource, __doc__, add_flags=_adapters_flag, extra_values=_adapters_from_file
)
source_transform = STAGE_SPEC.source_transform  # `uvd dataset`: the entry's options checked before any work
run = STAGE_SPEC.run  # `uvd annotations --input DIR [--config adapters.yaml] --output OUT [options] [beam flags]`
