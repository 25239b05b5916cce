"""From a checked annotation record to rows, and from image rows to pair sentences.

Every stage that makes annotated sentences (annotations, hf, label, pose) yields `emit_record`
from its RunSource function and ends its transform with `with_pair_sentences`.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam

from uvd.annotated import sentences
from uvd.annotated.options import AnnotatedOptions
from uvd.annotated.pooling import PairSentences
from uvd.annotated.records import AnnotationRecord, is_input_type
from uvd.annotated.render import record_image_rows, render_record, skipped_rows
from uvd.core.outputs import FAILURES, IMAGES, SENTENCES, SourceOutputs


def emit_record(
    record: AnnotationRecord, opts: AnnotatedOptions, source: str | None = None, stage: str = "annotations"
) -> Iterator[tuple[str, dict]]:
    """A checked annotation record -> (tag, row): its image rows and, with >= multi_min_annotations
    outputs, a multi-annotation sentence. Pair sentences come later from `with_pair_sentences`.

    Each defect of the record and each task whose target is empty is a skipped failure row
    (`source` defaults to the record's `ann/<dataset>`); an image left with no target at all
    gives no image rows.
    """
    rendered = render_record(record, opts.image_size, opts.resize, opts.seed)
    for row in skipped_rows(record, rendered, source or f"ann/{record['dataset']}", stage):
        yield FAILURES, row
    if not rendered.annotations:
        return
    bucket = sentences.bucket_of(record["group"], opts.pair_buckets)
    rows, image_id, ann_ids = record_image_rows(record, rendered, bucket)
    for row in rows:
        yield IMAGES, row
    outputs = {t: i for t, i in ann_ids.items() if not is_input_type(record["annotations"][t])}
    if opts.multi_annotation and len(outputs) >= opts.multi_min_annotations:
        row = sentences.multi_annotation_sentence(
            image_id,
            outputs,
            record["record_id"],
            sentences.pool_group(record["dataset"], bucket),
            record.get("split"),
            opts.seed,
        )
        if row is not None:
            yield SENTENCES, row


def with_pair_sentences(out: SourceOutputs, opts: AnnotatedOptions, *more_failures: beam.PCollection) -> SourceOutputs:
    """`out` plus the 8-pair sentences pooled from its image rows; every failure in one collection."""
    pair_sentences, pair_failures = out.images | "PairSentences" >> PairSentences(
        opts.seed, opts.pairs_per_sentence, opts.min_pairs
    )
    all_sentences = (out.sentences, pair_sentences) | "Sentences" >> beam.Flatten()
    all_failures = (*more_failures, out.failures, pair_failures) | "Failures" >> beam.Flatten()
    return SourceOutputs(out.images, all_sentences, all_failures)
