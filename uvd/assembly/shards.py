"""Sentences + tokens -> shuffled, split Parquet shards in the shard contract (uvd.schema).

Flow (each step a labelled Beam transform; the work sits in plain functions below):

    sentences, tokens --ComposeSentences--> composed rows (+ failures: a sentence missing a token)
      --AssignSplits--> split from the sentence, else from a hash of its `group` (no group in two splits)
      --KeepImagesInOneSplit--> a sentence whose image another split already has is filtered (failures)
      --WriteShards--> plan (a singleton side input: rows/tokens per split -> shard count)
                       -> shard = floor(u * N), u = seeded hash of sentence_id in [0, 1)
                       -> group per shard, sort by that hash, write atomically, per-shard stats

Concatenating the shards of a split in index order gives the rows ordered by the seeded hash: a
global shuffle that no worker ever gathers, and the same bytes on any runner and worker count.
`uvd shards` runs this on the sentences/tokens tables of earlier stages and writes the card too.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from uvd import schema
from uvd.assembly.publish import PLAN_FILE
from uvd.core.files import atomic_write, write_json
from uvd.core.metrics import SumCounts
from uvd.core.options import setup_logging, split_args
from uvd.core.outputs import FAILURES
from uvd.hashing import unit_hash
from uvd.schema import normalize_split, shard_name, split_for

STAGE = "shards"
# zstd on dictionary-encoded uint16 codes lands near 1.5 bytes/token; used only to size shards.
EST_BYTES_PER_TOKEN = 1.5
DEFAULT_TARGET_SHARD_MB = 256.0
DEFAULT_ROW_GROUP_MB = 4.0
ZSTD_LEVEL = 3


# --- pure functions (no Beam) ----------------------------------------------------------------------
def shuffle_key(seed: int, sentence_id: str) -> float:
    return unit_hash(seed, "shuffle", sentence_id)


def compose_sentence(sentence: dict, parts: Iterable[tuple[int, Any]]) -> Iterator[tuple[str, dict]]:
    """One sentence row + its (position, tokens or None) parts -> a composed row or a failure."""
    sid = sentence["sentence_id"]
    n = len(sentence["image_ids"])
    by_pos: dict[int, Any] = {}
    for pos, tokens in parts:
        by_pos[pos] = tokens
    missing = [sentence["image_ids"][i] for i in range(n) if by_pos.get(i) is None]
    if missing:
        yield (
            FAILURES,
            schema.failure_row(
                sid,
                sentence["source"],
                STAGE,
                "missing_tokens",
                f"{len(missing)} of {n} images have no tokens, e.g. {missing[0]}",
            ),
        )
        return
    arrays = []
    for i in range(n):
        arr = np.asarray(by_pos[i])
        if arr.shape != (schema.TOKENS_PER_IMAGE,) or arr.min() < 0 or arr.max() >= schema.CODEBOOK_SIZE:
            yield (
                FAILURES,
                schema.failure_row(
                    sid,
                    sentence["source"],
                    STAGE,
                    "bad_tokens",
                    f"image {sentence['image_ids'][i]}: shape {arr.shape}, range {arr.min()}..{arr.max()}",
                ),
            )
            return
        arrays.append(arr.astype(np.uint16))
    yield (
        "rows",
        {
            "sentence_id": sid,
            "source": sentence["source"],
            "kind": sentence["kind"],
            "num_images": n,
            "tokens": np.concatenate(arrays),
            "group": sentence["group"],
            "image_ids": list(sentence["image_ids"]),  # for KeepImagesInOneSplit; the shard row drops it
            "split": normalize_split(sentence.get("split")),
            "entry": sentence.get("entry") or sentence["source"],
        },
    )


def num_shards(tokens: int, target_shard_bytes: float) -> int:
    return max(1, math.ceil(tokens * EST_BYTES_PER_TOKEN / target_shard_bytes))


def shard_of(key: float, count: int) -> int:
    """Shard i holds keys in [i/N, (i+1)/N): concatenated shards keep the global hash order."""
    return min(int(key * count), count - 1)


class ShardRow(NamedTuple):
    """What a shard keeps of a composed row, plus its shuffle key: a tuple, not a dict, because a
    whole shard's rows sit in one worker's memory while it is written."""

    key: float
    sentence_id: str
    source: str
    kind: str
    num_images: int
    tokens: np.ndarray


def to_shard_row(row: dict, key: float) -> ShardRow:
    return ShardRow(
        key,
        row["sentence_id"],
        row["source"],
        row["kind"],
        int(row["num_images"]),
        np.asarray(row["tokens"], dtype=np.uint16),
    )


def shard_table(rows: Sequence[ShardRow]) -> pa.Table:
    """Rows (already in shard order) -> an Arrow table in exactly SHARD_SCHEMA."""
    tokens = [r.tokens for r in rows]
    offsets = np.zeros(len(tokens) + 1, dtype=np.int32)
    if tokens:
        np.cumsum([len(t) for t in tokens], out=offsets[1:])
    flat = np.concatenate(tokens) if tokens else np.zeros(0, dtype=np.uint16)
    token_array = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=pa.uint16()))
    return pa.Table.from_arrays(
        [
            pa.array([r.sentence_id for r in rows], pa.string()),
            pa.array([r.source for r in rows], pa.string()),
            pa.array([r.kind for r in rows], pa.string()),
            pa.array([r.num_images for r in rows], pa.int16()),
            token_array,
        ],
        schema=schema.SHARD_SCHEMA,
    )


def row_group_bounds(token_counts: list[int], row_group_bytes: float) -> list[tuple[int, int]]:
    """Cut rows into consecutive groups of about row_group_bytes on disk (deterministic)."""
    bounds, start, acc = [], 0, 0.0
    for i, n in enumerate(token_counts):
        acc += n * EST_BYTES_PER_TOKEN
        if acc >= row_group_bytes:
            bounds.append((start, i + 1))
            start, acc = i + 1, 0.0
    if start < len(token_counts) or not bounds:
        bounds.append((start, len(token_counts)))
    return bounds


def write_parquet_atomic(path: str, table: pa.Table, row_group_bytes: float) -> int:
    """Write a shard through a temporary name, then rename (core.files.atomic_write); returns its size."""
    counts = np.diff(table.column("tokens").combine_chunks().offsets.to_numpy()).tolist() if table.num_rows else []

    def write(stream: Any) -> None:
        writer = pq.ParquetWriter(
            stream,
            schema.SHARD_SCHEMA,
            compression="zstd",
            compression_level=ZSTD_LEVEL,
            # codes: BYTE_STREAM_SPLIT + zstd entropy-codes the skewed high byte (1.46 vs 1.60
            # B/token with dictionary bit-packing on Zipf codes; benchmarks/bench_shards.py)
            use_dictionary=["source", "kind"],
            write_statistics=["num_images"],
            column_encoding={"tokens.list.element": "BYTE_STREAM_SPLIT"},
        )
        for start, end in row_group_bounds(counts, row_group_bytes):
            writer.write_table(table.slice(start, end - start), row_group_size=max(1, end - start))
        writer.close()

    atomic_write(path, write)
    return FileSystems.match([path])[0].metadata_list[0].size_in_bytes


def shard_stats(rows: Sequence[ShardRow], split: str, index: int, count: int, size_bytes: int) -> dict:
    """Per-shard counts, per source: what the card adds up (and what `count back` checks)."""
    per_source: dict[str, dict[str, int]] = {}
    for r in rows:
        s = per_source.setdefault(r.source, {"sentences": 0, "images": 0, "tokens": 0})
        s["sentences"] += 1
        s["images"] += r.num_images
        s["tokens"] += len(r.tokens)
    return {
        "file": shard_name(split, index, count),
        "split": split,
        "index": index,
        "count": count,
        "rows": len(rows),
        "images": sum(s["images"] for s in per_source.values()),
        "tokens": sum(s["tokens"] for s in per_source.values()),
        "bytes": size_bytes,
        "sources": dict(sorted(per_source.items())),
    }


# --- Beam transforms -------------------------------------------------------------------------------
def _explode(sentence: dict) -> Iterator[tuple[str, tuple[str, int]]]:
    for pos, image_id in enumerate(sentence["image_ids"]):
        yield image_id, (sentence["sentence_id"], pos)


def _attach_tokens(item: tuple[str, dict]) -> Iterator[tuple[str, tuple[int, Any]]]:
    _, joined = item
    tokens = next(iter(joined["tokens"]), None)
    for sid, pos in joined["uses"]:
        yield sid, (pos, tokens)


def _content(sentence: dict) -> str:
    """What a sentence says (not which manifest entry brought it): equal content is a harmless duplicate."""
    return json.dumps({k: v for k, v in sentence.items() if k != "entry"}, sort_keys=True, default=str)


def _claimant(sentence: dict) -> str:
    ids = list(sentence["image_ids"])
    return (
        f"{sentence.get('entry') or sentence['source']} ({sentence['source']}, group {sentence['group']}, "
        f"{len(ids)} images from {ids[0] if ids else '-'})"
    )


def resolve_duplicates(sid: str, sentences: list[dict]) -> tuple[dict | None, list[dict]]:
    """Rows sharing one sentence id -> (the row to compose or None, failure rows).

    Identical rows (one input reached twice) keep one. Different rows mean two inputs claim one id:
    merging them would mix their images, so every claimant is dead-lettered, each naming the others.
    """
    sentences = sorted(sentences, key=_content)
    if len({_content(s) for s in sentences}) > 1:
        claims = [_claimant(s) for s in sentences]
        return None, [
            schema.failure_row(
                sid,
                s["source"],
                STAGE,
                "conflicting_sentence_id",
                f"{len(sentences)} different sentences claim this id: "
                + "; ".join(claims[:1] + [c for c in claims if c != claims[0]][:3]),
            )
            for s in sentences
        ]
    return sentences[0], [
        schema.failure_row(
            sid, extra["source"], STAGE, "duplicate_sentence_id", "kept one of several identical rows", "skipped"
        )
        for extra in sentences[1:]
    ]


def _compose(item: tuple[str, dict]) -> Iterator[beam.pvalue.TaggedOutput]:
    sid, joined = item
    if not joined["sentence"]:  # tokens reached a sentence id with no row: cannot happen by construction
        return
    sentence, failures = resolve_duplicates(sid, list(joined["sentence"]))
    for failure in failures:
        yield beam.pvalue.TaggedOutput(FAILURES, failure)
    if sentence is None:
        return
    for tag, row in compose_sentence(sentence, joined["parts"]):
        yield beam.pvalue.TaggedOutput(tag, row)


class ComposeSentences(beam.PTransform):
    """(sentences, tokens) -> composed rows + failures, joined by image_id then by sentence_id.

    Two CoGroupByKeys keep every key's work bounded (an image's users, a sentence's <= 16 images).
    """

    def expand(self, inputs: tuple[beam.PCollection, beam.PCollection]):
        sentences, tokens = inputs
        sentences = sentences | "NormalizeIds" >> beam.Map(lambda s: {**s, "image_ids": list(s["image_ids"])})
        uses = sentences | "ExplodeImages" >> beam.FlatMap(_explode)
        keyed_tokens = tokens | "KeyTokens" >> beam.Map(lambda t: (t["image_id"], t["tokens"]))
        parts = (
            {"uses": uses, "tokens": keyed_tokens}
            | "JoinImages" >> beam.CoGroupByKey()
            | "AttachTokens" >> beam.FlatMap(_attach_tokens)
        )
        keyed_sentences = sentences | "KeySentences" >> beam.Map(lambda s: (s["sentence_id"], s))
        out = (
            {"sentence": keyed_sentences, "parts": parts}
            | "JoinSentences" >> beam.CoGroupByKey()
            | "Compose" >> beam.FlatMap(_compose).with_outputs("rows", FAILURES)
        )
        return out["rows"], out[FAILURES]


class AssignSplits(beam.PTransform):
    """Keep a source-fixed split; else train/validation by a seeded hash of the group."""

    def __init__(self, validation_fraction: float, seed: int) -> None:
        super().__init__()
        self.fraction, self.seed = validation_fraction, seed

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        fraction, seed = self.fraction, self.seed
        return rows | "Split" >> beam.Map(
            lambda r: r if r.get("split") else {**r, "split": split_for(r["group"], fraction, seed)}
        )


def split_rank(split: str) -> tuple[int, str]:
    """Which split keeps a shared image: train first, then validation, then the others by name."""
    return (0 if split == "train" else 1 if split == "validation" else 2, split)


def _image_claims(row: dict) -> Iterator[tuple[str, tuple[int, str]]]:
    for image_id in set(row.get("image_ids") or ()):
        yield image_id, split_rank(row["split"])


def _sentence_verdicts(item: tuple[str, dict]) -> Iterator[tuple[str, str | None]]:
    """Per image: each user sentence gets the winning split if it is not in it, else None."""
    _, joined = item
    best = min(joined["best"])
    for sid, rank in joined["users"]:
        yield sid, (best[1] if rank > best else None)


def _keep_or_fail(item: tuple[str, dict]) -> Iterator[beam.pvalue.TaggedOutput]:
    _, joined = item
    conflicts = sorted({v for v in joined["verdicts"] if v})
    for row in joined["row"]:
        if conflicts:
            yield beam.pvalue.TaggedOutput(
                FAILURES,
                schema.failure_row(
                    row["sentence_id"],
                    row["source"],
                    STAGE,
                    "image_in_other_split",
                    f"split {row['split']}: an image of this sentence is also in {conflicts[0]}; "
                    "held-out splits never share an image with train",
                    "filtered",
                ),
            )
        else:
            yield beam.pvalue.TaggedOutput("rows", row)


class KeepImagesInOneSplit(beam.PTransform):
    """Rows with a split -> (rows, failures): no image_id in two splits, across every source.

    Splits come from each source's `group` (or its own split), and two sources can put the same
    image in different groups. Each image keeps the best-ranked split that uses it (train first);
    a sentence of another split that uses it is filtered out with a failure row. Removing sentences
    only removes uses, so one pass is enough: no image is left in two splits.
    """

    def expand(self, rows: beam.PCollection):
        claims = rows | "Claims" >> beam.FlatMap(_image_claims)
        best = claims | "Best" >> beam.CombinePerKey(min)
        users = rows | "Users" >> beam.FlatMap(
            lambda r: [(i, (r["sentence_id"], split_rank(r["split"]))) for i in set(r.get("image_ids") or ())]
        )
        verdicts = (
            {"best": best, "users": users}
            | "JoinImages" >> beam.CoGroupByKey()
            | "Verdicts" >> beam.FlatMap(_sentence_verdicts)
        )
        keyed = rows | "KeyRows" >> beam.Map(lambda r: (r["sentence_id"], r))
        out = (
            {"row": keyed, "verdicts": verdicts}
            | "JoinSentences" >> beam.CoGroupByKey()
            | "Keep" >> beam.FlatMap(_keep_or_fail).with_outputs("rows", FAILURES)
        )
        return out["rows"], out[FAILURES]


class _SplitTotals(SumCounts):
    """split -> tokens, merged across workers: the singleton the shard plan is made from."""

    def add_input(self, acc: dict, row: dict) -> dict:
        acc[row["split"]] = acc.get(row["split"], 0) + len(row["tokens"])
        return acc


class _WriteShardFn(beam.DoFn):
    def __init__(self, output: str, row_group_bytes: float) -> None:
        self.output, self.row_group_bytes = output, row_group_bytes

    def process(self, item: tuple[tuple[str, int, int], Iterable[ShardRow | None]]) -> Iterator[dict]:
        (split, index, count), values = item
        rows = sorted((v for v in values if v is not None), key=lambda r: (r.key, r.sentence_id))
        path = FileSystems.join(self.output, shard_name(split, index, count))
        size = write_parquet_atomic(path, shard_table(rows), self.row_group_bytes)
        stats = shard_stats(rows, split, index, count, size)
        write_json(FileSystems.join(self.output, "stats", stats["file"] + ".json"), stats)
        beam.metrics.Metrics.counter(f"uvd.{STAGE}", "sentences_written").inc(len(rows))
        yield stats


class WriteShards(beam.PTransform):
    """Composed rows with a split -> `<output>/<split>-iiiii-of-nnnnn.parquet` + per-shard stats.

    The number of shards per split comes from a singleton side input (tokens per split and a target
    shard size); every planned shard is written, empty or not, so the names always add up.
    """

    def __init__(
        self,
        output: str,
        seed: int = 0,
        target_shard_mb: float = DEFAULT_TARGET_SHARD_MB,
        row_group_mb: float = DEFAULT_ROW_GROUP_MB,
    ) -> None:
        super().__init__()
        self.output, self.seed = output, seed
        self.target_bytes = target_shard_mb * 2**20
        self.row_group_bytes = row_group_mb * 2**20

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        seed, target = self.seed, self.target_bytes
        plan = (
            rows
            | "PlanTotals" >> beam.CombineGlobally(_SplitTotals())
            | "Plan" >> beam.Map(lambda totals: {split: num_shards(t, target) for split, t in totals.items()})
        )

        def key_row(row: dict, plan: dict) -> tuple[tuple[str, int, int], ShardRow]:
            key = shuffle_key(seed, row["sentence_id"])
            count = plan[row["split"]]
            return (row["split"], shard_of(key, count), count), to_shard_row(row, key)

        plan_path = FileSystems.join(self.output, "stats", PLAN_FILE)
        _ = plan | "SavePlan" >> beam.Map(lambda p: write_json(plan_path, p))
        placeholders = plan | "AllShards" >> beam.FlatMap(
            lambda p: [((split, i, n), None) for split, n in p.items() for i in range(n)]
        )
        keyed = rows | "KeyByShard" >> beam.Map(key_row, plan=beam.pvalue.AsSingleton(plan))
        return (
            (keyed, placeholders)
            | "WithEmptyShards" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(_WriteShardFn(self.output, self.row_group_bytes))
        )


# --- the `uvd shards` stage ------------------------------------------------------------------------
def _has_table(folder: str, table: str) -> bool:
    from uvd.core.tables import table_pattern

    return bool(FileSystems.match([table_pattern(folder, table)])[0].metadata_list)


def run(argv: list[str] | None = None) -> int:
    """sentences + tokens tables (from earlier stages) -> shards, failures table and dataset card."""
    from uvd.assembly import card, publish
    from uvd.core import tables

    parser = argparse.ArgumentParser(prog="uvd shards", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        required=True,
        help="folder with sentences/, tokens/ and failures/ tables (uvd <source> and uvd tokenize "
        "--output); repeat for several sources",
    )
    parser.add_argument("--output", required=True, help="folder for shards, README.md card, failures/ and stats/")
    parser.add_argument("--seed", type=int, default=0, help="shuffle and split hashes")
    parser.add_argument("--validation_fraction", type=float, default=0.01, help="of groups without a source split")
    parser.add_argument("--target_shard_mb", type=float, default=DEFAULT_TARGET_SHARD_MB)
    parser.add_argument("--row_group_mb", type=float, default=DEFAULT_ROW_GROUP_MB)
    args, options = split_args(parser, argv)
    setup_logging()
    for table in ("sentences", "tokens"):
        if not any(_has_table(f, table) for f in args.input):
            parser.error(f"--input: no {table} table (<folder>/{table}/part*.parquet) in {args.input}")
    publish.begin(args.output)
    p = beam.Pipeline(options=options)

    def read(table: str) -> beam.PCollection:
        parts = [
            p | f"Read_{table}_{i}" >> tables.ReadTable(f, table)
            for i, f in enumerate(args.input)
            if _has_table(f, table)
        ]
        return parts | f"All_{table}" >> beam.Flatten(pipeline=p)

    sentences, tokens, failures = read("sentences"), read("tokens"), read("failures")
    rows, compose_failures = (sentences, tokens) | "Compose" >> ComposeSentences()
    rows = rows | "Splits" >> AssignSplits(args.validation_fraction, args.seed)
    rows, split_failures = rows | "OneSplitPerImage" >> KeepImagesInOneSplit()
    _ = rows | "Shards" >> WriteShards(args.output, args.seed, args.target_shard_mb, args.row_group_mb)
    all_failures = (failures, compose_failures, split_failures) | "AllFailures" >> beam.Flatten()
    _ = all_failures | "Failures" >> card.WriteFailures(args.output)
    _ = sentences | "Available" >> card.SummarizeAvailable(args.output)
    result = p.run()
    result.wait_until_finish()
    config = {
        "stage": "shards",
        "inputs": ", ".join(args.input),
        "seed": args.seed,
        "validation_fraction": args.validation_fraction,
    }
    summary = card.finish(
        args.output, config=config, manifest_text=None, tokenizer_checkpoint=None, metrics=card.record_metrics(result)
    )
    publish.complete(args.output)
    for split, t in summary["totals"]["by_split"].items():
        print(f"[uvd shards] {split}: {t['sentences']:,} sentences, {t['tokens']:,} tokens in {t['shards']} shards")
    return 0
