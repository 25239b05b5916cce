"""One LAION row -> tagged output rows: filter, fetch, decode, resize/crop, image + sentence rows.

Split in two so the Beam stage can fetch many URLs concurrently and decode on its own:
`fetch_row` (I/O; errors become values in a Fetched) and `fetched_rows` (CPU; pure).
`LaionRecord` joins them for one row at a time (tests, debugging a single URL).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from uvd.core.outputs import FAILURES, IMAGES, SENTENCES
from uvd.schema import failure_row, image_id_for, sentence_id_for, sentence_row
from uvd.sources.laion.downloader import DownloadConfig, Downloader, DownloadError
from uvd.sources.laion.filters import FilterConfig, metadata_rejection, size_rejection
from uvd.transforms.image import DEFAULT_MAX_PIXELS, ImageError, encode_png, to_square_rgb

SOURCE = "laion"
STAGE = "laion"


@dataclass(frozen=True)
class RenderConfig:
    size: int = 256
    mode: str = "crop"
    interpolation: str | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class Fetched:
    """A metadata row and its body, or why there is none (reason, detail, status)."""

    row: dict
    data: bytes | None = None
    final_url: str | None = None
    error: tuple[str, str, str] | None = None


def record_id(row: dict) -> str:
    """The URL; for a row without one, LAION's hash column so the failure row still points at it."""
    if row.get("url"):
        return str(row["url"])
    return f"hash:{row['hash']}" if row.get("hash") is not None else ""


def fetch_row(row: dict, downloader: Downloader, filters: FilterConfig) -> Fetched:
    """Metadata rules first (no request for a row we would drop), then the download."""
    url = row.get("url")
    if not url or not isinstance(url, str):
        return Fetched(row, error=("missing_url", "row has no URL", "failed"))
    rejection = metadata_rejection(row, filters)
    if rejection:
        return Fetched(row, error=(*rejection, "filtered"))
    try:
        got = downloader.fetch(url)
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
        pixels, decoded = to_square_rgb(item.data or b"", render.size, render.mode, render.max_pixels,
                                        render.interpolation)
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
    yield IMAGES, {
        "image_id": image_id,
        "image": encode_png(pixels),
        "source": SOURCE,
        "provenance": json.dumps({k: v for k, v in provenance.items() if v is not None}, sort_keys=True),
    }
    # One sentence per unique image: the same picture at two URLs is one sentence id (the shard
    # step keeps the first and reports the rest as duplicate_sentence_id).
    yield SENTENCES, sentence_row(sentence_id_for(SOURCE, image_id), SOURCE, "single", [image_id], group=image_id)


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
