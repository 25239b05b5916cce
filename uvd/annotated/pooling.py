"""Pair sentences: annotation image rows pooled by (dataset, task, split, bucket), cut into 8 pairs.

Rows come from any producer of annotation records (render.record_image_rows puts each pair in
the annotation row's provenance), so this step runs after rendering, across records. Chunks
are deterministic (sorted by a seeded hash of the record id); a pool's last chunk with fewer
than `min_pairs` pairs becomes "skipped" failure rows (reason too_few_pairs), one per record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics

from uvd.annotated import sentences
from uvd.core.outputs import FAILURES, SENTENCES
from uvd.schema import failure_row

STAGE = "annotations"


def _pair_entry(row: dict) -> Iterator[tuple[tuple, sentences.Pair]]:
    prov = json.loads(row.get("provenance") or "{}")
    if prov.get("role") != "annotation" or "pair" not in prov:
        return
    key = (prov["dataset"], prov["task"], prov.get("split"), int(prov.get("bucket", 0)))
    yield key, sentences.Pair(prov["record_id"], prov["pair"][0], prov["pair"][1])


class _ChunkPairs(beam.DoFn):
    def __init__(self, seed: int, pairs_per_sentence: int, min_pairs: int) -> None:
        self.seed, self.per, self.min_pairs = seed, pairs_per_sentence, min_pairs

    def setup(self) -> None:
        self.made = Metrics.counter(f"uvd.{STAGE}", "pair_sentences")
        self.left = Metrics.counter(f"uvd.{STAGE}.skipped", "too_few_pairs")

    def process(self, element):
        (dataset, task, split, bucket), pairs_ = element
        chunks, leftover = sentences.chunk_pairs(list(pairs_), self.seed, self.per, self.min_pairs)
        group = sentences.pool_group(dataset, bucket)
        for chunk in chunks:
            self.made.inc()
            yield beam.pvalue.TaggedOutput(SENTENCES, sentences.pair_sentence(chunk, task, group, split, self.seed))
        for pair in leftover:
            self.left.inc()
            yield beam.pvalue.TaggedOutput(
                FAILURES,
                failure_row(
                    pair.record_id,
                    f"ann/{task}",
                    STAGE,
                    "too_few_pairs",
                    f"{len(leftover)} pairs left in pool {dataset}/{task}/{split}/{bucket} (< min_pairs {self.min_pairs})",
                    status="skipped",
                ),
            )


class PairSentences(beam.PTransform):
    """Annotation image rows (with provenance "pair") -> 16-image pair sentences + skipped leftovers.

    Usable by any producer of annotation records (pose, expert labels): feed it their image rows.
    Returns (sentences, failures).
    """

    def __init__(
        self,
        seed: int = 0,
        pairs_per_sentence: int = sentences.PAIRS_PER_SENTENCE,
        min_pairs: int = 2,
        label: str | None = None,
    ) -> None:
        super().__init__(label)
        self.seed, self.per, self.min_pairs = seed, pairs_per_sentence, min_pairs

    def expand(self, images):
        out = (
            images
            | "PairOf" >> beam.FlatMap(_pair_entry)
            | "Pool" >> beam.GroupByKey()
            | "Chunk" >> beam.ParDo(_ChunkPairs(self.seed, self.per, self.min_pairs)).with_outputs(SENTENCES, FAILURES)
        )
        return out[SENTENCES], out[FAILURES]
