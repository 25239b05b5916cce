"""Tagged outputs with a dead letter: every source stage's rows go through RunSource.

A source stage is a plain function (or a small class with `setup()`) that takes one input element
and yields `(tag, row)` pairs, tag in {IMAGES, SENTENCES, FAILURES}. `RunSource` wraps it in a DoFn
that routes rows to tagged outputs, counts them as Beam metrics, prints a progress line locally, and
turns any exception the function did not handle into a failure row: bad input never crashes a job
and is never dropped silently.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from uvd.core import units as units_lib
from uvd.core.metrics import Progress
from uvd.schema import failure_row

IMAGES = "images"
SENTENCES = "sentences"
FAILURES = "failures"
TAGS = (IMAGES, SENTENCES, FAILURES)


class _RouteDoFn(beam.DoFn):
    def __init__(self, fn: Any, source: str, stage: str, record_id: Callable[[Any], str],
                 units: units_lib.Units | None = None) -> None:
        self.fn = fn
        self.source = source
        self.stage = stage
        self.record_id = record_id
        self.units = units  # work units of `uvd dataset` (uvd.core.units); None: always compute

    def setup(self) -> None:
        if hasattr(self.fn, "setup"):
            self.fn.setup()
        self.progress = Progress(self.stage)
        self.counters = {tag: Metrics.counter(f"uvd.{self.stage}", tag) for tag in TAGS}
        self.inputs = Metrics.counter(f"uvd.{self.stage}", "inputs")
        self.step_units = self.units.for_step(f"{self.stage}.{type(self.fn).__qualname__}") if self.units else None

    def _compute(self, element: Any) -> list[tuple[str, dict]]:
        try:
            return list(self.fn(element))
        except Exception as exc:  # noqa: BLE001 - the dead letter is the point
            detail = f"{type(exc).__name__}: {exc} | {traceback.format_exc(limit=3)[-300:]}"
            return [(FAILURES, failure_row(self.record_id(element), self.source, self.stage,
                                           f"exception_{type(exc).__name__}", detail))]

    def process(self, element: Any) -> Iterable[beam.pvalue.TaggedOutput]:
        self.inputs.inc()
        self.progress.add("in")
        rows = (self.step_units.rows(element, lambda: self._compute(element)) if self.step_units
                else self._compute(element))
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
        self.units = units_lib.current()  # set by `uvd dataset` around the entry's graph construction

    def expand(self, pcoll: beam.PCollection) -> SourceOutputs:
        out = pcoll | "Route" >> beam.ParDo(
            _RouteDoFn(self.fn, self.source, self.stage, self.record_id, self.units)
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
