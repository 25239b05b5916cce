"""`uvd dataset --manifest M --output O`: a mixture manifest -> every source -> tokens -> shards + card.

One Beam pipeline (what `make dataset` runs):

    each manifest entry: its stage module's source_transform(options + input)  -> images, sentences, failures
    images   --DedupImages--> --CachedTokenize--> tokens   (each unique image once; cached tokens reused)
    sentences + images + tokens --Quality--> sentences (+ failures)  (manifest `quality:`; uvd/quality)
    sentences + tokens --ComposeSentences--> --AssignSplits--> --KeepImagesInOneSplit--> --Mix--> --WriteShards-->
    failures (sources, tokenizer, quality, compose, splits) --WriteFailures--> failures/ + stats/failures.json
    then, on the driver: Beam counters -> record reconciliation; stats/*.json -> README.md card; the
    viewer (manifest `viewer:`); _COMPLETE.json last

Resume (the default): source steps run through work units (uvd.core.units) and tokens through a
cache, both under `<output>/cache` (or --cache), so a rerun after a kill computes only what is
missing and writes the same bytes. `uvd remix` reuses the same cache (uvd.assembly.remix).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

import uvd
from uvd.assembly import cache, card, publish
from uvd.assembly import manifest as manifest_lib
from uvd.assembly.mix import Mix
from uvd.assembly.shards import AssignSplits, ComposeSentences, KeepImagesInOneSplit, WriteShards
from uvd.config import ConfigError
from uvd.core import tables, units
from uvd.core.files import write_json
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

    return TokenizeImages(checkpoint, batch_size, unique_ids=True, **options)  # build() deduplicates first


def _split_tokenize_output(out: Any) -> tuple[beam.PCollection, beam.PCollection | None]:
    """TokenizeImages gives token rows, or (tokens, failures) when it dead-letters bad images."""
    if isinstance(out, beam.PCollection):
        return out, None
    if hasattr(out, "tokens"):
        return out.tokens, getattr(out, "failures", None)
    tokens, failures = out
    return tokens, failures


def _entry_outputs(
    p: beam.Pipeline, m: manifest_lib.Manifest, name: str, module: Any, plan: BuildPlan
) -> SourceOutputs:
    """One manifest entry's images, sentences, failures: from its source stage (work units in the
    cache), or for `uvd remix` from the entry's snapshot; tagged with the entry name."""
    label, key = _label(name), plan.keys[name]
    if plan.remix:
        folder = cache.snapshot_folder(plan.cache, key)
        out = SourceOutputs(
            *[p | f"{t.title()}_{label}" >> tables.ReadTable(folder, t) for t in ("images", "sentences", "failures")]
        )
    else:
        with units.scope(plan.cache, name, m.stage_config(name), plan.mode):
            out = p | f"Source_{label}" >> module.source_transform(m.stage_config(name))
        cache.write_snapshot(out, plan.cache, key, label)
    sentences = out.sentences | f"Entry_{label}" >> beam.Map(lambda s, n=name: {**s, "entry": n})
    return SourceOutputs(out.images, sentences, out.failures)


def build(
    p: beam.Pipeline,
    m: manifest_lib.Manifest,
    output: str,
    modules: dict[str, Any],
    tokenize: TokenizeFactory | None,
    checkpoint: str,
    plan: BuildPlan,
) -> None:
    """Add the whole dataset to pipeline `p` (sources are the given stage modules, by entry name)."""
    merged = merge_outputs([_entry_outputs(p, m, name, module, plan) for name, module in modules.items()], "Sources")
    images = merged.images | "DedupImages" >> tables.DedupImages()
    encoder = (
        None
        if tokenize is None
        else tokenize(checkpoint, m.tokenizer_spec.batch_size, **m.tokenizer_spec.handler_options())
    )
    tokens, token_failures = images | "Tokenize" >> cache.CachedTokenize(
        plan.cache, plan.checkpoint_hash, encoder, _split_tokenize_output
    )
    sentences, quality_failures = quality.apply(
        m.quality_spec, merged.sentences, images, tokens, output, m.seed, m.validation_fraction, checkpoint
    )
    rows, compose_failures = (sentences, tokens) | "Compose" >> ComposeSentences()
    rows = rows | "Splits" >> AssignSplits(m.validation_fraction, m.seed)
    rows, split_failures = rows | "OneSplitPerImage" >> KeepImagesInOneSplit()
    mixed = rows | "Mix" >> Mix(
        weights={n: e.weight for n, e in m.entries.items()},
        replacement={n: e.replacement for n, e in m.entries.items()},
        weights_by=m.weights_by,
        total=m.total,
        seed=m.seed,
        output=output,
    )
    _ = mixed | "Shards" >> WriteShards(output, m.seed, m.shard_spec.target_shard_mb, m.shard_spec.row_group_mb)
    failures = [merged.failures, token_failures, *quality_failures, compose_failures, split_failures]
    _ = failures | "AllFailures" >> beam.Flatten() | "Failures" >> card.WriteFailures(output, plan.roots)
    _ = merged.sentences | "SourceCounts" >> card.SummarizeAvailable(output)


@dataclass
class BuildPlan:
    """Where the cache is and how it is used; entry keys name each entry's snapshot."""

    cache: str
    keys: dict[str, str]
    checkpoint_hash: str
    roots: dict[str, str]
    mode: str = "resume"  # uvd.core.units.MODES
    remix: bool = False


def checkpoint_name(spelled: str, resolved: str, manifest_dir: str | None) -> str:
    """How the card names the tokenizer: as the manifest spells it, never by this machine's absolute path."""
    if spelled == "default":
        return "default (" + os.path.relpath(resolved, os.path.dirname(os.path.dirname(uvd.__file__))) + ")"
    if os.path.isabs(spelled):
        base = manifest_dir or os.getcwd()
        rel = os.path.relpath(spelled, base)
        return rel if not rel.startswith("..") else os.path.basename(spelled.rstrip("/"))
    return spelled


def _counter(result: Any, namespace: str, name: str) -> int:
    try:
        from apache_beam.metrics.metric import MetricsFilter

        found = result.metrics().query(MetricsFilter().with_namespace(namespace).with_name(name))["counters"]
    except Exception:  # noqa: BLE001 - a runner without metrics
        return 0
    return sum(int((c.committed if c.committed is not None else c.attempted) or 0) for c in found)


def work_done(result: Any) -> dict[str, int]:
    """What this run reused and computed (printed and kept in the cache; not in the card, which a
    resumed build must reproduce byte for byte)."""
    return {
        "units reused": _counter(result, "uvd.units", "reused"),
        "units computed": _counter(result, "uvd.units", "computed"),
        "tokens cached": _counter(result, "uvd.tokens_cache", "hits"),
        "tokens encoded": _counter(result, "uvd.tokens_cache", "misses"),
    }


def build_dataset(
    m: manifest_lib.Manifest,
    output: str,
    options: PipelineOptions,
    modules: dict[str, Any] | None = None,
    tokenize: TokenizeFactory | None = None,
    cache_dir: str | None = None,
    mode: str = "resume",
    remix: bool = False,
    viewer: Any = None,
) -> dict:
    """Run the pipeline, then write the card and the completion marker; returns the card's summary.

    Tests inject fake `modules` and `tokenize`. `remix` builds from the cache's entry snapshots and
    tokens only (uvd remix): no source stage and no tokenizer runs.
    """
    modules = manifest_lib.check_stage_options(m) if modules is None else modules
    checkpoint = resolve_checkpoint(m.tokenizer_spec.checkpoint)
    manifest_dir = os.path.dirname(os.path.abspath(m.path)) if m.path else None
    plan = BuildPlan(
        cache=cache.cache_for(output, cache_dir),
        keys={n: cache.entry_key(n, m.entries[n].stage, m.stage_config(n)) for n in modules},
        checkpoint_hash=card.fingerprint(checkpoint) or "none",
        roots=card.default_roots(manifest_dir),
        mode=mode,
        remix=remix,
    )
    if remix:
        missing = [n for n, k in plan.keys.items() if not cache.snapshot_complete(plan.cache, k)]
        if missing:
            raise ConfigError(
                f"--from: {plan.cache} has no finished build of entry {missing[0]!r} with these inputs "
                "and options; remix changes weights, splits and shard sizes only (run uvd dataset)"
            )
    else:
        for key in plan.keys.values():
            cache.clear_snapshot(plan.cache, key)
    publish.begin(output)
    p = beam.Pipeline(options=options)
    build(p, m, output, modules, None if remix else (tokenize or real_tokenizer), checkpoint, plan)
    result = p.run()
    result.wait_until_finish()
    for line in stage_summaries(result, output):
        print(line, file=sys.stderr)
    if remix:
        records = cache.load_records(plan.cache, list(plan.keys.values()))
    else:
        records = card.record_metrics(result)
        for name, key in plan.keys.items():
            cache.complete_snapshot(plan.cache, key, name)
        cache.save_records(plan.cache, list(plan.keys.values()), records)
    config = {
        "manifest": os.path.basename(m.path) if m.path else None,
        "manifest name": m.name,
        "seed": m.seed,
        "weights_by": m.weights_by,
        "validation_fraction": m.validation_fraction,
    }
    summary = card.finish(
        output,
        config=config,
        manifest_text=m.text,
        tokenizer_checkpoint=checkpoint_name(m.tokenizer_spec.checkpoint, checkpoint, manifest_dir),
        metrics=records,
        name=m.name,
        checkpoint_hash=plan.checkpoint_hash,
        expected_splits=["validation"] if m.validation_fraction > 0 else [],
    )
    if viewer is not None:  # the viewer reads what was just written; before the marker, like the rest
        from uvd.viewer.build import build_viewer

        report = build_viewer(viewer)
        print(f"[uvd dataset] viewer: {report['index']} ({report['decoded']} sentences decoded, {report['seconds']}s)")
    publish.complete(output)  # last: the folder is now a finished dataset
    summary["work"] = work_done(result)
    write_json(FileSystems.join(plan.cache, "last_run.json"), summary["work"])
    return summary


def viewer_config(m: manifest_lib.Manifest, output: str) -> Any:
    """The manifest's `viewer:` section -> the viewer's Config (None: off), checked before any work."""
    from uvd.viewer.build import from_manifest

    return from_manifest(m.viewer, output)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="uvd dataset", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--manifest",
        default=str(manifest_lib.DEFAULT_MANIFEST),
        help="mixture manifest YAML (default: the embedded sample)",
    )
    parser.add_argument(
        "--output", required=False, default="out/sample", help="folder for shards, README.md card, failures/ and stats/"
    )
    parser.add_argument("--check", action="store_true", help="validate the manifest and stage options, then exit")
    parser.add_argument(
        "--cache",
        default=None,
        help="build cache: work units, tokens, entry snapshots (default: <output>/cache); share one "
        "folder between builds to reuse tokens across them",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="recompute every work unit (default: resume, reusing units an earlier run completed)",
    )
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
    summary = build_dataset(
        m, args.output, options, modules, cache_dir=args.cache, mode="fresh" if args.fresh else "resume", viewer=viewer
    )
    print_summary("uvd dataset", args.output, summary)
    return 0


def print_summary(prog: str, output: str, summary: dict) -> None:
    w = summary["work"]
    print(
        f"[{prog}] work units: {w['units reused']:,} reused, {w['units computed']:,} computed; "
        f"tokens: {w['tokens cached']:,} from the cache, {w['tokens encoded']:,} encoded"
    )
    for warning in summary.get("warnings", []):
        print(f"[{prog}] warning: {warning}")
    for split, t in summary["totals"]["by_split"].items():
        print(f"[{prog}] {split}: {t['sentences']:,} sentences, {t['tokens']:,} tokens in {t['shards']} shards")
    print(f"[{prog}] card: {output}/README.md")
