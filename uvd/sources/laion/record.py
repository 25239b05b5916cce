"""One LAION row -> tagged output rows: filter, fetch, decode, resize/crop, image + sentence rows.

Split in two so the Beam stage can fetch many URLs concurrently and decode on its own:
`fetch_row` (I/O; errors become values in a Fetched) and `fetched_rows` (CPU; pure).
`LaionRecord` joins them for one row at a time (tests, debugging a single URL).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

from uvd.core.outputs import FAILURES, IMAGES, SENTENCES
from uvd.schema import failure_row, image_id_for, sentence_id_for, sentence_row
from uvd.sources.laion.downloader import DownloadConfig, Downloader, DownloadError, RetryableError
from uvd.sources.laion.filters import FilterConfig, metadata_rejection, size_rejection
from uvd.transforms.image import DEFAULT_MAX_PIXELS, ImageError, encode_image, to_square_rgb

SOURCE = "laion"
STAGE = "laion"


@dataclass(frozen=True)
class RenderConfig:
    size: int = 256
    mode: str = "crop"
    interpolation: str | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    image_format: str = "jpeg"  # images table encoding: jpeg (lossy, 44 dB at q95) | png (lossless)
    jpeg_quality: int = 95


@dataclass(frozen=True)
class Fetched:
    """A metadata row and its body, or why there is none (reason, detail, status)."""

    row: dict
    data: bytes | None = None
    final_url: str | None = None
    error: tuple[str, str, str] | None = None


def record_id(row: dict) -> str:
    """The URL; for a row without one, its position (`file#row`, set by the reader) so every failure
    row points at exactly one input row (LAION's hash column is not unique and is often missing)."""
    if row.get("url") and isinstance(row["url"], str):
        return row["url"]
    if row.get("_position"):
        return str(row["_position"])
    return f"hash:{row['hash']}" if row.get("hash") is not None else "row:unknown"


def fetch_row(row: dict, downloader: Downloader, filters: FilterConfig) -> Fetched:
    """Metadata rules first (no request for a row we would drop), then the download."""
    early = check_row(row, filters)
    if early is not None:
        return early
    try:
        got = downloader.fetch(row["url"])
    except DownloadError as exc:
        return Fetched(row, error=(exc.reason, exc.detail, exc.status))
    return Fetched(row, data=got.data, final_url=got.url)


def fetched_rows(item: Fetched, render: RenderConfig, filters: FilterConfig) -> Iterator[tuple[str, dict]]:
    """Decode and render one fetched body; every outcome is rows (an image + sentence, or a failure)."""
    rid = record_id(item.row)
    if item.error is not None:
        reason, detail, status = item.error
        yield FAILURES, failure_row(rid, SOURCE, STAGE, reason, detail, status)
        return
    try:
        pixels, decoded = to_square_rgb(
            item.data or b"", render.size, render.mode, render.max_pixels, render.interpolation
        )
    except ImageError as exc:
        yield FAILURES, failure_row(rid, SOURCE, STAGE, exc.reason, exc.detail)
        return
    rejection = size_rejection(decoded.height, decoded.width, filters)
    if rejection:
        yield FAILURES, failure_row(rid, SOURCE, STAGE, *rejection, status="filtered")
        return
    image_id = image_id_for(pixels)
    row = item.row
    provenance = {
        "url": row.get("url"),
        "final_url": item.final_url if item.final_url != row.get("url") else None,
        "width": decoded.width,
        "height": decoded.height,
        "format": decoded.format,
        "laion_hash": row.get("hash"),
        "similarity": row.get("similarity"),
        "text": (row.get("text") or "")[:300] or None,
    }
    yield (
        IMAGES,
        {
            "image_id": image_id,
            "image": encode_image(pixels, render.image_format, render.jpeg_quality),
            "source": SOURCE,
            "provenance": json.dumps({k: v for k, v in provenance.items() if v is not None}, sort_keys=True),
        },
    )
    # One sentence per unique image: the same picture at two URLs is one sentence id (the shard
    # step keeps the first and reports the rest as duplicate_sentence_id).
    yield SENTENCES, sentence_row(sentence_id_for(SOURCE, image_id), SOURCE, "single", [image_id], group=image_id)


def check_row(row: dict, filters: FilterConfig) -> Fetched | None:
    """The failure of a row we never request (no URL, metadata filters), else None."""
    url = row.get("url")
    if not url or not isinstance(url, str):
        return Fetched(row, error=("missing_url", "row has no URL", "failed"))
    rejection = metadata_rejection(row, filters)
    return Fetched(row, error=(*rejection, "filtered")) if rejection else None


class RowStep:
    """The scheduler's step for one row: checks, one download attempt, then decode and render.

    Runs in a pool thread. Returns Done(rows) or RetryAt(when); every error becomes a row.
    """

    def __init__(self, downloader: Downloader, render: RenderConfig, filters: FilterConfig) -> None:
        self.downloader, self.render, self.filters = downloader, render, filters

    def __call__(self, task):  # type: ignore[no-untyped-def] - Task -> Done | RetryAt (scheduler.py)
        from uvd.sources.laion.scheduler import Done, RetryAt

        row = task.row
        try:
            if task.attempt == 0:
                early = check_row(row, self.filters)
                if early is not None:
                    return Done(list(fetched_rows(early, self.render, self.filters)))
            task.attempt += 1
            try:
                data, final = self.downloader.attempt(row["url"], task.deadline)
            except RetryableError as exc:
                delay = self.downloader.retry_delay(task.attempt, exc)
                now = time.monotonic()
                if task.attempt > self.downloader.config.retries or now + delay >= task.deadline:
                    exc = self.downloader.give_up(exc, task.attempt, now - task.started)
                    return Done(
                        list(
                            fetched_rows(
                                Fetched(row, error=(exc.reason, exc.detail, exc.status)), self.render, self.filters
                            )
                        )
                    )
                return RetryAt(now + delay, host_wait=exc.retry_after is not None)
            except DownloadError as exc:
                return Done(
                    list(
                        fetched_rows(
                            Fetched(row, error=(exc.reason, exc.detail, exc.status)), self.render, self.filters
                        )
                    )
                )
            return Done(list(fetched_rows(Fetched(row, data=data, final_url=final), self.render, self.filters)))
        except Exception as exc:  # noqa: BLE001 - a bug on one row must not lose the others
            detail = f"{type(exc).__name__}: {exc}"[:300]
            return Done(
                [(FAILURES, failure_row(record_id(row), SOURCE, STAGE, f"exception_{type(exc).__name__}", detail))]
            )


class LaionRecord:
    """`row -> (tag, row)*` for RunSource: one pooled downloader per worker, set up in setup()."""

    def __init__(self, download: DownloadConfig, render: RenderConfig, filters: FilterConfig) -> None:
        self.download, self.render, self.filters = download, render, filters
        self.downloader: Downloader | None = None

    def setup(self) -> None:
        self.downloader = Downloader(self.download)
        self.downloader.setup()

    def teardown(self) -> None:
        if self.downloader is not None:
            self.downloader.close()

    def __call__(self, row: dict) -> Iterator[tuple[str, dict]]:
        if self.downloader is None:
            self.setup()
        yield from fetched_rows(fetch_row(row, self.downloader, self.filters), self.render, self.filters)
