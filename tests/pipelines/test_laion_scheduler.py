"""The LAION row scheduler: results as they complete, per-host caps, Retry-After without blocking."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

from tests.http_server import Reply, http_server  # noqa: F401 - the fixture
from uvd.core.outputs import FAILURES, SENTENCES
from uvd.sources.laion.downloader import DownloadConfig, Downloader
from uvd.sources.laion.filters import FilterConfig
from uvd.sources.laion.record import RenderConfig, RowStep
from uvd.sources.laion.scheduler import Done, Scheduler

ROOT = Path(__file__).resolve().parents[2]
JPEG = (ROOT / "uvd" / "sample" / "images" / "chelsea_cat.jpg").read_bytes()


def _step(downloader: Downloader) -> RowStep:
    return RowStep(downloader, RenderConfig(size=64), FilterConfig())


def _row(url: str) -> dict:
    return {"url": url, "width": None, "height": None, "punsafe": None, "pwatermark": None}


def test_a_slow_url_holds_only_its_own_row_and_fails_at_its_deadline(http_server):
    drip = http_server.add("/drip.jpg", Reply(200, b"x" * 40, chunk=1, body_delay_s=0.2))
    fast = [http_server.add(f"/f{i}.jpg", Reply(200, JPEG)) for i in range(6)]
    d = Downloader(
        DownloadConfig(read_timeout_s=0.5, total_timeout_s=1.0, retries=2, backoff_s=0.01, allow_private_addresses=True)
    )
    sched = Scheduler(_step(d), threads=2, per_host=2)
    start, order = time.monotonic(), []
    for rows in sched.run([_row(drip), *map(_row, fast)], total_timeout_s=1.0):
        tag, row = rows[-1]
        order.append((tag, row.get("reason"), time.monotonic() - start))
    sched.close()
    assert [t for t, _, _ in order[:6]] == [SENTENCES] * 6  # the fast rows first, in the meantime
    assert order[-1][:2] == (FAILURES, "timeout") and order[-1][2] < 1.6
    assert order[5][2] < 1.0


def test_per_host_cap_and_other_hosts_keep_going():
    running, peak, lock = Counter(), Counter(), threading.Lock()
    both = []

    def step(task):
        host = task.host
        with lock:
            running[host] += 1
            peak[host] = max(peak[host], running[host])
            both.append(sum(running.values()))
        time.sleep(0.02)
        with lock:
            running[host] -= 1
        return Done([(SENTENCES, {"sentence_id": task.row["url"]})])

    rows = [{"url": f"http://{h}.example/{i}.jpg"} for i in range(12) for h in ("a", "b")]
    sched = Scheduler(step, threads=6, per_host=2)
    out = list(sched.run(rows, total_timeout_s=10))
    sched.close()
    assert len(out) == 24
    assert peak["a.example"] == 2 and peak["b.example"] == 2 and max(both) == 4


def test_retry_after_waits_for_its_host_without_holding_a_thread(http_server):
    busy = http_server.add("/busy.jpg", Reply(429, headers={"Retry-After": "1"}), Reply(200, JPEG))
    others = [http_server.add(f"/o{i}.jpg", Reply(200, JPEG)).replace("127.0.0.1", "localhost") for i in range(4)]
    d = Downloader(DownloadConfig(retries=2, backoff_s=0.01, max_retry_after_s=0.6, allow_private_addresses=True))
    sched = Scheduler(_step(d), threads=1, per_host=1)  # one thread: a sleeping retry would block everyone
    start, done = time.monotonic(), []
    for rows in sched.run([_row(busy), *map(_row, others)], total_timeout_s=5):
        done.append((rows[-1][0], time.monotonic() - start))
    sched.close()
    assert [tag for tag, _ in done] == [SENTENCES] * 5
    assert max(t for _, t in done[:4]) < 0.5  # the other host finished while /busy waited
    assert 0.6 <= done[4][1] < 2.0 and http_server.hits["/busy.jpg"] == 2


def test_rows_are_pulled_lazily_so_memory_is_flat_in_the_row_count():
    pulled = [0]

    def rows():
        for i in range(5000):
            pulled[0] += 1
            yield {"url": None, "_position": f"m#{i}"}

    seen = 0
    sched = Scheduler(lambda task: Done([(FAILURES, {"record_id": task.row["_position"]})]), threads=4, window=16)
    for _ in sched.run(rows(), total_timeout_s=1):
        seen += 1
        assert pulled[0] - seen <= 16
    sched.close()
    assert seen == 5000
