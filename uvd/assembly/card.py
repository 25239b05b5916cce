"""The dataset card (README.md beside the shards) and the failures table it summarises.

The pipeline leaves small JSON summaries under `<output>/stats/` (one per shard, the failure
counts, the sources' sentence counts, the mixture plan); after the pipeline finishes, `finish()`
reads them back, adds the per-stage record reconciliation from Beam metrics when the runner
reports them, and renders README.md. The card is a pure function of those files (`render_card`),
so what it says is exactly what was written.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

import uvd
from uvd import hashing
from uvd.assembly.publish import PLAN_FILE, remove_stale_shards
from uvd.core.files import read_json, write_json, write_table_atomic
from uvd.core.metrics import SumCounts
from uvd.quality import card as quality_card
from uvd.schema import planned_names

log = logging.getLogger("uvd")
# What RunSource counts per input record (uvd/core/stage.py). "images only" is normal for a
# stage that forms sentences in a later step (pooled annotation pairs); "no output" is a lost record.
# Decode/plan steps (DeadLetterDoFn) pass a record on to the next step of their stage: "passed on".
RECORD_OUTCOMES = (
    "records_with_sentences",
    "records_failures_only",
    "records_images_only",
    "records_passed_on",
    "records_no_output",
)


# --- Beam side: summaries the card is made from ----------------------------------------------------
class _CountBy(SumCounts):
    """Counts of a tuple key built from each row, merged across workers (small: one row per key)."""

    def __init__(self, fields: tuple[str, ...]) -> None:
        self.fields = fields

    def add_input(self, acc: dict, row: dict) -> dict:
        key = tuple(str(row.get(f)) for f in self.fields)
        acc[key] = acc.get(key, 0) + 1
        return acc

    def extract_output(self, acc: dict) -> list[dict]:
        return [dict(zip(self.fields, k), count=v) for k, v in sorted(acc.items())]


class _WriteJson(beam.DoFn):
    def __init__(self, path: str) -> None:
        self.path = path

    def process(self, obj: Any):
        write_json(self.path, obj)
        yield self.path


class WriteFailures(beam.PTransform):
    """Failure rows -> `<output>/failures/part-iiiii-of-nnnnn.parquet` and counts per stage/source/status/reason.

    Byte-identical across runs and machines: details lose memory addresses and machine paths
    (`stable_row`), a row's part file is a hash of the row, and each part is sorted.
    """

    def __init__(self, output: str, roots: dict[str, str] | None = None) -> None:
        super().__init__()
        self.output, self.roots = output, dict(roots or {})

    def expand(self, failures: beam.PCollection) -> beam.PCollection:
        failures = failures | "Stable" >> beam.Map(stable_row, roots=self.roots)
        _ = failures | "Table" >> WriteSortedTable(self.output, "failures")
        return (
            failures
            | "Count" >> beam.CombineGlobally(_CountBy(("stage", "source", "status", "reason")))
            | "Json" >> beam.ParDo(_WriteJson(FileSystems.join(self.output, "stats", "failures.json")))
        )


# What varies between runs of the same inputs: object addresses (`<... at 0x7f..>`, `[mp4 @ 0x55..]`),
# wall-clock stamps a decoder or library prints, and where the repository sits on this machine.
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
_CLOCK = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?Z?|\b\d{2}:\d{2}:\d{2}\.\d{3,}\b")
_ELAPSED = re.compile(r"\b(after|in|took|elapsed)\s+\d+\.\d+\s*s\b")


def default_roots(manifest_dir: str | None = None) -> dict[str, str]:
    """Machine paths -> what replaces them in failure rows: the manifest's folder and the uvd checkout."""
    roots = {os.path.dirname(os.path.dirname(os.path.abspath(uvd.__file__))) + os.sep: ""}
    if manifest_dir:
        roots[os.path.abspath(manifest_dir) + os.sep] = ""
    return roots


def stable_text(text: str | None, roots: dict[str, str]) -> str | None:
    if not text:
        return text
    for root in sorted(roots, key=len, reverse=True):
        text = text.replace(root, roots[root])
    text = _ADDRESS.sub("0x?", text)
    text = _CLOCK.sub("<time>", text)
    return _ELAPSED.sub(lambda m: f"{m.group(1)} <t>s", text)


def stable_row(row: dict, roots: dict[str, str]) -> dict:
    return {**row, "record_id": stable_text(row["record_id"], roots), "detail": stable_text(row.get("detail"), roots)}


ROWS_PER_PART = 1_000_000


def _part_key(row: dict) -> tuple:
    return tuple(
        "" if row.get(k) is None else str(row[k])
        for k in ("stage", "source", "record_id", "status", "reason", "detail")
    )


class _WritePartFn(beam.DoFn):
    def __init__(self, folder: str, table: str) -> None:
        self.folder, self.table = folder, table

    def process(self, item: tuple[tuple[int, int], Iterable[dict | None]]) -> Iterator[str]:
        import pyarrow as pa

        from uvd.schema import TABLE_SCHEMAS

        (index, count), values = item
        rows = sorted((v for v in values if v is not None), key=_part_key)
        path = FileSystems.join(self.folder, self.table, f"part-{index:05d}-of-{count:05d}.parquet")
        write_table_atomic(path, pa.Table.from_pylist(rows, schema=TABLE_SCHEMAS[self.table]))
        yield path


class WriteSortedTable(beam.PTransform):
    """Rows -> `folder/<table>/part-iiiii-of-nnnnn.parquet`: the part from a hash of the row, rows sorted.

    Unlike WriteToParquet (bundle order, random temp names), the same rows give the same files.
    """

    def __init__(self, folder: str, table: str, rows_per_part: int = ROWS_PER_PART) -> None:
        super().__init__()
        self.folder, self.table, self.rows_per_part = folder, table, rows_per_part

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        from uvd.hashing import unit_hash

        per = self.rows_per_part
        count = rows | "Count" >> beam.combiners.Count.Globally() | "Parts" >> beam.Map(lambda n: max(1, -(-n // per)))
        keyed = rows | "Key" >> beam.Map(
            lambda r, n: ((min(int(unit_hash("part", *_part_key(r)) * n), n - 1), n), r),
            n=beam.pvalue.AsSingleton(count),
        )
        every = count | "Every" >> beam.FlatMap(lambda n: [((i, n), None) for i in range(n)])
        return (
            (keyed, every)
            | "WithEmpty" >> beam.Flatten()
            | "Group" >> beam.GroupByKey()
            | "Write" >> beam.ParDo(_WritePartFn(self.folder, self.table))
        )


class _SentenceCounts(beam.CombineFn):
    """Per source: sentences and images the source stages produced (before compose and mixing)."""

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, acc: dict, row: dict) -> dict:
        s = acc.setdefault(row["source"], [0, 0])
        s[0] += 1
        s[1] += len(row["image_ids"])
        return acc

    def merge_accumulators(self, accs: Iterable[dict]) -> dict:
        out: dict = {}
        for a in accs:
            for k, (n, i) in a.items():
                s = out.setdefault(k, [0, 0])
                s[0] += n
                s[1] += i
        return out

    def extract_output(self, acc: dict) -> dict:
        return {k: {"sentences": v[0], "image_refs": v[1]} for k, v in sorted(acc.items())}


class SummarizeAvailable(beam.PTransform):
    """Sentence rows from the source stages -> `<output>/stats/sources.json`."""

    def __init__(self, output: str) -> None:
        super().__init__()
        self.output = output

    def expand(self, sentences: beam.PCollection) -> beam.PCollection:
        return (
            sentences
            | "Count" >> beam.CombineGlobally(_SentenceCounts())
            | "Json" >> beam.ParDo(_WriteJson(FileSystems.join(self.output, "stats", "sources.json")))
        )


# --- after the pipeline: gather, reconcile, render -------------------------------------------------
def fingerprint(path_or_id: str | None) -> str | None:
    """Content hash of a checkpoint (a file or every file of a folder); a hub id hashes its name."""
    if not path_or_id:
        return None
    import os

    h = hashlib.blake2b(digest_size=16)
    if os.path.isdir(path_or_id):
        for root, dirs, files in os.walk(path_or_id):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                h.update(os.path.relpath(full, path_or_id).encode() + b"\0")
                with open(full, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
        return h.hexdigest()
    if os.path.isfile(path_or_id):
        with open(path_or_id, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    h.update(b"hub:" + path_or_id.encode())
    return "hub:" + h.hexdigest()


def record_metrics(result: Any) -> dict[str, dict[str, int]] | None:
    """Per source stage: inputs and what became of them, from RunSource's Beam counters."""
    try:
        from apache_beam.metrics.metric import MetricsFilter

        counters = result.metrics().query(MetricsFilter())["counters"]
    except Exception as exc:  # noqa: BLE001 - a runner without metrics still gets a card
        log.warning("no Beam metrics from this runner (%s); the card omits record reconciliation", exc)
        return None
    out: dict[str, dict[str, int]] = {}
    for c in counters:
        ns, name = c.key.metric.namespace, c.key.metric.name
        if not ns.startswith("uvd.") or ns.count(".") != 1:
            continue
        if name in ("inputs", *RECORD_OUTCOMES):
            value = c.committed if c.committed is not None else c.attempted
            stage = out.setdefault(ns[len("uvd.") :], {})
            stage[name] = stage.get(name, 0) + int(value or 0)
    return {k: v for k, v in sorted(out.items()) if "inputs" in v}


def collect(output: str) -> dict:
    """Read back every summary the pipeline wrote under `<output>/stats/`."""
    stats_dir = FileSystems.join(output, "stats")
    plan_path = FileSystems.join(stats_dir, PLAN_FILE)
    plan = read_json(plan_path) if FileSystems.exists(plan_path) else {}
    shards = [read_json(FileSystems.join(stats_dir, name + ".json")) for name in planned_names(plan)]

    def optional(name: str, default: Any) -> Any:
        path = FileSystems.join(stats_dir, name)
        return read_json(path) if FileSystems.exists(path) else default

    return {
        "shards": shards,
        "failures": optional("failures.json", []),
        "sources": optional("sources.json", {}),
        "mixture": optional("mixture.json", None),
        "quality": optional("quality.json", None),
    }


def totals(shards: list[dict]) -> dict:
    """Counts per split and per (source, split), summed over the shard stats."""
    by_split: dict[str, dict[str, int]] = {}
    by_source: dict[tuple[str, str], dict[str, int]] = {}
    for s in shards:
        t = by_split.setdefault(s["split"], {"shards": 0, "sentences": 0, "images": 0, "tokens": 0, "bytes": 0})
        t["shards"] += 1
        t["sentences"] += s["rows"]
        t["images"] += s["images"]
        t["tokens"] += s["tokens"]
        t["bytes"] += s["bytes"]
        for source, c in s["sources"].items():
            u = by_source.setdefault((source, s["split"]), {"sentences": 0, "images": 0, "tokens": 0})
            for k in u:
                u[k] += c[k]
    return {
        "by_split": dict(sorted(by_split.items())),
        "by_source": [{"source": k[0], "split": k[1], **v} for k, v in sorted(by_source.items())],
    }


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render_card(summary: dict) -> str:
    """The README.md text: front matter for `datasets.load_dataset(<folder>)`, then the numbers."""
    t = totals(summary["shards"])
    splits = list(t["by_split"])
    front = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split in splits:
        front += [f"  - split: {split}", f"    path: {split}-*.parquet"]
    front += ["tags:", "- uvd", "- visual-sentences", "- vqgan-tokens", "---", ""]
    out = front + [f"# {summary.get('name') or 'uvd dataset'}", ""]
    out += [
        "Visual sentences for a Large Vision Model (Bai et al. 2023): each row is one sentence of 1-16 "
        "256x256 images, each tokenized alone by a VQGAN (f16, 8192 codes -> 256 tokens), codes "
        "concatenated in raster order (`tokens`, list<uint16>). Columns: sentence_id, source, kind, "
        "num_images, tokens. Rows are globally shuffled: read shards in index order.",
        "",
        "## Splits",
        "",
        _table(
            ["split", "shards", "sentences", "images", "tokens", "bytes", "bytes/token"],
            [
                [
                    s,
                    v["shards"],
                    v["sentences"],
                    v["images"],
                    v["tokens"],
                    v["bytes"],
                    round(v["bytes"] / v["tokens"], 3) if v["tokens"] else 0.0,
                ]
                for s, v in t["by_split"].items()
            ],
        ),
        "",
        "## Per source and split",
        "",
        _table(
            ["source", "split", "sentences", "images", "tokens"],
            [[r["source"], r["split"], r["sentences"], r["images"], r["tokens"]] for r in t["by_source"]],
        ),
        "",
    ]
    mixture = summary.get("mixture")
    if mixture:
        unit = mixture["weights_by"]
        out += [
            f"## Mixture (weights by {unit}, seed {mixture['seed']})",
            "",
            f"Target total: {mixture['total']:,.0f} {unit}. A rate above 1 repeats sentences "
            "(only for sources with `replacement: true`); `short` marks a source that had fewer "
            f"{unit} than its weight asks.",
            "",
            _table(
                [
                    "entry",
                    "weight",
                    f"available {unit}",
                    f"target {unit}",
                    "rate",
                    "sampled sentences",
                    "share",
                    "short",
                ],
                [
                    [
                        e["entry"],
                        e["weight"],
                        e["available"],
                        e["target"],
                        e["rate"],
                        e.get("sampled", 0),
                        e.get("share", 0.0),
                        "yes" if e["short"] else "",
                    ]
                    for e in mixture["entries"]
                ],
            ),
            "",
        ]
    sources = summary.get("sources") or {}
    if sources:
        out += [
            "## Sentences from the source stages (before tokens were joined and the mixture sampled)",
            "",
            _table(
                ["source", "sentences", "image references"],
                [[k, v["sentences"], v["image_refs"]] for k, v in sources.items()],
            ),
            "",
        ]
    records = summary.get("records")
    if records:
        out += [
            "## Inputs reconciled (Beam counters)",
            "",
            "Every input record of a source stage ends as sentences, as failure rows, or as images a "
            "later step of its stage groups into sentences (pooled annotation pairs); a decode or "
            "planning step (`<stage>_<step>`) passes records on to its stage's next step; `no output` "
            "counts records that produced nothing at all and must be 0.",
            "",
            _table(
                [
                    "stage",
                    "inputs",
                    "with sentences",
                    "failures only",
                    "images only",
                    "passed on",
                    "no output",
                    "reconciles",
                ],
                [
                    [
                        k,
                        v.get("inputs", 0),
                        *(v.get(o, 0) for o in RECORD_OUTCOMES),
                        "yes"
                        if v.get("inputs", 0) == sum(v.get(o, 0) for o in RECORD_OUTCOMES)
                        and not v.get("records_no_output", 0)
                        else "NO",
                    ]
                    for k, v in records.items()
                ],
            ),
            "",
        ]
    out += quality_card.section(summary.get("quality"))
    if summary.get("warnings"):
        out += ["## Warnings", "", *[f"- {w}" for w in summary["warnings"]], ""]
    failures = summary.get("failures") or []
    out += [
        "## Failures",
        "",
        f"{sum(f['count'] for f in failures):,} rows in `failures/` (Parquet: record_id, source, stage, "
        "status, reason, detail).",
        "",
    ]
    if failures:
        out += [
            _table(
                ["stage", "source", "status", "reason", "count"],
                [[f["stage"], f["source"], f["status"], f["reason"], f["count"]] for f in failures],
            ),
            "",
        ]
    prov = summary.get("provenance", {})
    out += [
        "## Provenance",
        "",
        _table(["what", "value"], [[k, "" if v is None else f"`{v}`"] for k, v in prov.items()]),
        "",
    ]
    if summary.get("manifest_text"):
        out += ["### Manifest", "", "```yaml", summary["manifest_text"].rstrip(), "```", ""]
    out += [
        "## Load",
        "",
        "```python",
        "import datasets, pyarrow.parquet as pq",
        "ds = datasets.load_dataset('parquet', data_files={'train': '<folder>/train-*.parquet'})",
        "table = pq.read_table('<folder>/train-00000-of-NNNNN.parquet')  # tokens: list<uint16>",
        "```",
        "",
    ]
    return "\n".join(out)


def empty_split_warnings(by_split: dict, expected: Iterable[str]) -> list[str]:
    """A split the configuration asks for that ended with no sentences is said, not silently absent."""
    return [
        f"split {split!r} was requested but has no sentences (too few groups for its fraction, or every "
        "candidate sentence shared an image with train); use more data or a larger fraction"
        for split in expected
        if not by_split.get(split, {}).get("sentences")
    ]


def finish(
    output: str,
    config: dict,
    manifest_text: str | None,
    tokenizer_checkpoint: str | None,
    metrics: dict | None,
    name: str | None = None,
    checkpoint_hash: str | None = None,
    expected_splits: Iterable[str] = (),
) -> dict:
    """After the pipeline: drop stale shards, write stats/dataset.json and README.md; return the summary.

    `tokenizer_checkpoint` is the name to record (never a machine path); `checkpoint_hash` its content hash.
    """
    summary = collect(output)
    remove_stale_shards(output, [s["file"] for s in summary["shards"]])
    summary["name"] = name
    summary["records"] = metrics
    summary["manifest_text"] = manifest_text
    summary["provenance"] = {
        "uvd version": uvd.__version__,
        "manifest hash (blake2b-128 of the YAML text)": hashing.text_hash(manifest_text),
        "tokenizer checkpoint": tokenizer_checkpoint,
        "tokenizer checkpoint hash": checkpoint_hash or fingerprint(tokenizer_checkpoint),
        **{k: v for k, v in config.items()},
    }
    summary["totals"] = totals(summary["shards"])
    summary["warnings"] = empty_split_warnings(summary["totals"]["by_split"], expected_splits)
    for warning in summary["warnings"]:
        log.warning("%s: %s", output, warning)
    write_json(
        FileSystems.join(output, "stats", "dataset.json"),
        {k: v for k, v in summary.items() if k != "manifest_text"} | {"tokenizer_checkpoint": tokenizer_checkpoint},
    )
    with FileSystems.create(FileSystems.join(output, "README.md")) as f:
        f.write(render_card(summary).encode())
    return summary
