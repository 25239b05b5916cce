"""Counters and progress every stage shares: a throttled local progress line, summed count dicts."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any

import apache_beam as beam


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


def stage_summary(result: Any, stage: str) -> str:
    """One closing line from a stage's Beam counters: inputs -> sentences + failures by reason."""
    from apache_beam.metrics.metric import MetricsFilter

    counts: dict[tuple[str, str], int] = {}
    for c in result.metrics().query(MetricsFilter())["counters"]:
        ns = c.key.metric.namespace
        if ns == f"uvd.{stage}" or ns.startswith(f"uvd.{stage}."):
            key = (ns, c.key.metric.name)
            counts[key] = counts.get(key, 0) + (c.committed if c.committed is not None else c.attempted or 0)
    main = {name: n for (ns, name), n in counts.items() if ns == f"uvd.{stage}"}
    reasons = sorted(((n, f"{ns.rsplit('.', 1)[1]}/{name}") for (ns, name), n in counts.items()
                      if ns != f"uvd.{stage}"), reverse=True)
    detail = ", ".join(f"{name} {n}" for n, name in reasons)
    return (f"{main.get('inputs', 0)} inputs -> {main.get('sentences', 0)} sentences, "
            f"{main.get('failures', 0)} failures" + (f" ({detail})" if detail else ""))
