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
import dataclasses
import ipaddress
import os
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field

import apache_beam as beam

from uvd.config import from_dict, require
from uvd.core import tables
from uvd.core.options import setup_logging, split_args
from uvd.core.outputs import FAILURES, IMAGES, RunSource, SourceOutputs
from uvd.schema import failure_row
from uvd.sources.laion.downloader import DEFAULT_USER_AGENT, DownloadConfig, Downloader
from uvd.sources.laion.filters import FilterConfig
from uvd.sources.laion.reader import Chunk, ReadLaionMetadata, metadata_columns, read_chunk
from uvd.sources.laion.record import SOURCE, STAGE, LaionRecord, RenderConfig, RowStep
from uvd.sources.laion.scheduler import Scheduler
from uvd.transforms.image import DEFAULT_MAX_PIXELS, IMAGE_FORMATS, INTERPOLATIONS, MODES

SAMPLE_INPUT = os.path.join(os.path.dirname(__file__), "..", "..", "sample", "laion", "laion_sample.parquet")
SCHEMES = ("http", "https", "file")


@dataclass
class Config:
    """Options of the LAION stage (manifest `options`, or `uvd laion --flag`)."""

    input: str                                  # Parquet file or glob (local, gs://, s3://...)
    # rendering
    size: int = 256
    mode: str = "crop"                          # crop (shorter side + centre crop) | squash
    interpolation: str | None = None            # None: area when shrinking, bicubic when enlarging
    max_pixels: int = DEFAULT_MAX_PIXELS        # decompression-bomb guard on header dimensions
    image_format: str = "jpeg"                  # images table: jpeg (q95: 44 dB, 9x cheaper than png) | png (lossless)
    jpeg_quality: int = 95                      # with image_format jpeg (docs/scaling.md has its PSNR)
    # filters (status "filtered")
    min_side: int = 128
    max_aspect_ratio: float = 3.0
    max_punsafe: float | None = 0.5
    max_pwatermark: float | None = 0.8
    # downloading
    download_threads: int = 16                  # rows in flight per worker (fetch + decode threads)
    max_per_host: int = 8                       # concurrent requests to one host
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 30.0               # one deadline per URL: all attempts, waits and body
    retries: int = 2
    backoff_s: float = 0.5
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = DEFAULT_USER_AGENT
    allowed_schemes: list[str] = field(default_factory=lambda: ["http", "https"])  # file: is opt-in
    allow_private_addresses: bool = False       # allow loopback/private/link-local hosts (local test servers)
    allowed_networks: list[str] = field(default_factory=list)  # CIDRs allowed although private
    honour_opt_out: bool = True
    honour_noindex: bool = False                # also skip X-Robots-Tag noindex / noimageindex
    check_robots_txt: bool = False              # obey robots.txt, fetched once per host
    chunk_rows: int = 1000                      # metadata rows per work unit
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
            connect_timeout_s=self.connect_timeout_s, read_timeout_s=self.read_timeout_s,
            total_timeout_s=self.total_timeout_s, retries=self.retries, backoff_s=self.backoff_s,
            max_bytes=self.max_bytes, max_redirects=self.max_redirects, user_agent=self.user_agent,
            allowed_schemes=tuple(self.allowed_schemes), honour_opt_out=self.honour_opt_out,
            honour_noindex=self.honour_noindex, check_robots_txt=self.check_robots_txt,
            allow_private_addresses=self.allow_private_addresses, allowed_networks=tuple(self.allowed_networks),
            base_dir=self.base_dir or _input_folder(self.input), pool_size=self.download_threads,
        )

    def render(self) -> RenderConfig:
        return RenderConfig(self.size, self.mode, self.interpolation, self.max_pixels, self.image_format,
                            self.jpeg_quality)

    def filters(self) -> FilterConfig:
        return FilterConfig(self.min_side, self.max_aspect_ratio, self.max_punsafe, self.max_pwatermark)


def _input_folder(pattern: str) -> str:
    """The folder of the metadata file(s): where relative file: URLs in the sample point from."""
    if "://" in pattern:
        return pattern.rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(pattern))


class _ProcessChunks(beam.DoFn):
    """A chunk of metadata rows -> each row's output rows, as they complete (scheduler.py)."""

    def __init__(self, config: Config, columns: dict[str, str]) -> None:
        self.config, self.columns = config, columns

    def setup(self) -> None:
        import cv2

        cv2.setNumThreads(1)  # parallelism comes from the row threads; nested pools only contend
        cfg = self.config
        self.downloader = Downloader(cfg.download())
        self.downloader.setup()
        step = RowStep(self.downloader, cfg.render(), cfg.filters())
        self.scheduler = Scheduler(step, threads=cfg.download_threads, per_host=cfg.max_per_host)

    def process(self, chunk: Chunk) -> Iterator[list]:
        try:
            yield from self.scheduler.run(read_chunk(chunk, self.columns), self.config.total_timeout_s)
        except Exception as exc:  # noqa: BLE001 - unreadable metadata is a failure row, not a crash
            rid = f"{os.path.basename(chunk.path)}#rg{chunk.row_group}:{chunk.start}-{chunk.stop}"
            detail = f"{type(exc).__name__}: {exc}"[:300]
            yield [(FAILURES, failure_row(rid, SOURCE, STAGE, "unreadable_metadata", detail))]

    def teardown(self) -> None:
        if hasattr(self, "scheduler"):
            self.scheduler.close()
        if hasattr(self, "downloader"):
            self.downloader.close()


def _rows(outcome: list) -> list:
    return outcome


def _outcome_id(outcome: list) -> str:
    return next((row.get("record_id", "") for _, row in outcome if "record_id" in row), "row")


class LaionSource(beam.PTransform):
    """PBegin -> SourceOutputs(images, sentences, failures) for one validated Config."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config

    def expand(self, pbegin: beam.pvalue.PBegin) -> SourceOutputs:
        cfg = self.config
        columns = metadata_columns(cfg.input)  # fails here, before any work, without a URL column
        outcomes = (
            pbegin
            | "ReadMetadata" >> ReadLaionMetadata(cfg.input, cfg.chunk_rows)
            | "Process" >> beam.ParDo(_ProcessChunks(cfg, columns))
        )
        return outcomes | "Route" >> RunSource(_rows, source=SOURCE, stage=STAGE, record_id=_outcome_id)


def source_transform(config: dict) -> beam.PTransform:
    """The manifest hook: `options + input` -> a PTransform applied to the pipeline root."""
    return LaionSource(from_dict(Config, config, where="sources.laion.options"))


def summary(result: beam.runners.runner.PipelineResult) -> str:
    """One line from the stage's Beam counters: inputs -> sentences + failures by reason."""
    from apache_beam.metrics.metric import MetricsFilter

    counts: dict[tuple[str, str], int] = {}
    for c in result.metrics().query(MetricsFilter())["counters"]:
        ns = c.key.metric.namespace
        if ns == f"uvd.{STAGE}" or ns.startswith(f"uvd.{STAGE}."):
            key = (ns, c.key.metric.name)
            counts[key] = counts.get(key, 0) + (c.committed if c.committed is not None else c.attempted or 0)
    main = {name: n for (ns, name), n in counts.items() if ns == f"uvd.{STAGE}"}
    reasons = sorted(((n, f"{ns.rsplit('.', 1)[1]}/{name}") for (ns, name), n in counts.items()
                      if ns != f"uvd.{STAGE}"), reverse=True)
    detail = ", ".join(f"{name} {n}" for n, name in reasons)
    return (f"{main.get('inputs', 0)} rows -> {main.get('sentences', 0)} sentences, "
            f"{main.get('failures', 0)} failures" + (f" ({detail})" if detail else ""))


HELP = {
    "size": "output side in pixels",
    "mode": "crop: shorter side + centre crop; squash: whole image, aspect not kept (official LVM demo)",
    "interpolation": f"one of {sorted(INTERPOLATIONS)}; none: area when shrinking, bicubic when enlarging",
    "max_pixels": "reject images whose header claims more pixels (decompression bombs)",
    "min_side": "filter images whose shorter side is smaller (metadata, then real size)",
    "max_aspect_ratio": "filter images whose long/short side ratio is larger",
    "max_punsafe": "filter rows with LAION punsafe above this; none: no rule",
    "max_pwatermark": "filter rows with LAION pwatermark above this; none: no rule",
    "download_threads": "concurrent downloads per worker",
    "retries": "extra attempts on 5xx, 429 and connection errors",
    "backoff_s": "first retry delay; doubles each attempt (Retry-After honoured, capped)",
    "max_bytes": "largest body accepted (streamed, cut when exceeded)",
    "allowed_schemes": "comma separated subset of http,https,file (file: reads local files: trusted metadata only)",
    "allow_private_addresses": "allow loopback, private and link-local destinations (local test servers; true/false)",
    "allowed_networks": "comma separated CIDRs allowed although private (an internal mirror)",
    "max_per_host": "concurrent requests to one host",
    "honour_noindex": "also skip images served with X-Robots-Tag noindex/noimageindex (true/false)",
    "check_robots_txt": "obey robots.txt, fetched once per host (true/false)",
    "image_format": f"images table encoding, one of {IMAGE_FORMATS}",
    "jpeg_quality": "JPEG quality with image_format jpeg",
    "chunk_rows": "metadata rows per work unit",
    "honour_opt_out": "skip images served with X-Robots-Tag noai/noimageai (true/false)",
    "base_dir": "folder that relative file: URLs are resolved against; default: the input's folder",
}


# --- `uvd laion` -----------------------------------------------------------------------------------
def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One --flag per Config field, typed from its annotation; defaults stay the dataclass's."""
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        if f.name == "input":
            continue
        hint = hints[f.name]
        optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)
        base = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
        if typing.get_origin(base) is list or base is list:
            conv = lambda s: [x.strip() for x in s.split(",") if x.strip()]  # noqa: E731
        elif base is bool:
            conv = lambda s: s.strip().lower() in ("1", "true", "yes", "on")  # noqa: E731
        elif optional:
            conv = (lambda b: lambda s: None if s.lower() in ("none", "null", "") else b(s))(base)
        else:
            conv = base
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        parser.add_argument(f"--{f.name}", type=conv, default=argparse.SUPPRESS,
                            help=f"{HELP.get(f.name, '')} (default {default})".strip())


def local_defaults(argv: list[str] | None) -> list[str]:
    """On the local runner, one in-memory worker unless told otherwise: the stage's own thread pool
    already keeps every core busy (the CPU work runs with the GIL released), and a second runner
    worker only adds a copy of every buffered table (peak RSS 640 vs 920 MB at 4000 URLs)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a.startswith(("--runner", "--direct_running_mode", "--direct_num_workers")) for a in argv):
        return argv
    return [*argv, "--direct_running_mode=in_memory", "--direct_num_workers=1"]


def parse_args(argv: list[str] | None) -> tuple[Config, argparse.Namespace, beam.options.pipeline_options.PipelineOptions]:
    """`uvd laion` flags -> (validated Config, the stage's own args, Beam options for the rest)."""
    parser = argparse.ArgumentParser(prog="uvd laion", description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=SAMPLE_INPUT, help="LAION metadata Parquet file or glob (default: the embedded sample)")
    parser.add_argument("--output", required=True, help="folder for the images/, sentences/ and failures/ tables")
    parser.add_argument("--url", default=None, help="debug one URL without Beam: print its outcome, write <output>/<image_id>.png")
    _add_config_flags(parser)
    args, options = split_args(parser, local_defaults(argv))
    values = {k: v for k, v in vars(args).items() if k not in ("output", "url")}
    return from_dict(Config, values, where="uvd laion"), args, options


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


def run(argv: list[str] | None = None) -> int:
    config, args, options = parse_args(argv)
    output = args.output
    if args.url:
        return 0 if "image_id" in debug_url(config, args.url, output) else 1
    setup_logging()
    p = beam.Pipeline(options=options)
    out = p | "Laion" >> LaionSource(config)
    tables.write_source_tables(out, output)
    result = p.run()
    result.wait_until_finish()
    print(f"[uvd laion] {summary(result)}; tables under {output}", file=sys.stderr)
    return 0

if __name__ == "__main__":
    sys.exit(run())
