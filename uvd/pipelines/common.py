"""Beam plumbing every stage shares: options, tagged outputs with a dead letter, counters, progress.

A source stage is a plain function (or a small class with `setup()`) that takes one input element
and yields `(tag, row)` pairs, tag in {IMAGES, SENTENCES, FAILURES}. `RunSource` wraps it in a DoFn
that routes rows to tagged outputs, counts them as Beam metrics, prints a progress line locally, and
turns any exception the function did not handle into a failure row: bad input never crashes a job
and is never dropped silently.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from uvd.pipelines.runners import prepare_options
from uvd.schema import failure_row

IMAGES = "images"
SENTENCES = "sentences"
FAILURES = "failures"
TAGS = (IMAGES, SENTENCES, FAILURES)

log = logging.getLogger("uvd")

# Local default runner, measured by benchmarks/bench_runner.py on the LAION sample (2 cores):
# in_memory 14.8 s, multi_threading 15.5 s, multi_processing 31.7 s (process start-up and pickling
# dominate small jobs). multi_threading keeps in_memory's speed and overlaps I/O-bound stages.
DEFAULT_LOCAL_FLAGS = {
    "runner": "DirectRunner",
    "direct_running_mode": "multi_threading",
    "direct_num_workers": 2,
}


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """PipelineOptions from the flags a stage did not consume, with the local default runner.

    Any runner flag (--runner, --direct_num_workers, --project, --temp_location...) passes through
    untouched; only when no --runner is given do we choose the local one.
    """
    options = PipelineOptions(beam_args)
    std = options.view_as(StandardOptions)
    if std.runner is None:
        std.runner = DEFAULT_LOCAL_FLAGS["runner"]
        direct = options.view_as(DirectOptions)
        given = " ".join(beam_args)
        if "--direct_running_mode" not in given:
            direct.direct_running_mode = DEFAULT_LOCAL_FLAGS["direct_running_mode"]
        if "--direct_num_workers" not in given:
            direct.direct_num_workers = DEFAULT_LOCAL_FLAGS["direct_num_workers"]
    return prepare_options(options)


def split_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, PipelineOptions]:
    """Parse a stage's own flags; everything else becomes Beam pipeline options."""
    known, beam_args = parser.parse_known_args(argv)
    return known, pipeline_options(beam_args)


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)


class Progress:
    """A throttled progress line on stderr (one per worker process), for people running locally."""

    def __init__(self, stage: str, every_s: float = 5.0) -> None:
        self.stage = stage
        self.every_s = every_s
        self.counts: dict[str, int] = {}
        self.start = time.monotonic()
        self.last = self.start

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self.print(now)

    def print(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        done = self.counts.get("in", 0)
        rate = done / max(now - self.start, 1e-9)
        parts = ", ".join(f"{v} {k}" for k, v in sorted(self.counts.items()))
        print(f"[uvd {self.stage}] {parts} ({rate:.1f} in/s)", file=sys.stderr, flush=True)


class _RouteDoFn(beam.DoFn):
    def __init__(self, fn: Any, source: str, stage: str, record_id: Callable[[Any], str]) -> None:
        self.fn = fn
        self.source = source
        self.stage = stage
        self.record_id = record_id

    def setup(self) -> None:
        if hasattr(self.fn, "setup"):
            self.fn.setup()
        self.progress = Progress(self.stage)
        self.counters = {tag: Metrics.counter(f"uvd.{self.stage}", tag) for tag in TAGS}
        self.inputs = Metrics.counter(f"uvd.{self.stage}", "inputs")

    def process(self, element: Any) -> Iterable[beam.pvalue.TaggedOutput]:
        self.inputs.inc()
        self.progress.add("in")
        rows: list[tuple[str, dict]] = []
        try:
            rows = list(self.fn(element))
        except Exception as exc:  # noqa: BLE001 - the dead letter is the point
            detail = f"{type(exc).__name__}: {exc} | {traceback.format_exc(limit=3)[-300:]}"
            rows = [(FAILURES, failure_row(self.record_id(element), self.source, self.stage,
                                           f"exception_{type(exc).__name__}", detail))]
        # What became of this input record (the dataset card reconciles inputs against these).
        tags = {tag for tag, _ in rows}
        outcome = ("records_with_sentences" if SENTENCES in tags else "records_failures_only" if FAILURES in tags
                   else "records_images_only" if IMAGES in tags else "records_no_output")
        Metrics.counter(f"uvd.{self.stage}", outcome).inc()
        for tag, row in rows:
            if tag not in TAGS:
                raise ValueError(f"{self.stage}: unknown output tag {tag!r}; use one of {TAGS}")
            self.counters[tag].inc()
            self.progress.add(tag)
            if tag == FAILURES:
                Metrics.counter(f"uvd.{self.stage}.{row['status']}", row["reason"]).inc()
            yield beam.pvalue.TaggedOutput(tag, row)

    def teardown(self) -> None:
        if hasattr(self, "progress") and self.progress.counts:
            self.progress.print()
        if hasattr(self.fn, "teardown"):
            self.fn.teardown()


class SumCounts(beam.CombineFn):
    """Sums {key: number} accumulators across workers; a subclass says what one row adds."""

    def create_accumulator(self) -> dict:
        return {}

    def merge_accumulators(self, accs: Iterable[dict]) -> dict:
        out: dict = {}
        for acc in accs:
            for key, value in acc.items():
                out[key] = out.get(key, 0) + value
        return out

    def extract_output(self, acc: dict) -> Any:
        return dict(sorted(acc.items()))


class SourceOutputs(NamedTuple):
    images: beam.PCollection
    sentences: beam.PCollection
    failures: beam.PCollection


class RunSource(beam.PTransform):
    """Apply `fn(element) -> Iterable[(tag, row)]` and split its rows into SourceOutputs."""

    def __init__(self, fn: Any, source: str, stage: str,
                 record_id: Callable[[Any], str] = str, label: str | None = None) -> None:
        super().__init__(label)
        self.fn = fn
        self.source = source
        self.stage = stage
        self.record_id = record_id

    def expand(self, pcoll: beam.PCollection) -> SourceOutputs:
        out = pcoll | "Route" >> beam.ParDo(
            _RouteDoFn(self.fn, self.source, self.stage, self.record_id)
        ).with_outputs(*TAGS)
        return SourceOutputs(out[IMAGES], out[SENTENCES], out[FAILURES])


def merge_outputs(outputs: list[SourceOutputs], label: str = "Merge") -> SourceOutputs:
    """Flatten several sources' outputs into one SourceOutputs."""
    if not outputs:
        raise ValueError("merge_outputs needs at least one SourceOutputs")
    pipeline = outputs[0].images.pipeline
    return SourceOutputs(*[
        tuple(getattr(o, name) for o in outputs) | f"{label}{name.title()}" >> beam.Flatten(pipeline=pipeline)
        for name in SourceOutputs._fields
    ])
