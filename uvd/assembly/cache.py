"""The build cache beside a dataset: work units, tokens by (image_id, tokenizer hash), entry snapshots.

    <cache>/units/<entry>/<options hash>/<step>/..   RunSource work units (uvd.core.units)
    <cache>/tokens/<checkpoint hash>/*.parquet        image_id -> tokens, or the tokenizer's failure row
    <cache>/entries/<entry key>/{sentences,failures,images}/  what each manifest entry produced
    <cache>/entries/<entry key>/_COMPLETE.json        written after the whole build succeeded
    <cache>/records/<entries signature>.json          the build's per-stage input reconciliation

Token files are written every FLUSH_ROWS rows under a name derived from their image ids, so a kill
during tokenization keeps what was written and a rerun encodes only the rest. `uvd remix` reads the
entry snapshots and the tokens, never the source inputs and never the tokenizer.
"""

from __future__ import annotations

import glob as globlib
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from uvd.core import tables
from uvd.core.files import read_json, write_json, write_table_atomic
from uvd.core.outputs import FAILURES
from uvd.core.units import DATA_VERSION, describe, digest

log = logging.getLogger("uvd")
FLUSH_ROWS = 64
TOKEN_CACHE_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("tokens", pa.list_(pa.uint16()), nullable=False),  # empty when the tokenizer failed
        pa.field("failure", pa.string()),  # that failure row as JSON, else null
    ]
)
SNAPSHOT_TABLES = ("sentences", "failures", "images")


def cache_for(output: str, cache: str | None) -> str:
    return cache or FileSystems.join(output, "cache")


def resolve_from(path: str) -> str:
    """`uvd remix --from`: a dataset folder (its cache/) or a cache folder itself."""
    inner = FileSystems.join(path, "cache")
    return inner if FileSystems.exists(FileSystems.join(inner, "entries")) else path


# --- tokens ---------------------------------------------------------------------------------------
def tokens_folder(cache: str, checkpoint_hash: str) -> str:
    return FileSystems.join(cache, "tokens", checkpoint_hash)


def _has_files(pattern: str) -> bool:
    return bool(FileSystems.match([pattern])[0].metadata_list)


def _from_cache(row: dict) -> tuple[str, tuple[str, Any]]:
    if row.get("failure"):
        return row["image_id"], (FAILURES, json.loads(row["failure"]))
    return row["image_id"], ("tokens", {"image_id": row["image_id"], "tokens": np.asarray(row["tokens"], np.uint16)})


def _split_hits(item: tuple[str, dict]) -> Iterator[beam.pvalue.TaggedOutput]:
    image_id, joined = item
    if not joined["image"]:
        return  # cached tokens of an image this build does not have
    cached = sorted(joined["cached"], key=lambda tv: (tv[0], json.dumps(tv[1], default=str, sort_keys=True)))
    if cached:
        tag, row = cached[0]
        Metrics.counter("uvd.tokens_cache", "hits").inc()
        yield beam.pvalue.TaggedOutput(tag, row)
    else:
        Metrics.counter("uvd.tokens_cache", "misses").inc()
        yield beam.pvalue.TaggedOutput("misses", joined["image"][0])


class _WriteTokenFiles(beam.DoFn):
    """New token rows and tokenizer failures -> cache files of FLUSH_ROWS rows, named by their ids."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def start_bundle(self) -> None:
        self.pending: list[dict] = []

    def process(self, item: tuple[str, dict]) -> Iterator[None]:
        tag, row = item
        if tag == FAILURES:
            self.pending.append(
                {"image_id": row["record_id"], "tokens": [], "failure": json.dumps(row, sort_keys=True)}
            )
        else:
            self.pending.append(
                {"image_id": row["image_id"], "tokens": np.asarray(row["tokens"], np.uint16).tolist(), "failure": None}
            )
        if len(self.pending) >= FLUSH_ROWS:
            self._flush()
        return iter(())

    def finish_bundle(self) -> None:
        self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        rows = sorted(self.pending, key=lambda r: r["image_id"])
        name = digest([r["image_id"] for r in rows])
        write_table_atomic(
            FileSystems.join(self.folder, f"{name}.parquet"), pa.Table.from_pylist(rows, schema=TOKEN_CACHE_SCHEMA)
        )
        self.pending = []


class CachedTokenize(beam.PTransform):
    """images -> (tokens, failures): cached tokens where this checkpoint saw the image, else `tokenize`.

    `tokenize` is a PTransform factory result (images -> tokens | (tokens, failures)); with
    `tokenize=None` (uvd remix) a miss is an error: no image is ever encoded.
    """

    def __init__(self, cache: str, checkpoint_hash: str, tokenize: beam.PTransform | None, split_output: Any) -> None:
        super().__init__()
        self.folder = tokens_folder(cache, checkpoint_hash)
        self.tokenize, self.split_output = tokenize, split_output

    def expand(self, images: beam.PCollection):
        p = images.pipeline
        pattern = FileSystems.join(self.folder, "*.parquet")
        if _has_files(pattern):
            cached = p | "ReadCache" >> beam.io.ReadFromParquet(pattern) | "FromCache" >> beam.Map(_from_cache)
        else:
            cached = p | "NoCache" >> beam.Create([])
        keyed = images | "KeyImages" >> beam.Map(lambda r: (r["image_id"], r))
        split = (
            {"image": keyed, "cached": cached}
            | "Lookup" >> beam.CoGroupByKey()
            | "Hits" >> beam.FlatMap(_split_hits).with_outputs("tokens", FAILURES, "misses")
        )
        if self.tokenize is None:
            _ = split["misses"] | "NoEncode" >> beam.Map(_refuse_encode)
            return split["tokens"], split[FAILURES]
        tokens, failures = self.split_output(split["misses"] | "Encode" >> self.tokenize)
        new = [tokens | "TagTokens" >> beam.Map(lambda t: ("tokens", t))]
        if failures is not None:
            new.append(failures | "TagFailures" >> beam.Map(lambda f: (FAILURES, f)))
        _ = new | "New" >> beam.Flatten() | "Save" >> beam.ParDo(_WriteTokenFiles(self.folder))
        all_tokens = (split["tokens"], tokens) | "AllTokens" >> beam.Flatten()
        all_failures = (
            (split[FAILURES], failures) if failures is not None else (split[FAILURES],)
        ) | "AllTokenFailures" >> beam.Flatten()
        return all_tokens, all_failures


def _refuse_encode(image: dict) -> None:
    raise RuntimeError(
        f"image {image['image_id']} has no cached tokens for this tokenizer: `uvd remix` never "
        "encodes; build the dataset with `uvd dataset` (same tokenizer) first"
    )


# --- entry snapshots (what uvd remix starts from) ---------------------------------------------------
def input_identity(path: str) -> list:
    """Every file an entry's input names, with size and modification time (local or any Beam filesystem)."""
    if "://" not in path and os.path.isdir(path):
        files = sorted(p for p in globlib.glob(os.path.join(path, "**"), recursive=True) if os.path.isfile(p))
    elif "://" not in path:
        files = sorted(globlib.glob(path)) or [path]
    else:
        pattern = FileSystems.join(path, "**") if not any(c in path for c in "*?[") else path
        return sorted(
            [m.path, m.size_in_bytes, getattr(m, "last_updated_in_seconds", None)]
            for m in FileSystems.match([pattern])[0].metadata_list
        )
    return [describe(f) for f in files]


def entry_key(name: str, stage: str, config: dict) -> str:
    from uvd import __version__

    return digest(
        name,
        stage,
        describe({k: v for k, v in config.items() if k != "input"}),
        input_identity(config["input"]),
        __version__,
        DATA_VERSION,
    )


def snapshot_folder(cache: str, key: str) -> str:
    return FileSystems.join(cache, "entries", key)


def write_snapshot(outputs: Any, cache: str, key: str, label: str) -> None:
    """An entry's SourceOutputs -> its snapshot tables (images without pixels: ids and provenance)."""
    folder = snapshot_folder(cache, key)
    slim = outputs.images | f"Slim_{label}" >> beam.Map(
        lambda r: {"image_id": r["image_id"], "image": b"", "source": r["source"], "provenance": r.get("provenance")}
    )
    for table, pcoll in (("sentences", outputs.sentences), ("failures", outputs.failures), ("images", slim)):
        _ = pcoll | f"Snap_{table}_{label}" >> tables.WriteTable(folder, table)


def clear_snapshot(cache: str, key: str) -> None:
    folder = snapshot_folder(cache, key)
    for table in (*SNAPSHOT_TABLES, None):
        pattern = FileSystems.join(folder, table, "*") if table else FileSystems.join(folder, "*.json")
        found = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
        if found:
            FileSystems.delete(found)


def complete_snapshot(cache: str, key: str, entry: str) -> None:
    write_json(FileSystems.join(snapshot_folder(cache, key), "_COMPLETE.json"), {"entry": entry})


def snapshot_complete(cache: str, key: str) -> bool:
    return FileSystems.exists(FileSystems.join(snapshot_folder(cache, key), "_COMPLETE.json"))


def records_path(cache: str, keys: list[str]) -> str:
    return FileSystems.join(cache, "records", digest(sorted(keys)) + ".json")


def save_records(cache: str, keys: list[str], records: dict | None) -> None:
    write_json(records_path(cache, keys), {"records": records})


def load_records(cache: str, keys: list[str]) -> dict | None:
    path = records_path(cache, keys)
    return read_json(path)["records"] if FileSystems.exists(path) else None
