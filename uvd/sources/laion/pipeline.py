"""`uvd laion`: LAION metadata Parquet -> 256x256 images + single-image sentences + failures.

    ReadMetadata (Parquet, split by row group) -> Spread (reshuffle) -> Batch
      -> Fetch (a thread pool per worker; filters first, errors as values)
      -> Decode (RunSource: decode, orient, RGB, resize/crop, PNG; dead letter) -> images/sentences/failures

Every input row ends as one sentence or one failure row (status failed or filtered, with a reason
such as http_404, timeout, too_large, not_an_image, truncated, too_small, opted_out,
filtered_punsafe), counted as Beam metrics uvd.laion/*.

    uvd laion --input uvd/sample/laion/laion_sample.parquet --output /tmp/uvd/laion
    uvd laion --output /tmp/uvd/one --url https://example.com/cat.jpg     # one URL, no Beam
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import apache_beam as beam

from uvd.config import ConfigError, require
from uvd.core.metrics import Progress
from uvd.core.outputs import FAILURES, IMAGES, RunSource, SourceOutputs, SourceTransform
from uvd.core.stage import SourceStage
from uvd.sources.laion.downloader import DEFAULT_USER_AGENT, DownloadConfig, Downloader
from uvd.sources.laion.filters import FilterConfig
from uvd.sources.laion.reader import ReadLaionMetadata, metadata_columns, metadata_rows
from uvd.sources.laion.record import (
    SOURCE,
    STAGE,
    Fetched,
    LaionRecord,
    RenderConfig,
    fetch_row,
    fetched_rows,
    record_id,
)
from uvd.transforms.image import DEFAULT_MAX_PIXELS, INTERPOLATIONS, MODES

SAMPLE_INPUT = os.path.join(os.path.dirname(__file__), "..", "..", "sample", "laion", "laion_sample.parquet")
SCHEMES = ("http", "https", "file")


@dataclass
class Config:
    """Options of the LAION stage (manifest `options`, or `uvd laion --flag`)."""

    input: str = field(metadata={"flag_default": SAMPLE_INPUT})  # Parquet file or glob (default: the sample)
    # rendering
    size: int = 256
    mode: str = "crop"                          # crop (shorter side + centre crop) | squash
    interpolation: str | None = None            # None: area when shrinking, bicubic when enlarging
    max_pixels: int = DEFAULT_MAX_PIXELS        # decompression-bomb guard on header dimensions
    # filters (status "filtered")
    min_side: int = 128
    max_aspect_ratio: float = 3.0
    max_punsafe: float | None = 0.5
    max_pwatermark: float | None = 0.8
    # downloading
    download_threads: int = 16                  # concurrent requests per worker thread
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 30.0
    retries: int = 2
    backoff_s: float = 0.5
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = DEFAULT_USER_AGENT
    allowed_schemes: list[str] = field(default_factory=lambda: list(SCHEMES))
    honour_opt_out: bool = True
    base_dir: str | None = None                 # relative file: URLs; default: the input's folder

    def validate(self) -> None:
        require(bool(self.input), "input", "give the LAION metadata Parquet path or glob")
        require(self.size > 0, "size", f"must be > 0, got {self.size}")
        require(self.mode in MODES, "mode", f"must be one of {MODES}, got {self.mode!r}")
        require(self.interpolation is None or self.interpolation in INTERPOLATIONS, "interpolation",
                f"must be one of {sorted(INTERPOLATIONS)} or null, got {self.interpolation!r}")
        require(self.max_pixels > 0, "max_pixels", "must be > 0")
        require(self.min_side >= 1, "min_side", "must be >= 1")
        require(self.max_aspect_ratio >= 1.0, "max_aspect_ratio", "must be >= 1 (long side / short side)")
        for name in ("max_punsafe", "max_pwatermark"):
            value = getattr(self, name)
            require(value is None or 0.0 <= value <= 1.0, name, f"must be a probability in [0, 1] or null, got {value}")
        require(self.download_threads >= 1, "download_threads", "must be >= 1")
        for name in ("connect_timeout_s", "read_timeout_s", "total_timeout_s"):
            require(getattr(self, name) > 0, name, "must be > 0 seconds")
        require(self.retries >= 0, "retries", "must be >= 0")
        require(self.backoff_s >= 0, "backoff_s", "must be >= 0")
        require(self.max_bytes > 0, "max_bytes", "must be > 0")
        require(self.max_redirects >= 0, "max_redirects", "must be >= 0")
        bad = sorted(set(self.allowed_schemes) - set(SCHEMES))
        require(not bad, "allowed_schemes", f"unsupported {bad}; choose from {SCHEMES}")

    def download(self) -> DownloadConfig:
        return DownloadConfig(
            connect_timeout_s=self.connect_timeout_s, read_timeout_s=self.read_timeout_s,
            total_timeout_s=self.total_timeout_s, retries=self.retries, backoff_s=self.backoff_s,
            max_bytes=self.max_bytes, max_redirects=self.max_redirects, user_agent=self.user_agent,
            allowed_schemes=tuple(self.allowed_schemes), honour_opt_out=self.honour_opt_out,
            base_dir=self.base_dir or _input_folder(self.input), pool_size=self.download_threads,
        )

    def render(self) -> RenderConfig:
        return RenderConfig(self.size, self.mode, self.interpolation, self.max_pixels)

    def filters(self) -> FilterConfig:
        return FilterConfig(self.min_side, self.max_aspect_ratio, self.max_punsafe, self.max_pwatermark)


def _input_folder(pattern: str) -> str:
    """The folder of the metadata file(s): where relative file: URLs in the sample point from."""
    if "://" in pattern:
        return pattern.rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(pattern))


class _FetchBatch(beam.DoFn):
    """Fetch a batch of rows with a thread pool: downloads wait on the network, not the CPU."""

    def __init__(self, download: DownloadConfig, filters: FilterConfig, threads: int, total: int | None = None) -> None:
        self.download, self.filters, self.threads, self.total = download, filters, threads, total

    def setup(self) -> None:
        self.downloader = Downloader(self.download)
        self.downloader.setup()
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="uvd-fetch")
        # the download phase's own progress line and counters (uvd.laion_download/fetched, .../errors)
        self.progress = Progress.shared(f"{STAGE} download", self.total, key="fetched")
        self.fetched = beam.metrics.Metrics.counter(f"uvd.{STAGE}_download", "fetched")
        self.errors = beam.metrics.Metrics.counter(f"uvd.{STAGE}_download", "errors")

    def process(self, batch: list[dict]) -> Iterator[Fetched]:
        for item in self.pool.map(self._fetch_one, batch):
            self.fetched.inc()
            self.progress.add("fetched")
            if item.error is not None:
                self.errors.inc()
                self.progress.add("errors")
            yield item

    def _fetch_one(self, row: dict) -> Fetched:
        try:
            return fetch_row(row, self.downloader, self.filters)
        except Exception as exc:  # noqa: BLE001 - a bug on one URL must not lose the batch
            return Fetched(row, error=(f"exception_{type(exc).__name__}", str(exc)[:300], "failed"))

    def teardown(self) -> None:
        if hasattr(self, "progress"):
            self.progress.release()
        if hasattr(self, "pool"):
            self.pool.shutdown(wait=False, cancel_futures=True)
        if hasattr(self, "downloader"):
            self.downloader.close()


class _Decode:
    """RunSource's per-element function: a Fetched -> image + sentence rows, or a failure row."""

    def __init__(self, render: RenderConfig, filters: FilterConfig) -> None:
        self.render, self.filters = render, filters

    def __call__(self, item: Fetched) -> Iterator[tuple[str, dict]]:
        return fetched_rows(item, self.render, self.filters)


class LaionSource(SourceTransform):
    """PBegin -> SourceOutputs(images, sentences, failures) for one validated Config."""

    def expand(self, pbegin: beam.pvalue.PBegin) -> SourceOutputs:
        cfg = self.cfg
        total = metadata_rows(cfg.input)
        fetched = (
            pbegin
            | "ReadMetadata" >> ReadLaionMetadata(cfg.input)
            | "Spread" >> beam.Reshuffle()
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=4 * cfg.download_threads)
            | "Fetch" >> beam.ParDo(_FetchBatch(cfg.download(), cfg.filters(), cfg.download_threads, total))
        )
        return fetched | "Decode" >> RunSource(
            _Decode(cfg.render(), cfg.filters()), source=SOURCE, stage=STAGE,
            record_id=lambda item: record_id(item.row), total=total)




def _url_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None,
                        help="debug one URL without Beam: print its outcome, write <output>/<image_id>.png")


def _one_url(args: argparse.Namespace, config: Config) -> int | None:
    if not args.url:
        return None
    return 0 if "image_id" in debug_url(config, args.url, args.output) else 1


def debug_url(config: Config, url: str, output: str) -> dict:
    """One URL through the same code as the stage, no Beam: returns (and prints) its outcome row."""
    record = LaionRecord(config.download(), config.render(), config.filters())
    row = {key: None for key in ("text", "width", "height", "similarity", "hash", "punsafe", "pwatermark")}
    outcome: dict = {}
    for tag, out in record({**row, "url": url}):
        if tag == IMAGES:
            os.makedirs(output, exist_ok=True)
            path = os.path.join(output, f"{out['image_id']}.png")
            with open(path, "wb") as f:
                f.write(out["image"])
            outcome = {"image_id": out["image_id"], "png": path, "provenance": out["provenance"]}
        elif tag == FAILURES:
            outcome = {k: out[k] for k in ("status", "reason", "detail")}
    record.teardown()
    print(f"[uvd laion] {url}: {outcome}", file=sys.stderr)
    return outcome


def _check_metadata(cfg: Config) -> None:
    """The metadata is Parquet with a URL column: read from the first file's footer, before any work."""
    try:
        metadata_columns(cfg.input)
    except (OSError, ValueError) as exc:          # pyarrow's ArrowInvalid is a ValueError
        raise ConfigError(f"input: {exc}; give LAION metadata Parquet with a URL (or url) column") from None


STAGE_SPEC = SourceStage("laion", Config, LaionSource, __doc__, add_flags=_url_flag, alone=_one_url,
                         check_inputs=_check_metadata)
source_transform = STAGE_SPEC.source_transform   # `uvd dataset`: the entry's options checked before any work
run = STAGE_SPEC.run                             # `uvd laion --input METADATA.parquet --output OUT [options] [beam flags]`
