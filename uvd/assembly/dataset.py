"""`uvd dataset --manifest M --output O`: a mixture manifest -> every source -> tokens -> shards + card.

One Beam pipeline (what `make dataset` runs):

    each manifest entry: its stage module's source_transform(options + input)  -> images, sentences, failures
    images   --DedupImages--> --TokenizeImages--> tokens           (each unique image tokenized once)
    sentences + images + tokens --Quality--> sentences (+ failures)  (manifest `quality:`; uvd/quality)
    sentences + tokens --ComposeSentences--> --AssignSplits--> --Mix--> --WriteShards-->
    failures (sources, tokenizer, compose) --WriteFailures--> failures/ + stats/failures.json
    then, on the driver: Beam counters -> record reconciliation; stats/*.json -> README.md card
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Callable
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from uvd.assembly import card
from uvd.assembly import manifest as manifest_lib
from uvd.assembly.mix import Mix
from uvd.assembly.shards import AssignSplits, ComposeSentences, WriteShards
from uvd.config import ConfigError
from uvd.core import tables
from uvd.core.options import setup_logging, split_args
from uvd.core.outputs import SourceOutputs, merge_outputs
from uvd.core.summary import stage_summaries
from uvd.quality import pipeline as quality

log = logging.getLogger("uvd")
TokenizeFactory = Callable[[str, int], beam.PTransform]


def _label(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def resolve_checkpoint(checkpoint: str) -> str:
    if checkpoint != "default":
        return checkpoint
    from uvd.tokenize import DEFAULT_CHECKPOINT

    return str(DEFAULT_CHECKPOINT)


def real_tokenizer(checkpoint: str, batch_size: int, **options: Any) -> beam.PTransform:
    from uvd.tokenize.stage import TokenizeImages

    return TokenizeImages(checkpoint, batch_size, unique_ids=True, **options)   # build() deduplicates first


def _split_tokenize_output(out: Any) -> tuple[beam.PCollection, beam.PCollection | None]:
    """TokenizeImages gives token rows, or (tokens, failures) when it dead-letters bad images."""
    if isinstance(out, beam.PCollection):
        return out, None
    if hasattr(out, "tokens"):
        return out.tokens, getattr(out, "failures", None)
    tokens, failures = out
    return tokens, failures


def build(p: beam.Pipeline, m: manifest_lib.Manifest, output: str, modules: dict[str, Any],
          tokenize: TokenizeFactory, checkpoint: str) -> None:
    """Add the whole dataset to pipeline `p` (sources are the given stage modules, by entry name)."""
    outputs = []
    for name, module in modules.items():
        label = _label(name)
        out = p | f"Source_{label}" >> module.source_transform(m.stage_config(name))
        sentences = out.sentences | f"Entry_{label}" >> beam.Map(lambda s, n=name: {**s, "entry": n})
        outputs.append(SourceOutputs(out.images, sentences, out.failures))
    merged = merge_outputs(outputs, "Sources")
    images = merged.images | "DedupImages" >> tables.DedupImages()
    tokens, token_failures = _split_tokenize_output(
        images | "Tokenize" >> tokenize(checkpoint, m.tokenizer_spec.batch_size, **m.tokenizer_spec.handler_options()))
    sentences, quality_failures = quality.apply(m.quality_spec, merged.sentences, images, tokens, output, m.seed,
                                                m.validation_fraction, checkpoint)
    rows, compose_failures = (sentences, tokens) | "Compose" >> ComposeSentences()
    rows = rows | "Splits" >> AssignSplits(m.validation_fraction, m.seed)
    mixed = rows | "Mix" >> Mix(
        weights={n: e.weight for n, e in m.entries.items()},
        replacement={n: e.replacement for n, e in m.entries.items()},
        weights_by=m.weights_by, total=m.total, seed=m.seed, output=output)
    _ = mixed | "Shards" >> WriteShards(output, m.seed, m.shard_spec.target_shard_mb, m.shard_spec.row_group_mb)
    failures = [merged.failures, compose_failures, *quality_failures] + (
        [token_failures] if token_failures is not None else [])
    _ = failures | "AllFailures" >> beam.Flatten() | "Failures" >> card.WriteFailures(output)
    _ = merged.sentences | "SourceCounts" >> card.SummarizeAvailable(output)


def build_dataset(m: manifest_lib.Manifest, output: str, options: PipelineOptions,
                  modules: dict[str, Any] | None = None, tokenize: TokenizeFactory | None = None) -> dict:
    """Run the pipeline, then write the card; returns the card's summary. Tests inject fakes."""
    modules = manifest_lib.check_stage_options(m) if modules is None else modules
    checkpoint = resolve_checkpoint(m.tokenizer_spec.checkpoint)
    p = beam.Pipeline(options=options)
    build(p, m, output, modules, tokenize or real_tokenizer, checkpoint)
    result = p.run()
    result.wait_until_finish()
    for line in stage_summaries(result, output):
        print(line, file=sys.stderr)
    config = {"manifest": m.path or None, "manifest name": m.name, "seed": m.seed, "weights_by": m.weights_by,
              "validation_fraction": m.validation_fraction}
    return card.finish(output, config=config, manifest_text=m.text, tokenizer_checkpoint=checkpoint,
                       metrics=card.record_metrics(result), name=m.name)


def viewer_config(m: manifest_lib.Manifest, output: str) -> Any:
    """The manifest's `viewer:` section -> the viewer's Config (None: off), checked before any work."""
    from uvd.viewer.build import from_manifest

    return from_manifest(m.viewer, output)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="uvd dataset", description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default=str(manifest_lib.DEFAULT_MANIFEST),
                        help="mixture manifest YAML (default: the embedded sample)")
    parser.add_argument("--output", required=False, default="out/sample",
                        help="folder for shards, README.md card, failures/ and stats/")
    parser.add_argument("--check", action="store_true", help="validate the manifest and stage options, then exit")
    args, options = split_args(parser, argv)
    setup_logging()
    try:
        m = manifest_lib.load(args.manifest)
        modules = manifest_lib.check_stage_options(m)
        viewer = viewer_config(m, args.output)
    except ConfigError as exc:  # a bad manifest: the field and the fix, not a traceback
        print(f"uvd dataset: {args.manifest}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.manifest}: ok ({len(m.entries)} sources, weights by {m.weights_by})")
        return 0
    summary = build_dataset(m, args.output, options, modules)
    for split, t in summary["totals"]["by_split"].items():
        print(f"[uvd dataset] {split}: {t['sentences']:,} sentences, {t['tokens']:,} tokens in {t['shards']} shards")
    print(f"[uvd dataset] card: {args.output}/README.md")
    if viewer is not None:
        from uvd.viewer.build import build_viewer

        report = build_viewer(viewer)
        print(f"[uvd dataset] viewer: {report['index']} ({report['decoded']} sentences decoded, {report['seconds']}s)")
    return 0
