"""Counters and progress every stage shares: a throttled local progress line, summed count dicts.

Progress is for people running locally: one line per running stage (per worker process) with items
done / total, rate and ETA. Every DoFn instance of a stage in one process shares one Progress
(`Progress.shared`), so the DirectRunner's threads print one line, not one each. Remote runners get
the same numbers as Beam counters (RunSource counts uvd.<stage>/inputs and each output tag).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable
from typing import Any, ClassVar, TextIO

import apache_beam as beam


def format_duration(seconds: float) -> str:
    """3725 -> "1h02m", 220 -> "3m40s", 9.4 -> "9s"."""
    s = int(round(max(seconds, 0)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class Progress:
    """A throttled progress line on stderr: `[uvd laion] 120/1,000 in (12%), 4.0/s, ETA 3m40s | ...`."""

    _shared: ClassVar[dict[str, Progress]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        stage: str,
        total: int | None = None,
        every_s: float = 5.0,
        key: str = "in",
        stream: TextIO | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        self.stage = stage
        self.total = total
        self.every_s = every_s
        self.key = key  # the count that `total` is a total of
        self.stream = stream
        self.clock = clock
        self.counts: dict[str, int] = {}
        self.start = clock()
        self.last = self.start
        self.lock = threading.Lock()
        self.users = 0

    @classmethod
    def shared(cls, stage: str, total: int | None = None, every_s: float = 5.0, key: str = "in") -> Progress:
        """The one Progress of `stage` in this process, for a DoFn's setup(); pair with `release` in
        teardown. A later caller's total fills in one that was unknown."""
        with cls._shared_lock:
            p = cls._shared.get(stage)
            if p is None:
                p = cls._shared[stage] = cls(stage, total, every_s, key)
            elif total is not None and p.total is None:
                p.total = total
            p.users += 1
            return p

    def release(self) -> None:
        """One user is done; the last one prints the closing line and forgets the stage (a next pipeline
        run in this process starts from zero)."""
        with self._shared_lock:
            self.users -= 1
            last = self.users <= 0
            if last and self._shared.get(self.stage) is self:
                del self._shared[self.stage]
        if last and self.counts:
            self.print()

    def add(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n
            now = self.clock()
            due = now - self.last >= self.every_s
            if due:
                self.last = now
        if due:
            self.print(now)

    def line(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        with self.lock:
            counts = dict(self.counts)
        done = counts.get(self.key, 0)
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        head = f"{done:,}"
        if self.total:
            head += f"/{self.total:,} {self.key} ({100 * done / self.total:.0f}%)"
        else:
            head += f" {self.key}"
        head += f", {rate:.1f}/s"
        if self.total and 0 < done < self.total and rate > 0:
            head += f", ETA {format_duration((self.total - done) / rate)}"
        elif self.total and done >= self.total:
            head += f", done in {format_duration(elapsed)}"
        rest = ", ".join(f"{v:,} {k}" for k, v in sorted(counts.items()) if k != self.key)
        return f"[uvd {self.stage}] {head}" + (f" | {rest}" if rest else "")

    def print(self, now: float | None = None) -> None:
        print(self.line(now), file=self.stream or sys.stderr, flush=True)


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
