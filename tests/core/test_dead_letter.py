"""DeadLetterDoFn: decode/plan steps route RecordErrors and crashes to failure rows, counted."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.util import assert_that, equal_to

from uvd.core.outputs import FAILURES, DeadLetterDoFn, error_detail
from uvd.schema import RecordError


class Halve(DeadLetterDoFn):
    def __init__(self) -> None:
        super().__init__("test", "demo", "halve")

    def record_id(self, element: int) -> str:
        return f"n{element}"

    def convert(self, element: int):
        if element < 0:
            raise RecordError("negative", f"{element} < 0", status="skipped")
        if element == 0:
            raise ValueError(f"zero at {object()!r}")
        yield element // 2


def test_outputs_failures_and_counters():
    p = beam.Pipeline()
    out = p | beam.Create([4, -1, 0, 6]) | beam.ParDo(Halve()).with_outputs(FAILURES, main="ok")
    assert_that(out.ok, equal_to([2, 3]), label="ok")
    reasons = out[FAILURES] | beam.Map(lambda r: (r["record_id"], r["status"], r["reason"], r["stage"]))
    assert_that(
        reasons,
        equal_to([("n-1", "skipped", "negative", "demo"), ("n0", "failed", "exception_ValueError", "demo")]),
        label="failures",
    )
    result = p.run()
    result.wait_until_finish()
    counts = {
        (c.key.metric.namespace, c.key.metric.name): c.committed
        for c in result.metrics().query(MetricsFilter())["counters"]
    }
    assert counts[("uvd.demo_halve", "inputs")] == 4
    assert counts[("uvd.demo_halve", "records_passed_on")] == 2
    assert counts[("uvd.demo_halve", "records_failures_only")] == 2
    assert counts[("uvd.demo.skipped", "negative")] == 1


def test_error_detail_has_no_memory_addresses():
    try:
        raise ValueError(f"bad {object()!r}")
    except ValueError as exc:
        detail = error_detail(exc)
    assert detail.startswith("ValueError: bad <object object>") and "0x" not in detail
    assert "test_dead_letter.py" in detail
