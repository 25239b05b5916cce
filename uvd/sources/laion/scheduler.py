"""Many rows in flight on one worker, results as they complete, politely per host.

One thread pool runs each row's whole path (fetch -> decode -> resize -> encode); the CPU parts run
in cv2/libjpeg with the GIL released, so one process keeps every core busy without the memory of
a process per core. The loop in the calling (Beam) thread:
- keeps at most `window` rows in flight or waiting, pulled lazily from the input (memory is flat
  in the number of rows);
- yields each row's output rows as soon as its work completes: a slow URL holds only its own row;
- caps concurrent requests per host (`per_host`), and after a 429/503 with Retry-After keeps that
  host's rows waiting until then while other hosts go on; a retry is rescheduled, never slept on
  in a pool thread. Every row's retries stay inside its one total deadline.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from urllib.parse import urlsplit

Rows = list[tuple[str, dict]]


@dataclass
class Task:
    """One input row on its way: attempts so far, its deadline, the last retryable error."""

    row: dict
    host: str | None
    started: float = 0.0
    deadline: float = 0.0
    attempt: int = 0
    last: object = None
    due: float = 0.0


@dataclass(frozen=True)
class Done:
    rows: Rows


@dataclass(frozen=True)
class RetryAt:
    """Try again at `due` (time.monotonic()); `host_wait` also holds the host until then (Retry-After)."""

    due: float
    host_wait: bool = False


Step = Callable[[Task], "Done | RetryAt"]


def host_of(row: dict) -> str | None:
    url = row.get("url")
    if not isinstance(url, str) or not url.lower().startswith(("http:", "https:")):
        return None  # file: and bad rows: no network, no cap
    return urlsplit(url).netloc.lower()


@dataclass
class Scheduler:
    step: Step
    threads: int = 16
    per_host: int = 8
    window: int = 0  # rows in flight + waiting; 0: 4 x threads
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.window = self.window or 4 * self.threads

    def start(self) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="uvd-laion")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def run(self, rows: Iterable[dict], total_timeout_s: float) -> Iterator[Rows]:
        """Each row's output rows, in completion order."""
        self.start()
        source = iter(rows)
        exhausted = False
        ready: deque[Task] = deque()
        later: list[tuple[float, int, Task]] = []  # (due, seq, task)
        running: dict[Future, Task] = {}
        busy: Counter[str | None] = Counter()
        host_free_at: dict[str, float] = {}
        seq = 0
        while True:
            now = time.monotonic()
            while later and later[0][0] <= now:
                ready.append(heapq.heappop(later)[2])
            while not exhausted and len(ready) + len(later) + len(running) < self.window:
                try:
                    row = next(source)
                except StopIteration:
                    exhausted = True
                    break
                ready.append(Task(row, host_of(row), started=now, deadline=now + total_timeout_s))
            held: list[Task] = []
            while ready and len(running) < self.threads:
                task = ready.popleft()
                host = task.host
                if host is not None and (busy[host] >= self.per_host or host_free_at.get(host, 0.0) > now):
                    held.append(task)
                    continue
                busy[host] += 1
                running[self._pool.submit(self.step, task)] = task
            ready.extendleft(reversed(held))
            if not running and not ready and not later and exhausted:
                return
            timeout = None
            if later:
                timeout = max(0.0, later[0][0] - time.monotonic())
            if ready:  # held by a host cap or Retry-After: look again soon
                timeout = min(timeout if timeout is not None else 0.05, 0.05)
            if not running:
                time.sleep(timeout or 0.0)
                continue
            finished, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                busy[task.host] -= 1
                outcome = future.result()  # step() turns every error into rows
                if isinstance(outcome, Done):
                    yield outcome.rows
                else:
                    task.due = outcome.due
                    if outcome.host_wait and task.host is not None:
                        host_free_at[task.host] = max(host_free_at.get(task.host, 0.0), outcome.due)
                    seq += 1
                    heapq.heappush(later, (outcome.due, seq, task))
