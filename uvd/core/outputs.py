"""Tagged outputs with a dead letter: every source stage's rows go through RunSource.

A source stage is a plain function (or a small class with `setup()`) that takes one input element
and yields `(tag, row)` pairs, tag in {IMAGES, SENTENCES, FAILURES}. `RunSource` wraps it in a DoFn
that routes rows to tagged outputs, counts them as Beam metrics, prints a progress line locally, and
turns any exception the function did not handle into a failure row: bad input never crashes a job
and is never dropped silently.
"""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from uvd.core import units as units_lib
from uvd.core.metrics import Progress
from uvd.schema import RecordError, failure_row

IMAGES = "images"
SENTENCES = "sentences"
FAILURES = "failures"
TAGS = (IMAGES, SENTENCES, FAILURES)


class _RouteDoFn(beam.DoFn):
    def __init__(
        self,
        fn: Any,
        source: str,
        stage: str,
        record_id: Callable[[Any], str],
        count_records: bool = True,
        total: int | None = None,
        units: units_lib.Units | None = None,
    ) -> None:
        self.fn = fn
        self.source = source
        self.stage = stage
        self.record_id = record_id
        self.count_records = count_records
        self.total = total
        self.units = units  # work units of `uvd dataset` (uvd.core.units); None: always compute

    def setup(self) -> None:
        if hasattr(self.fn, "setup"):
            self.fn.setup()
        self.progress = Progress.shared(self.stage, self.total)
        self.counters = {tag: Metrics.counter(f"uvd.{self.stage}", tag) for tag in TAGS}
        self.inputs = Metrics.counter(f"uvd.{self.stage}", "inputs")
        self.total_set = self.total is None
        self.step_units = self.units.for_step(f"{self.stage}.{type(self.fn).__qualname__}") if self.units else None

    def _compute(self, element: Any) -> list[tuple[str, dict]]:
        try:
            return list(self.fn(element))
        except Exception as exc:  # noqa: BLE001 - the dead letter is the point
            detail = error_detail(exc)
            return [
                (
                    FAILURES,
                    failure_row(
                        self.record_id(element), self.source, self.stage, f"exception_{type(exc).__name__}", detail
                    ),
                )
            ]

    def process(self, element: Any) -> Iterable[beam.pvalue.TaggedOutput]:
        if not self.total_set:  # remote runners: the total beside the counters (Beam metrics)
            Metrics.gauge(f"uvd.{self.stage}", "total").set(self.total)
            self.total_set = True
        if self.count_records:
            self.inputs.inc()
        self.progress.add("in")
        rows = (
            self.step_units.rows(element, lambda: self._compute(element)) if self.step_units else self._compute(element)
        )
        # What became of this input record (the dataset card reconciles inputs against these).
        tags = {tag for tag, _ in rows}
        # Images outrank failures: an annotated image with one skipped task still feeds pair sentences.
        outcome = (
            "records_with_sentences"
            if SENTENCES in tags
            else "records_images_only"
            if IMAGES in tags
            else "records_failures_only"
            if FAILURES in tags
            else "records_no_output"
        )
        if self.count_records:
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
        if hasattr(self, "progress"):
            self.progress.release()
        if hasattr(self.fn, "teardown"):
            self.fn.teardown()


class SourceOutputs(NamedTuple):
    images: beam.PCollection
    sentences: beam.PCollection
    failures: beam.PCollection


class RunSource(beam.PTransform):
    """Apply `fn(element) -> Iterable[(tag, row)]` and split its rows into SourceOutputs.

    `count_records=False` when the elements are parts of input records that an earlier step
    already counted (the video stage's decode tasks: the card's inputs are videos, not tasks).
    """

    def __init__(
        self,
        fn: Any,
        source: str,
        stage: str,
        record_id: Callable[[Any], str] = str,
        label: str | None = None,
        count_records: bool = True,
        total: int | None = None,
    ) -> None:
        super().__init__(label)
        self.fn = fn
        self.source = source
        self.stage = stage
        self.record_id = record_id
        self.count_records = count_records
        self.total = total  # input records, when the stage knows them up front: progress shows % and ETA
        self.units = units_lib.current()  # set by `uvd dataset` around the entry's graph construction

    def expand(self, pcoll: beam.PCollection) -> SourceOutputs:
        out = pcoll | "Route" >> beam.ParDo(
            _RouteDoFn(self.fn, self.source, self.stage, self.record_id, self.count_records, self.total, self.units)
        ).with_outputs(*TAGS)
        return SourceOutputs(out[IMAGES], out[SENTENCES], out[FAILURES])


def merge_outputs(outputs: list[SourceOutputs], label: str = "Merge") -> SourceOutputs:
    """Flatten several sources' outputs into one SourceOutputs."""
    if not outputs:
        raise ValueError("merge_outputs needs at least one SourceOutputs")
    pipeline = outputs[0].images.pipeline
    return SourceOutputs(
        *[
            tuple(getattr(o, name) for o in outputs) | f"{label}{name.title()}" >> beam.Flatten(pipeline=pipeline)
            for name in SourceOutputs._fields
        ]
    )


class DeadLetterDoFn(beam.DoFn):
    """A decode or planning step between RunSource steps: `convert(element)` yields main outputs; a
    RecordError becomes a failure row with its reason and status, any other exception an
    `exception_<Type>` row, both on the FAILURES tag (`beam.ParDo(fn).with_outputs(FAILURES, main=...)`).

    Counters, so the card reconciles these steps like RunSource ones: `uvd.<stage>_<step>/inputs`,
    `records_passed_on` or `records_failures_only`, and `uvd.<stage>.<status>/<reason>` per failure.
    """

    def __init__(self, source: str, stage: str, step: str, reconcile: bool = True) -> None:
        self.source, self.stage, self.step = source, stage, step
        self.reconcile = reconcile  # False: a step whose input count depends on a cache (tokenize)

    def convert(self, element: Any) -> Iterable[Any]:
        raise NotImplementedError

    def record_id(self, element: Any) -> str:
        return str(element.get("record_id", "?")) if isinstance(element, dict) else str(element)

    def source_of(self, element: Any) -> str:
        return self.source

    def failure(self, element: Any, reason: str, detail: str, status: str = "failed") -> Any:
        """A failure row on the FAILURES tag (also for subclasses that find a problem without raising)."""
        Metrics.counter(f"uvd.{self.stage}.{status}", reason).inc()
        return beam.pvalue.TaggedOutput(
            FAILURES,
            failure_row(self.record_id(element), self.source_of(element), self.stage, reason, detail, status=status),
        )

    def process(self, element: Any) -> Iterable[Any]:
        namespace = f"uvd.{self.stage}_{self.step}"
        if self.reconcile:
            Metrics.counter(namespace, "inputs").inc()
        try:
            outputs = list(self.convert(element))
        except RecordError as exc:
            outputs = [self.failure(element, exc.reason, exc.detail, exc.status)]
        except Exception as exc:  # noqa: BLE001 - the dead letter is the point
            outputs = [self.failure(element, f"exception_{type(exc).__name__}", error_detail(exc))]
        passed = any(not isinstance(o, beam.pvalue.TaggedOutput) for o in outputs)  # main outputs carry on
        if self.reconcile:
            Metrics.counter(namespace, "records_passed_on" if passed else "records_failures_only").inc()
        yield from outputs


def error_detail(exc: BaseException) -> str:
    """An exception as a failure detail: type, message and the innermost frames, no memory addresses
    (`<object at 0x7f..>` differs between runs and would make the failures table non-reproducible)."""
    frames = traceback.extract_tb(exc.__traceback__)[-2:]
    where = " <- ".join(f"{os.path.basename(f.filename)}:{f.lineno} {f.name}" for f in reversed(frames))
    text = f"{type(exc).__name__}: {exc}" + (f" | at {where}" if where else "")
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


class SourceTransform(beam.PTransform):
    """A source stage's transform, PBegin -> SourceOutputs, built from its checked Config."""

    def __init__(self, cfg: Any, label: str | None = None) -> None:
        super().__init__(label)
        self.cfg = cfg
