"""`uvd laion`: LAION metadata Parquet -> 256x256 images + single-image sentences + failures.

    ReadMetadata (Parquet footers -> row-range chunks) -> Spread (reshuffle)
      -> Process (per chunk: rows read lazily; a thread pool per worker runs each row's fetch ->
         decode -> orient -> resize/crop -> encode, results streamed as they complete, per-host
         caps and Retry-After scheduling: scheduler.py)
      -> Route (RunSource: tagged outputs, counters, dead letter) -> images/sentences/failures

Every input row ends as one sentence or one failure row (status failed or filtered, with a reason
such as http_404, timeout, too_large, not_an_image, truncated, too_small, opted_out,
filtered_punsafe), counted as Beam metrics uvd.laion/*.

    uvd laion --input uvd/sample/laion/laion_sample.parquet --output /tmp/uvd/laion
    uvd laion --output /tmp/uvd/one --url https://example.com/cat.jpg     # one URL, no Beam
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import apache_beam as beam

from uvd.config import ConfigError, require
from uvd.core.metrics import Progress
from uvd.core.outputs import FAILURES, IMAGES, RunSource, SourceOutputs, SourceTransform
from uvd.core.stage import SourceStage
from uvd.schema import failure_row
from uvd.sources.laion.downloader import DEFAULT_USER_AGENT, DownloadConfig, Downloader
from uvd.sources.laion.filters import FilterConfig
from uvd.sources.laion.reader import Chunk, ReadLaionMetadata, metadata_columns, metadata_rows, read_chunk
from uvd.sources.laion.record import SOURCE, STAGE, LaionRecord, RenderConfig, RowStep
from uvd.sources.laion.scheduler import Scheduler
from uvd.transforms.image import DEFAULT_MAX_PIXELS, IMAGE_FORMATS, INTERPOLATIONS, MODES

SAMPLE_INPUT = os.path.join(os.path.dirname(__file__), "..", "..", "sample", "laion", "laion_sample.parquet")
SCHEMES = ("http", "https", "file")


@dataclass
class Config:
    """Options of the LAION stage (manifest `options`, or `uvd laion --flag`)."""

    input: str = field(metadata={"flag_default": SAMPLE_INPUT})  # Parquet file or glob (default: the sample)
    # rendering
    size: int = 256
    mode: str = "crop"  # crop (shorter side + centre crop) | squash
    interpolation: str | None = None  # None: area when shrinking, bicubic when enlarging
    max_pixels: int = DEFAULT_MAX_PIXELS  # decompression-bomb guard on header dimensions
    image_format: str = "jpeg"  # images table: jpeg (q95: 44 dB, 9x cheaper than png) | png (lossless)
    jpeg_quality: int = 95  # with image_format jpeg (docs/scaling.md has its PSNR)
    # filters (status "filtered")
    min_side: int = 128
    max_aspect_ratio: float = 3.0
    max_punsafe: float | None = 0.5
    max_pwatermark: float | None = 0.8
    # downloading
    download_threads: int = 16  # rows in flight per worker (fetch + decode threads)
    max_per_host: int = 8  # concurrent requests to one host
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 30.0  # one deadline per URL: all attempts, waits and body
    retries: int = 2
    backoff_s: float = 0.5
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = DEFAULT_USER_AGENT
    allowed_schemes: list[str] = field(default_factory=lambda: ["http", "https"])  # file: is opt-in
    allow_private_addresses: bool = False  # allow loopback/private/link-local hosts (local test servers)
    allowed_networks: list[str] = field(default_factory=list)  # CIDRs allowed although private
    honour_opt_out: bool = True
    honour_noindex: bool = False  # also skip X-Robots-Tag noindex / noimageindex
    check_robots_txt: bool = False  # obey robots.txt, fetched once per host
    chunk_rows: int = 1000  # metadata rows per work unit
    base_dir: str | None = None  # relative file: URLs; default: the input's folder

    def validate(self) -> None:
        require(bool(self.input), "input", "give the LAION metadata Parquet path or glob")
        require(self.size > 0, "size", f"must be > 0, got {self.size}")
        require(self.mode in MODES, "mode", f"must be one of {MODES}, got {self.mode!r}")
        require(
            self.interpolation is None or self.interpolation in INTERPOLATIONS,
            "interpolation",
            f"must be one of {sorted(INTERPOLATIONS)} or null, got {self.interpolation!r}",
        )
        require(self.max_pixels > 0, "max_pixels", "must be > 0")
        require(self.min_side >= 1, "min_side", "must be >= 1")
        require(self.max_aspect_ratio >= 1.0, "max_aspect_ratio", "must be >= 1 (long side / short side)")
        for name in ("max_punsafe", "max_pwatermark"):
            value = getattr(self, name)
            require(value is None or 0.0 <= value <= 1.0, name, f"must be a probability in [0, 1] or null, got {value}")
        require(self.download_threads >= 1, "download_threads", "must be >= 1")
        require(self.max_per_host >= 1, "max_per_host", "must be >= 1")
        require(self.chunk_rows >= 1, "chunk_rows", "must be >= 1")
        require(self.image_format in IMAGE_FORMATS, "image_format", f"must be one of {IMAGE_FORMATS}")
        require(1 <= self.jpeg_quality <= 100, "jpeg_quality", f"must be in 1..100, got {self.jpeg_quality}")
        for net in self.allowed_networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                require(False, "allowed_networks", f"{net!r} is not a CIDR such as 10.1.0.0/16")
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
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s,
            total_timeout_s=self.total_timeout_s,
            retries=self.retries,
            backoff_s=self.backoff_s,
            max_bytes=self.max_bytes,
            max_redirects=self.max_redirects,
            user_agent=self.user_agent,
            allowed_schemes=tuple(self.allowed_schemes),
            honour_opt_out=self.honour_opt_out,
            honour_noindex=self.honour_noindex,
            check_robots_txt=self.check_robots_txt,
            allow_private_addresses=self.allow_private_addresses,
            allowed_networks=tuple(self.allowed_networks),
            base_dir=self.base_dir or _input_folder(self.input),
            pool_size=self.download_threads,
        )

    def render(self) -> RenderConfig:
        return RenderConfig(
            self.size, self.mode, self.interpolation, self.max_pixels, self.image_format, self.jpeg_quality
        )

    def filters(self) -> FilterConfig:
        return FilterConfig(self.min_side, self.max_aspect_ratio, self.max_punsafe, self.max_pwatermark)


def _input_folder(pattern: str) -> str:
    """The folder of the metadata file(s): where relative file: URLs in the sample point from."""
    if "://" in pattern:
        return pattern.rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(pattern))


class _ProcessChunks(beam.DoFn):
    """A chunk of metadata rows -> each row's output rows, as they complete (scheduler.py)."""

    def __init__(self, config: Config, columns: dict[str, str], total: int | None = None) -> None:
        self.config, self.columns, self.total = config, columns, total

    def setup(self) -> None:
        import cv2

        cv2.setNumThreads(1)  # parallelism comes from the row threads; nested pools only contend
        cfg = self.config
        self.downloader = Downloader(cfg.download())
        self.downloader.setup()
        step = RowStep(self.downloader, cfg.render(), cfg.filters())
        self.scheduler = Scheduler(step, threads=cfg.download_threads, per_host=cfg.max_per_host)
        # the download phase's own progress line and counters (uvd.laion_download/fetched, .../errors)
        self.progress = Progress.shared(f"{STAGE} download", self.total, key="fetched")
        self.fetched = beam.metrics.Metrics.counter(f"uvd.{STAGE}_download", "fetched")
        self.errors = beam.metrics.Metrics.counter(f"uvd.{STAGE}_download", "errors")

    def process(self, chunk: Chunk) -> Iterator[list]:
        try:
            for outcome in self.scheduler.run(read_chunk(chunk, self.columns), self.config.total_timeout_s):
                self.fetched.inc()
                self.progress.add("fetched")
                if not any(tag == IMAGES for tag, _ in outcome):
                    self.errors.inc()
                    self.progress.add("errors")
                yield outcome
        except Exception as exc:  # noqa: BLE001 - unreadable metadata is a failure row, not a crash
            rid = f"{os.path.basename(chunk.path)}#rg{chunk.row_group}:{chunk.start}-{chunk.stop}"
            detail = f"{type(exc).__name__}: {exc}"[:300]
            yield [(FAILURES, failure_row(rid, SOURCE, STAGE, "unreadable_metadata", detail))]

    def teardown(self) -> None:
        if hasattr(self, "progress"):
            self.progress.release()
        if hasattr(self, "scheduler"):
            self.scheduler.close()
        if hasattr(self, "downloader"):
            self.downloader.close()


def _rows(outcome: list) -> list:
    return outcome


def _outcome_id(outcome: list) -> str:
    return next((row.get("record_id", "") for _, row in outcome if "record_id" in row), "row")


class LaionSource(SourceTransform):
    """PBegin -> SourceOutputs(images, sentences, failures) for one validated Config."""

    def expand(self, pbegin: beam.pvalue.PBegin) -> SourceOutputs:
        cfg = self.cfg
        columns = metadata_columns(cfg.input)  # checked before any work (STAGE_SPEC.check_inputs)
        total = metadata_rows(cfg.input)
        outcomes = (
            pbegin
            | "ReadMetadata" >> ReadLaionMetadata(cfg.input, cfg.chunk_rows)
            | "Process" >> beam.ParDo(_ProcessChunks(cfg, columns, total))
        )
        return outcomes | "Route" >> RunSource(_rows, source=SOURCE, stage=STAGE, record_id=_outcome_id, total=total)


# --- `uvd laion` -----------------------------------------------------------------------------------
def debug_url(config: Config, url: str, output: str) -> dict:
    """One URL through the same code as the stage, no Beam: returns (and prints) its outcome row."""
    record = LaionRecord(config.download(), config.render(), config.filters())
    row = {key: None for key in ("text", "width", "height", "similarity", "hash", "punsafe", "pwatermark")}
    outcome: dict = {}
    for tag, out in record({**row, "url": url}):
        if tag == IMAGES:
            os.makedirs(output, exist_ok=True)
            ext = "jpg" if config.image_format == "jpeg" else "png"
            path = os.path.join(output, f"{out['image_id']}.{ext}")
            with open(path, "wb") as f:
                f.write(out["image"])
            outcome = {"image_id": out["image_id"], "png": path, "provenance": out["provenance"]}
        elif tag == FAILURES:
            outcome = {k: out[k] for k in ("status", "reason", "detail")}
    record.teardown()
    print(f"[uvd laion] {url}: {outcome}", file=sys.stderr)
    return outcome


def _url_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", default=None, help="debug one URL without Beam: print its outcome, write <output>/<image_id>.jpg"
    )


def _one_url(args: argparse.Namespace, config: Config) -> int | None:
    if not args.url:
        return None
    return 0 if "image_id" in debug_url(config, args.url, args.output) else 1


def _check_metadata(cfg: Config) -> None:
    """The metadata is Parquet with a URL column: read from the first file's footer, before any work."""
    try:
        metadata_columns(cfg.input)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise ConfigError(f"input: {exc}; give LAION metadata Parquet with a URL (or url) column") from None


# On the local runner, one in-memory worker unless told otherwise: the stage's own thread pool already
# keeps every core busy (the CPU work runs with the GIL released), and a second runner worker only adds
# a copy of every buffered table (peak RSS 640 vs 920 MB at 4000 URLs).
LOCAL_FLAGS = ("--direct_running_mode=in_memory", "--direct_num_workers=1")

STAGE_SPEC = SourceStage(
    "laion",
    Config,
    LaionSource,
    __doc__,
    add_flags=_url_flag,
    alone=_one_url,
    check_inputs=_check_metadata,
    local_flags=LOCAL_FLAGS,
)
source_transform = STAGE_SPEC.source_transform  # `uvd dataset`: the entry's options checked before any work
run = STAGE_SPEC.run  # `uvd laion --input METADATA.parquet --output OUT [options]`
