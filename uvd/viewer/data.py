"""What the viewer's pages are made of, read from a built dataset folder and nothing else.

A dataset folder (`uvd dataset --output`) holds `<split>-NNNNN-of-NNNNN.parquet` shards, `failures/`
(the dead-letter table), `stats/*.json` (the summaries the card is rendered from) and README.md (the
card). Each reader here returns plain dicts and lists, and tells what it could not find in
`Dataset.missing` instead of raising, so a half-written folder still gets a viewer that says so.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from uvd import schema

SHARD_NAME = re.compile(r"^(?P<split>.+)-(?P<index>\d+)-of-(?P<count>\d+)\.parquet$")
FAILURE_FIELDS = ("stage", "source", "status", "reason")


@dataclass
class Dataset:
    """The parts of a dataset folder the viewer found (paths), and a line for each part it did not."""

    root: str
    shards: list[str] = field(default_factory=list)
    failure_files: list[str] = field(default_factory=list)
    summary: dict | None = None  # stats/dataset.json
    failure_counts: list[dict] | None = None  # stats/failures.json
    card: str | None = None  # README.md text
    missing: list[str] = field(default_factory=list)


def _match(pattern: str) -> list[str]:
    try:
        return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    except Exception:  # noqa: BLE001 - a missing folder matches nothing
        return []


def _read_text(path: str) -> str | None:
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as f:
        return f.read().decode("utf-8")


def split_of(path: str) -> str:
    """`train-00000-of-00004.parquet` -> "train"; a file not named like a shard -> "unknown"."""
    m = SHARD_NAME.match(os.path.basename(path))
    return m.group("split") if m else "unknown"


def open_dataset(root: str) -> Dataset:
    """List what the build wrote under `root`; nothing is read beyond the small JSON and the card."""
    ds = Dataset(root=root.rstrip("/"))
    ds.shards = [p for p in _match(FileSystems.join(ds.root, "*.parquet")) if SHARD_NAME.match(os.path.basename(p))]
    if not ds.shards:
        ds.missing.append("shards: no <split>-NNNNN-of-NNNNN.parquet files (the build did not finish?)")
    ds.failure_files = _match(FileSystems.join(ds.root, "failures", "*.parquet"))
    if not ds.failure_files:
        ds.missing.append("failures/: no failure table (no rows failed, or the build stopped early)")
    text = _read_text(FileSystems.join(ds.root, "stats", "dataset.json"))
    ds.summary = json.loads(text) if text else None
    if ds.summary is None:
        ds.missing.append("stats/dataset.json: no summary (counts below are from the shards themselves)")
    text = _read_text(FileSystems.join(ds.root, "stats", "failures.json"))
    ds.failure_counts = json.loads(text) if text else None
    ds.card = _read_text(FileSystems.join(ds.root, "README.md"))
    if ds.card is None:
        ds.missing.append("README.md: no dataset card")
    return ds


def _batches(path: str, columns: list[str], batch_size: int = 1024) -> Iterator[dict[str, list]]:
    with FileSystems.open(path) as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size, columns=columns):
            yield batch.to_pydict()


# --- counts per source and split ------------------------------------------------------------------
def source_split_rows(ds: Dataset) -> list[dict]:
    """[{source, split, sentences, images, tokens}] from the card's stats, else counted from the shards."""
    if ds.summary and ds.summary.get("totals"):
        return [dict(r) for r in ds.summary["totals"]["by_source"]]
    counts: dict[tuple[str, str], list[int]] = {}
    for path in ds.shards:
        split = split_of(path)
        for batch in _batches(path, ["source", "num_images"]):
            for source, n in zip(batch["source"], batch["num_images"]):
                c = counts.setdefault((source, split), [0, 0])
                c[0] += 1
                c[1] += int(n)
    return [
        {"source": s, "split": sp, "sentences": c[0], "images": c[1], "tokens": c[1] * schema.TOKENS_PER_IMAGE}
        for (s, sp), c in sorted(counts.items())
    ]


def per_source_totals(rows: list[dict]) -> dict[str, dict[str, dict[str, int]]]:
    """source -> split -> {sentences, images, tokens}; sources in name order."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for r in sorted(rows, key=lambda r: (r["source"], r["split"])):
        out.setdefault(r["source"], {})[r["split"]] = {k: int(r[k]) for k in ("sentences", "images", "tokens")}
    return out


# --- sentence lengths and code usage --------------------------------------------------------------
def sentence_lengths(ds: Dataset, max_rows: int = 1_000_000) -> tuple[dict[str, list[int]], int]:
    """source -> count of sentences of 1..16 images (index 0 = 1 image), over the first `max_rows`
    sentences of the shards (the shards are shuffled, so that is a random sample); and the rows read."""
    hist: dict[str, list[int]] = {}
    read = 0
    for path in ds.shards:
        for batch in _batches(path, ["source", "num_images"]):
            for source, n in zip(batch["source"], batch["num_images"]):
                if read >= max_rows:
                    return dict(sorted(hist.items())), read
                h = hist.setdefault(source, [0] * schema.MAX_IMAGES_PER_SENTENCE)
                h[min(max(int(n), 1), schema.MAX_IMAGES_PER_SENTENCE) - 1] += 1
                read += 1
    return dict(sorted(hist.items())), read


def code_usage(ds: Dataset, max_rows: int = 20_000) -> dict:
    """How the VQGAN codebook is used, over the first `max_rows` sentences: counts per code, codes used,
    perplexity (exp of the code entropy; 8192 would be perfectly uniform) and the top codes' share."""
    counts = np.zeros(schema.CODEBOOK_SIZE, dtype=np.int64)
    rows = 0
    for path in ds.shards:
        for batch in _batches(path, ["tokens"], batch_size=256):
            for tokens in batch["tokens"]:
                if rows >= max_rows:
                    break
                ids = np.asarray(tokens, dtype=np.int64)
                counts += np.bincount(ids[ids < schema.CODEBOOK_SIZE], minlength=schema.CODEBOOK_SIZE)
                rows += 1
    return usage_summary(counts, rows)


def usage_summary(counts: np.ndarray, rows: int) -> dict:
    """Counts per code -> the figures the overview shows (pure: unit-tested on made-up counts)."""
    total = int(counts.sum())
    used = int((counts > 0).sum())
    p = counts[counts > 0] / max(total, 1)
    perplexity = float(math.exp(-(p * np.log(p)).sum())) if total else 0.0
    ranked = np.sort(counts)[::-1]
    top = int(ranked[: max(1, len(ranked) // 100)].sum())
    return {
        "rows": rows,
        "tokens": total,
        "codebook": int(len(counts)),
        "used": used,
        "perplexity": round(perplexity, 1),
        "top1pct_share": round(top / total, 4) if total else 0.0,
        "ranked": ranked.tolist(),
    }


# --- sentences to show ----------------------------------------------------------------------------
def sample_sentences(ds: Dataset, per_source: int, sources: set[str] | None = None) -> dict[str, list[dict]]:
    """The first `per_source` sentences of each source in shard order (a random sample: rows are shuffled),
    with their split; reading stops as soon as every source in `sources` has enough."""
    picked: dict[str, list[dict]] = {}
    for path in ds.shards:
        split = split_of(path)
        for batch in _batches(path, ["sentence_id", "source", "kind", "num_images", "tokens"], batch_size=256):
            for i, source in enumerate(batch["source"]):
                rows = picked.setdefault(source, [])
                if len(rows) < per_source:
                    rows.append(
                        {
                            "sentence_id": batch["sentence_id"][i],
                            "source": source,
                            "kind": batch["kind"][i],
                            "num_images": int(batch["num_images"][i]),
                            "split": split,
                            "tokens": np.asarray(batch["tokens"][i], dtype=np.uint16),
                        }
                    )
            if sources is not None and all(len(picked.get(s, [])) >= per_source for s in sources):
                return dict(sorted(picked.items()))
    return dict(sorted(picked.items()))


# --- failures -------------------------------------------------------------------------------------
def failure_groups(ds: Dataset, rows_per_group: int = 200) -> list[dict]:
    """Failure rows grouped by (stage, source, status, reason), largest group first: each group's full
    count and its first `rows_per_group` rows (record_id, detail). A million rows stay a small site."""
    groups: dict[tuple[str, ...], dict] = {}
    for path in ds.failure_files:
        for batch in _batches(path, [*FAILURE_FIELDS, "record_id", "detail"]):
            for i in range(len(batch["record_id"])):
                key = tuple(str(batch[f][i]) for f in FAILURE_FIELDS)
                g = groups.get(key)
                if g is None:
                    g = groups[key] = {**dict(zip(FAILURE_FIELDS, key)), "count": 0, "rows": []}
                g["count"] += 1
                if len(g["rows"]) < rows_per_group:
                    g["rows"].append({"record_id": batch["record_id"][i], "detail": batch["detail"][i] or ""})
    if not groups and ds.failure_counts:  # the table is gone but its counts were kept: show those
        for c in ds.failure_counts:
            key = tuple(str(c[f]) for f in FAILURE_FIELDS)
            groups[key] = {**dict(zip(FAILURE_FIELDS, key)), "count": int(c["count"]), "rows": []}
    return sorted(groups.values(), key=lambda g: (-g["count"], *(g[f] for f in FAILURE_FIELDS)))


def facet_values(groups: list[dict]) -> dict[str, list[tuple[str, int]]]:
    """For each filter field: its values with their row counts, most rows first."""
    out: dict[str, list[tuple[str, int]]] = {}
    for f in FAILURE_FIELDS:
        c: Counter[str] = Counter()
        for g in groups:
            c[g[f]] += g["count"]
        out[f] = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))
    return out


def input_bases(ds: Dataset) -> list[str]:
    """Folders that relative `file:` record ids may be relative to: each source input of the manifest the
    build recorded (stats/dataset.json provenance), when that manifest is still readable here."""
    prov = (ds.summary or {}).get("provenance") or {}
    path = prov.get("manifest")
    if not path or not os.path.isfile(path):
        return []
    import yaml

    try:
        with open(path) as f:
            sources = (yaml.safe_load(f) or {}).get("sources") or {}
    except (OSError, yaml.YAMLError):
        return []
    base = os.path.dirname(os.path.abspath(path))
    out = []
    for entry in sources.values():
        raw = entry.get("input") if isinstance(entry, dict) else None
        if not raw or "://" in raw:
            continue
        full = os.path.normpath(os.path.join(base, raw))
        out.append(full if os.path.isdir(full) else os.path.dirname(full))
    return sorted(set(out))


def resolve_input(record_id: str, bases: list[str]) -> str | None:
    """A failure's record id -> the input image it names, when one exists: a local file (absolute, or a
    `file:` URL relative to one of `bases`) or an http(s) URL (linked, never fetched here)."""
    rid = record_id.split("#", 1)[0]
    if rid.startswith(("http://", "https://")):
        return rid
    if rid.startswith("file://"):
        rid = rid[len("file://") :]
    elif rid.startswith("file:"):
        rid = rid[len("file:") :]
    candidates = [rid] if os.path.isabs(rid) else [os.path.normpath(os.path.join(b, rid)) for b in bases]
    for path in candidates:
        if os.path.isfile(path):
            return path
    return None


def to_jsonable(obj: Any) -> Any:
    """numpy scalars/arrays -> plain Python, for json.dumps."""
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
