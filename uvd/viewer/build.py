"""`uvd view --shards OUT [--output OUT/viewer]`: write the static viewer of a built dataset.

Reads only what the build wrote (shards, failures/, stats/, README.md), decodes the first sentences
of each source once into JPEG strips, and writes plain HTML pages that open from file:// or a bucket.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from importlib import resources

from apache_beam.io.filesystems import FileSystems

from uvd.config import ConfigError, config_from_flags, config_parser, from_dict, require
from uvd.viewer import data, site, thumbs

log = logging.getLogger("uvd")
MAX_INPUT_THUMBS = 2000  # failed inputs copied as thumbnails, over all groups


@dataclass
class Config:
    """Options of `uvd view` (and of a manifest's `viewer:` section, less shards and output)."""

    shards: str  # dataset folder (uvd dataset --output)
    output: str | None = None  # site folder (default: <shards>/viewer)
    per_source: int = 16  # sentences decoded and shown per source (two pages)
    max_images: int = 8  # images decoded per sentence, <= 16 (VQGAN decoding is the slow part on CPU)
    thumb: int = 96  # thumbnail side in pixels
    rows_per_group: int = 200  # failure rows listed per (stage, source, status, reason); counts stay whole
    checkpoint: str | None = None  # VQGAN folder or hub id (default: the one the dataset was built with)
    code_rows: int = 20_000  # sentences read for the code-usage chart
    length_rows: int = 1_000_000  # sentences read for the sentence-lengths chart

    def validate(self) -> None:
        require(bool(self.shards), "shards", "give the dataset folder (uvd dataset --output)")
        for name in ("per_source", "max_images", "thumb", "code_rows", "length_rows"):
            require(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        require(self.max_images <= 16, "max_images", "a sentence has at most 16 images")
        require(self.rows_per_group >= 0, "rows_per_group", "must be >= 0")

    @property
    def site(self) -> str:
        return self.output or FileSystems.join(self.shards.rstrip("/"), "viewer")


def from_manifest(section: dict | bool | None, output: str) -> Config | None:
    """A manifest's `viewer:` section -> the Config for `<output>/viewer`, or None when it is off.
    Checked before the pipeline runs, so a typo fails fast."""
    if section is None or section is False:
        return None
    options = {} if section is True else dict(section)
    for key in ("shards", "output"):
        if key in options:
            raise ConfigError(f"viewer.{key}: set by the dataset; the viewer goes to <output>/viewer")
    return from_dict(Config, {**options, "shards": output}, where="viewer")


def _write(path: str, text: str) -> None:
    with FileSystems.create(path) as f:
        f.write(text.encode("utf-8"))


def _checkpoint(cfg: Config, ds: data.Dataset) -> str | None:
    """The VQGAN to decode with, or None (and a note in ds.missing) when the recorded one is not here."""
    from uvd.tokenize import DEFAULT_CHECKPOINT

    if cfg.checkpoint:
        return cfg.checkpoint
    recorded = (ds.summary or {}).get("tokenizer_checkpoint")
    if not recorded or recorded == "default" or recorded.startswith("default ("):  # the card's name for it
        return DEFAULT_CHECKPOINT
    looks_local = recorded.startswith(("/", ".")) or os.sep in recorded.strip("/").split("/", 1)[-1]
    if looks_local and not os.path.exists(recorded) and "://" not in recorded:
        ds.missing.append(
            f"tokenizer checkpoint {recorded}: not on this machine, so no sentence is decoded (pass --checkpoint)"
        )
        return None
    return recorded


def _strips(
    cfg: Config,
    ds: data.Dataset,
    samples: dict[str, list[dict]],
    decoder: thumbs.Decoder | None,
    checkpoint: str | None,
) -> tuple[dict[str, list[dict]], int]:
    """Decode (or find) every sample's strip; -> per source the rows the page lists, and the decode count."""
    names: dict[str, str] = {}
    decoded = 0
    if checkpoint is not None or decoder is not None:
        decode = decoder or thumbs.vqgan_decoder(str(checkpoint))
        try:
            for rows in samples.values():
                got, n = thumbs.write_strips(
                    rows, FileSystems.join(cfg.site, "strips"), decode, str(checkpoint), cfg.max_images, cfg.thumb
                )
                names.update(got)
                decoded += n
        except Exception as exc:  # noqa: BLE001 - a viewer without pictures still shows the numbers
            log.warning("uvd view: decoding failed (%s); source pages list sentences without pictures", exc)
            ds.missing.append(f"decoded pictures: decoding failed ({type(exc).__name__}: {exc})")
    listed = {
        source: [
            {
                "sentence_id": r["sentence_id"],
                "kind": r["kind"],
                "split": r["split"],
                "num_images": r["num_images"],
                "shown": min(r["num_images"], cfg.max_images),
                "strip": names.get(r["sentence_id"]),
            }
            for r in rows
        ]
        for source, rows in samples.items()
    }
    return listed, decoded


def _failure_inputs(cfg: Config, ds: data.Dataset, groups: list[dict]) -> int:
    """Attach each listed failure row's input image (a thumbnail copy, or a remote URL); -> thumbnails."""
    bases = data.input_bases(ds)
    folder = FileSystems.join(cfg.site, "inputs")
    made = 0
    for g in groups:
        for row in g["rows"]:
            found = data.resolve_input(row["record_id"], bases)
            if found is None:
                continue
            if found.startswith(("http://", "https://")):
                row.update(input="remote", input_url=found, input_full=found)
            elif made < MAX_INPUT_THUMBS:
                name = thumbs.input_thumbnail(found, folder)
                if name:
                    row["input"] = name
                    made += 1
    return made


def build_viewer(cfg: Config, decoder: thumbs.Decoder | None = None) -> dict:
    """Write the site under cfg.site; returns what it did (pages, decoded sentences, seconds).
    `decoder` replaces the VQGAN (tests); by default it is the checkpoint the dataset was built with."""
    cfg.validate()
    start = time.monotonic()
    ds = data.open_dataset(cfg.shards)
    if not ds.shards and not ds.failure_files and ds.summary is None and ds.card is None:
        raise FileNotFoundError(
            f"--shards: {cfg.shards!r} holds no shards, failures/, stats/ or README.md; "
            "run `uvd dataset --output` there first"
        )
    name = (ds.summary or {}).get("name") or os.path.basename(ds.root.rstrip("/")) or "uvd dataset"
    by_source = data.per_source_totals(data.source_split_rows(ds))
    samples = data.sample_sentences(ds, cfg.per_source, set(by_source) or None) if ds.shards else {}
    sources = sorted(set(by_source) | set(samples))
    pages = site.source_pages(sources)
    listed, decoded = _strips(cfg, ds, samples, decoder, _checkpoint(cfg, ds) if samples else None)
    lengths, length_rows = data.sentence_lengths(ds, cfg.length_rows)
    usage = data.code_usage(ds, cfg.code_rows) if ds.shards else None
    groups = data.failure_groups(ds, cfg.rows_per_group)
    input_thumbs = _failure_inputs(cfg, ds, groups)
    counts = {s: sum(c["sentences"] for c in by_source.get(s, {}).values()) for s in sources}
    previews = {s: [r["strip"] for r in rows[:4] if r["strip"]] for s, rows in listed.items()}

    for asset in ("viewer.css", "viewer.js"):
        _write(FileSystems.join(cfg.site, asset), resources.files("uvd.viewer").joinpath("static", asset).read_text())
    _write(
        FileSystems.join(cfg.site, "index.html"),
        site.overview(
            name,
            by_source,
            lengths,
            length_rows,
            usage,
            sum(g["count"] for g in groups),
            len(ds.shards),
            ds.missing,
            ds.card,
            pages,
            previews,
        ),
    )
    for source, page_file in pages.items():
        _write(
            FileSystems.join(cfg.site, page_file),
            site.source_page(
                name, source, by_source.get(source, {}), listed.get(source, []), pages, counts, cfg.max_images
            ),
        )
    table_note = "Full table: failures/part-*.parquet beside the shards." if ds.failure_files else ""
    _write(
        FileSystems.join(cfg.site, "failures.html"),
        site.failures_page(
            name, groups, data.facet_values(groups), cfg.rows_per_group, table_note, not ds.failure_files
        ),
    )
    for i, g in enumerate(groups):
        if g["rows"]:
            _write(FileSystems.join(cfg.site, "failures", f"g{i}.js"), site.group_script(i, g["rows"]))
    return {
        "site": cfg.site,
        "index": FileSystems.join(cfg.site, "index.html"),
        "sources": len(pages),
        "sentences_shown": sum(len(v) for v in listed.values()),
        "decoded": decoded,
        "failure_rows": sum(g["count"] for g in groups),
        "input_thumbnails": input_thumbs,
        "missing": list(ds.missing),
        "seconds": round(time.monotonic() - start, 1),
    }


def run(argv: list[str] | None = None) -> int:
    args = config_parser("uvd view", (__doc__ or "").splitlines()[0], Config).parse_args(argv)
    try:
        cfg = config_from_flags(Config, args, where="uvd view")
        report = build_viewer(cfg)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"uvd view: {exc}", file=sys.stderr)
        return 2
    print(
        f"[uvd view] {report['sources']} source pages, {report['sentences_shown']} sentences "
        f"({report['decoded']} decoded now), {report['failure_rows']:,} failure rows in {report['seconds']}s "
        f"-> {report['index']}"
    )
    for line in report["missing"]:
        print(f"[uvd view] missing: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run())
