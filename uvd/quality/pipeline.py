"""The quality checks as one Beam step of `uvd dataset`: thin transforms around uvd/quality's functions.

    images --Fingerprint--> (id, hash, thumbnail)            one PNG decode + two matrix products
        --Bands--> (band, slice) buckets --Pairs--> edges --Labels (rounds)--> groups --Keep--> (id, kept id)
        --Probe(eval index side input)--> (id, nearest eval image)
    tokens --Codes--> distinct codes; (png, tokens) --Reconstruct--> PSNR   (when enabled)
    facts per image --CoGroupByKey--> per sentence --Judge--> kept | filtered rows | report rows
    kept --by signature--> one per near-duplicate group (keep_one) --validation vs train--> sentences

What leaves: the sentences that go on to compose, failure rows (stage "quality"), a per-sentence
report table `<output>/quality/`, and `<output>/stats/quality.json` for the card.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from uvd.core.outputs import FAILURES
from uvd.quality import learn, verdict
from uvd.quality.config import Quality
from uvd.quality.decontam import EvalIndex
from uvd.quality.fingerprint import dct_hash, thumbnail
from uvd.quality.grouping import band_keys, band_start, bucket_pairs, greedy_keep, key_id, rank_key

REPORT = "report"
STATS = "stats"
REPORT_SCHEMA = pa.schema(
    [
        pa.field("sentence_id", pa.string()),
        pa.field("source", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("num_images", pa.int16()),
        pa.field("min_psnr", pa.float32()),
        pa.field("min_distinct_codes", pa.int16()),
        pa.field("frozen", pa.int16()),
        pa.field("blank", pa.int16()),
        pa.field("cuts", pa.int16()),
        pa.field("eval_match", pa.string()),
    ]
)


class QualityOutputs(NamedTuple):
    sentences: beam.PCollection
    failures: beam.PCollection


def _pixels(png: bytes) -> np.ndarray:
    from uvd.tokenize.stage import png_to_pixels

    return png_to_pixels(png)


class _Fingerprint(beam.DoFn):
    """Image row -> (id, {source, hash, thumb}); undecodable rows are the tokenizer's to dead-letter."""

    def __init__(self, bits: int) -> None:
        self.bits = bits

    def setup(self) -> None:
        self.bad = Metrics.counter("uvd.quality", "unreadable_images")

    def process(self, row: dict) -> Iterator[tuple[str, dict]]:
        try:
            pixels = _pixels(row["image"])
        except Exception:  # noqa: BLE001 - TokenizeImages writes the failure row for this image
            self.bad.inc()
            return
        yield (
            row["image_id"],
            {
                "source": row.get("source") or "",
                "hash": dct_hash(pixels, self.bits)[0].tobytes(),
                "thumb": thumbnail(pixels)[0].tobytes(),
            },
        )


class _Reconstruct(beam.DoFn):
    """(id, {png, tokens}) -> (id, {psnr}): decode the tokens with the tokenizer, compare to the pixels."""

    def __init__(self, checkpoint: str, fraction: float, seed: int) -> None:
        self.checkpoint, self.fraction, self.seed = checkpoint, fraction, seed

    def setup(self) -> None:
        from uvd.tokenize.load import load_vqgan

        self.model = load_vqgan(self.checkpoint)

    def process(self, item: tuple[str, dict]) -> Iterator[tuple[str, dict]]:
        from uvd.tokenize.codec import decode

        image_id, parts = item
        pngs, toks = list(parts["png"]), list(parts["tokens"])
        if not pngs or not toks:
            return
        h = int.from_bytes(hashlib.blake2b(f"{self.seed}\x1fpsnr\x1f{image_id}".encode(), digest_size=8).digest())
        if h / 2.0**64 >= self.fraction:
            return
        try:
            pixels = _pixels(pngs[0])
        except Exception:  # noqa: BLE001 - the tokenizer dead-letters it
            return
        ids = np.asarray(toks[0], dtype=np.int64).reshape(1, -1)
        yield image_id, {"psnr": learn.psnr(pixels, decode(self.model, ids, batch_size=1)[0])}


class _Probe(beam.DoFn):
    def process(self, item: tuple[str, dict], index: EvalIndex) -> Iterator[tuple[str, dict]]:
        image_id, sig = item
        match = index.match(np.frombuffer(sig["hash"], np.uint8))
        if match is not None:
            yield image_id, {"eval": match}


class ClusterImages(beam.PTransform):
    """(id, sig) -> (id, {rep, dist}) for every image with a near-duplicate (rep == id: kept)."""

    def __init__(self, bands: int, threshold: int, max_bucket: int, window: int, rounds: int, seed: int) -> None:
        super().__init__()
        self.bands, self.threshold, self.max_bucket, self.window = bands, threshold, max_bucket, window
        self.rounds, self.seed = rounds, seed

    def expand(self, sigs: beam.PCollection) -> beam.PCollection:
        bands, seed = self.bands, self.seed

        def to_buckets(kv: tuple[str, dict]) -> Iterator[tuple[str, tuple[str, bytes]]]:
            h = np.frombuffer(kv[1]["hash"], np.uint8)
            for key in band_keys(h, bands):
                yield key, (kv[0], kv[1]["hash"])

        def pairs(kv: tuple[str, Any]) -> Iterator[tuple[tuple[str, str], int]]:
            members = sorted(kv[1])
            ids = [m[0] for m in members]
            hashes = np.stack([np.frombuffer(m[1], np.uint8) for m in members])
            start = band_start(kv[0], hashes.shape[1], bands)
            for a, b, d in bucket_pairs(ids, hashes, self.threshold, self.max_bucket, self.window, start):
                yield (a, b), d

        def both_ways(kv: tuple[tuple[str, str], int]) -> Iterator[tuple[str, tuple[str, int]]]:
            (a, b), d = kv
            yield a, (b, d)
            yield b, (a, d)

        def spread(kv: tuple[str, dict]) -> Iterator[tuple[str, str]]:
            image_id, parts = kv
            label = min(parts["label"])
            yield image_id, label
            for nbr, _ in next(iter(parts["adj"]), []):
                yield nbr, label

        def to_group(kv: tuple[str, dict]) -> tuple[str, tuple[str, list]]:
            image_id, parts = kv
            return min(parts["label"]), (image_id, list(next(iter(parts["adj"]), [])))

        def keep(kv: tuple[str, Any]) -> Iterator[tuple[str, dict]]:
            decided = greedy_keep(kv[1], seed)
            for image_id, (rep, d) in decided.items():
                yield image_id, {"rep": rep, "dist": d, "cluster": key_id(kv[0])}

        edges = (
            sigs
            | "Bands" >> beam.FlatMap(to_buckets)
            | "Buckets" >> beam.GroupByKey()
            | "Pairs" >> beam.FlatMap(pairs)
            | "OnePerPair" >> beam.CombinePerKey(min)
        )
        adj = edges | "BothWays" >> beam.FlatMap(both_ways) | "Adjacency" >> beam.GroupByKey()
        labels = adj | "Label0" >> beam.Map(lambda kv: (kv[0], rank_key(seed, kv[0])))
        for r in range(self.rounds):
            labels = (
                {"adj": adj, "label": labels}
                | f"Join{r}" >> beam.CoGroupByKey()
                | f"Spread{r}" >> beam.FlatMap(spread)
                | f"Min{r}" >> beam.CombinePerKey(min)
            )
        return (
            {"adj": adj, "label": labels}
            | "JoinFinal" >> beam.CoGroupByKey()
            | "ToGroup" >> beam.Map(to_group)
            | "Groups" >> beam.GroupByKey()
            | "Keep" >> beam.FlatMap(keep)
        )


def _merge_facts(kv: tuple[str, dict]) -> tuple[str, dict]:
    info: dict = {}
    for values in kv[1].values():
        for v in values:
            info.update(v)
    return kv[0], info


def _image_stats(kv: tuple[str, dict]) -> Iterator[tuple[str, Any]]:
    _, info = kv
    src = info.get("source", "?")
    if info.get("codes") is not None:
        yield f"codes|{src}", learn.add_to_histogram(None, info["codes"], learn.DIVERSITY_EDGES)
        yield f"codes_sum|{src}", info["codes"]
    if info.get("psnr") is not None:
        yield f"psnr|{src}", learn.add_to_histogram(None, info["psnr"], learn.PSNR_EDGES)
        yield f"psnr_sum|{src}", info["psnr"]
    if info.get("hash") is not None:
        yield f"images|{src}", 1
    if info.get("rep") is not None:
        yield f"dup_images|{src}", 1
        if info["rep"] != kv[0]:
            yield f"dup_dropped_images|{src}", 1
    if info.get("eval"):
        yield f"eval_images|{info['eval'][0]}|{src}", 1


class _Judge(beam.DoFn):
    def __init__(self, q: Quality) -> None:
        self.q = q

    def process(self, item: tuple[str, dict]) -> Iterator[Any]:
        _, parts = item
        sentences = list(parts["sentence"])
        if not sentences:
            return
        sentence = sentences[0]
        n = len(sentence["image_ids"])
        infos: list[dict | None] = [None] * n
        for pos, info in parts["facts"]:
            infos[pos] = info
        row, reasons = verdict.report_row(sentence, infos, self.q)
        src = sentence["source"]
        yield beam.pvalue.TaggedOutput(REPORT, {k: row[k] for k in REPORT_SCHEMA.names})
        for flag in row.get("flags", []):
            yield beam.pvalue.TaggedOutput(STATS, (f"seq_{flag}|{src}", 1))
        if row.get("frozen") is not None:
            yield beam.pvalue.TaggedOutput(STATS, (f"seq_checked|{src}", 1))
        if row.get("eval_match"):
            yield beam.pvalue.TaggedOutput(STATS, (f"eval_sentences|{src}", 1))
        if reasons:
            yield beam.pvalue.TaggedOutput(STATS, (f"removed|{reasons[0][0]}|{src}", 1))
            yield beam.pvalue.TaggedOutput(FAILURES, verdict.filtered_row(sentence, reasons))
            return
        reps = [(info or {}).get("rep") or iid for iid, info in zip(sentence["image_ids"], infos)]
        yield {"sentence": sentence, "sig": verdict.signature(sentence, infos), "reps": reps}


class _KeepOnePerSignature(beam.DoFn):
    def __init__(self, seed: int, drop: bool) -> None:
        self.seed, self.drop = seed, drop

    def process(self, kv: tuple[str, Any]) -> Iterator[Any]:
        items = list(kv[1])
        if len(items) == 1:
            yield items[0]
            return
        kept, rest = verdict.pick_kept(self.seed, [i["sentence"] for i in items])
        by_id = {i["sentence"]["sentence_id"]: i for i in items}
        yield by_id[kept["sentence_id"]]
        for s in rest:
            yield beam.pvalue.TaggedOutput(STATS, (f"dup_sentences|{s['source']}", 1))
            if self.drop:
                yield beam.pvalue.TaggedOutput(STATS, (f"removed|near_duplicate|{s['source']}", 1))
                yield beam.pvalue.TaggedOutput(FAILURES, verdict.near_duplicate_row(s, kept))
            else:
                yield by_id[s["sentence_id"]]


class _SumStats(beam.CombineFn):
    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, acc: dict, item: tuple[str, Any]) -> dict:
        key, value = item
        if isinstance(value, list):
            old = acc.get(key) or [0] * len(value)
            acc[key] = [a + b for a, b in zip(old, value)]
        else:
            acc[key] = acc.get(key, 0) + value
        return acc

    def merge_accumulators(self, accs: Any) -> dict:
        out: dict = {}
        for a in accs:
            for item in a.items():
                self.add_input(out, item)
        return out

    def extract_output(self, acc: dict) -> dict:
        return dict(sorted(acc.items()))


class _WriteStats(beam.DoFn):
    def __init__(self, path: str, config: dict) -> None:
        self.path, self.config = path, config

    def process(self, stats: dict) -> Iterator[str]:
        with FileSystems.create(self.path) as f:
            f.write(json.dumps({"config": self.config, "counts": stats}, indent=1, sort_keys=True).encode())
        yield self.path


def split_of(sentence: dict, validation_fraction: float, seed: int) -> str:
    """The split AssignSplits will give this sentence (the same functions, called earlier)."""
    from uvd.schema import normalize_split, split_for

    return normalize_split(sentence.get("split")) or split_for(sentence["group"], validation_fraction, seed)


class QualityChecks(beam.PTransform):
    """(sentences, images, tokens) -> QualityOutputs; everything switchable in the `quality:` block."""

    def __init__(
        self,
        q: Quality,
        output: str,
        seed: int,
        validation_fraction: float,
        checkpoint: str,
        eval_index: EvalIndex | None = None,
        config: dict | None = None,
    ) -> None:
        super().__init__()
        self.q, self.output, self.seed, self.validation_fraction = q, output, seed, validation_fraction
        self.checkpoint, self.eval_index, self.config = checkpoint, eval_index, config or {}

    def expand(self, inputs: tuple) -> QualityOutputs:
        sentences, images, tokens = inputs
        q, seed = self.q, self.seed
        p = sentences.pipeline
        sigs = images | "Fingerprint" >> beam.ParDo(_Fingerprint(q.dups.bits))
        facts = {"sig": sigs}
        if q.learn.enabled:
            facts["codes"] = tokens | "Codes" >> beam.Map(
                lambda r: (r["image_id"], {"codes": learn.distinct_codes(r["tokens"])})
            )
            if q.learn.psnr:
                pngs = images | "PngById" >> beam.Map(lambda r: (r["image_id"], r["image"]))
                toks = tokens | "TokensById" >> beam.Map(lambda r: (r["image_id"], r["tokens"]))
                facts["psnr"] = (
                    {"png": pngs, "tokens": toks}
                    | "PixelsAndTokens" >> beam.CoGroupByKey()
                    | "Reconstruct" >> beam.ParDo(_Reconstruct(self.checkpoint, q.learn.psnr_fraction, seed))
                )
        if q.needs_groups:
            d = q.dups
            facts["rep"] = sigs | "NearDuplicates" >> ClusterImages(
                d.bands, d.threshold, d.max_bucket, d.window, d.rounds, seed
            )
        if self.eval_index is not None:
            index = p | "EvalIndex" >> beam.Create([self.eval_index])
            facts["eval"] = sigs | "Probe" >> beam.ParDo(_Probe(), beam.pvalue.AsSingleton(index))
        info = facts | "ImageFacts" >> beam.CoGroupByKey() | "Merge" >> beam.Map(_merge_facts)
        stats = [info | "ImageStats" >> beam.FlatMap(_image_stats)]

        refs = sentences | "Refs" >> beam.FlatMap(
            lambda s: [(iid, (s["sentence_id"], pos)) for pos, iid in enumerate(s["image_ids"])]
        )
        per_sentence = (
            {"info": info, "refs": refs}
            | "FactsToRefs" >> beam.CoGroupByKey()
            | "BySentence" >> beam.FlatMap(_to_sentences)
        )
        keyed = sentences | "KeyById" >> beam.Map(lambda s: (s["sentence_id"], s))
        judged = (
            {"sentence": keyed, "facts": per_sentence}
            | "JoinSentence" >> beam.CoGroupByKey()
            | "Judge" >> beam.ParDo(_Judge(q)).with_outputs(FAILURES, REPORT, STATS, main="kept")
        )
        failures, stats = [judged[FAILURES]], stats + [judged[STATS]]
        kept = judged.kept
        if q.dups.policy != "off":
            deduped = (
                kept
                | "BySignature" >> beam.Map(lambda k: (k["sig"], k))
                | "Signatures" >> beam.GroupByKey()
                | "KeepOne"
                >> beam.ParDo(_KeepOnePerSignature(seed, q.dups.policy == "keep_one")).with_outputs(
                    FAILURES, STATS, main="kept"
                )
            )
            kept, failures, stats = deduped.kept, failures + [deduped[FAILURES]], stats + [deduped[STATS]]
        if q.decon.validation:
            checked = kept | "ValidationVsTrain" >> _ValidationVsTrain(
                self.validation_fraction, seed, q.decon.action == "drop"
            )
            kept, failures, stats = checked.kept, failures + [checked[FAILURES]], stats + [checked[STATS]]
        _ = judged[REPORT] | "ReportTable" >> beam.io.WriteToParquet(
            FileSystems.join(self.output, "quality", "part"), REPORT_SCHEMA, codec="zstd", file_name_suffix=".parquet"
        )
        config = {**self.config, "eval_sets": self.eval_index.sizes if self.eval_index else {}}
        _ = (
            stats
            | "AllStats" >> beam.Flatten()
            | "SumStats" >> beam.CombineGlobally(_SumStats())
            | "StatsJson" >> beam.ParDo(_WriteStats(FileSystems.join(self.output, "stats", "quality.json"), config))
        )
        out = kept | "Sentences" >> beam.Map(lambda k: k["sentence"])
        return QualityOutputs(out, failures | "QualityFailures" >> beam.Flatten())


def _to_sentences(kv: tuple[str, dict]) -> Iterator[tuple[str, tuple[int, dict | None]]]:
    info = next(iter(kv[1]["info"]), None)
    for sid, pos in kv[1]["refs"]:
        yield sid, (pos, info)


class _ValidationVsTrain(beam.PTransform):
    """Drop validation sentences that show an image (up to near-duplicates) a train sentence shows."""

    def __init__(self, validation_fraction: float, seed: int, drop: bool) -> None:
        super().__init__()
        self.validation_fraction, self.seed, self.drop = validation_fraction, seed, drop

    def expand(self, kept: beam.PCollection) -> Any:
        frac, seed, drop = self.validation_fraction, self.seed, self.drop

        def by_rep(k: dict) -> Iterator[tuple[str, tuple]]:
            s = k["sentence"]
            split = split_of(s, frac, seed)
            for iid, rep in zip(s["image_ids"], k["reps"]):
                yield (
                    rep,
                    (
                        ("train", "", "")
                        if split == "train"
                        else (split, s["sentence_id"], iid)
                        if split == "validation"
                        else ("other", "", "")
                    ),
                )

        def contaminated(kv: tuple[str, Any]) -> Iterator[tuple[str, tuple[str, str]]]:
            rep, uses = kv
            uses = list(uses)
            if any(u[0] == "train" for u in uses):
                for split, sid, iid in uses:
                    if split == "validation":
                        yield sid, (iid, rep)

        class _Drop(beam.DoFn):
            def process(self, kv: tuple[str, dict]) -> Iterator[Any]:
                items, marks = list(kv[1]["kept"]), sorted(kv[1]["marks"])
                for k in items:
                    s = k["sentence"]
                    if marks:
                        yield beam.pvalue.TaggedOutput(STATS, (f"validation_near_train|{s['source']}", 1))
                    if marks and drop:
                        yield beam.pvalue.TaggedOutput(STATS, (f"removed|validation_near_train|{s['source']}", 1))
                        yield beam.pvalue.TaggedOutput(FAILURES, verdict.validation_row(s, *marks[0]))
                    else:
                        yield k

        marks = (
            kept
            | "ByRep" >> beam.FlatMap(by_rep)
            | "Uses" >> beam.GroupByKey()
            | "Contaminated" >> beam.FlatMap(contaminated)
        )
        keyed = kept | "KeyKept" >> beam.Map(lambda k: (k["sentence"]["sentence_id"], k))
        return (
            {"kept": keyed, "marks": marks}
            | "JoinMarks" >> beam.CoGroupByKey()
            | "Drop" >> beam.ParDo(_Drop()).with_outputs(FAILURES, STATS, main="kept")
        )


def build_eval_index(q: Quality, checkpoint: str) -> EvalIndex | None:
    """On the driver, before the pipeline: every evaluation set's fingerprints in one small index."""
    if not q.decon.eval_sets:
        return None
    from uvd.quality.decontam import load_eval_set

    sets = {}
    for path in q.decon.eval_sets:
        name = path.rstrip("/").rsplit("/", 1)[-1]
        sets[name if name not in sets else path] = load_eval_set(path, q.dups.bits, checkpoint, q.decon.limit)
    return EvalIndex(sets, q.dups.bands, q.decon_threshold)


def remove_stale(output: str) -> None:
    """An earlier run's report and stats must not reach this run's card (checks may now be off)."""
    paths = [FileSystems.join(output, "stats", "quality.json")]
    pattern = FileSystems.join(output, "quality", "part*.parquet")
    try:
        paths += [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    except Exception:  # noqa: BLE001 - nothing matched: no earlier run
        pass
    existing = [p for p in paths if FileSystems.exists(p)]
    if existing:
        FileSystems.delete(existing)


def apply(
    q: Quality,
    sentences: beam.PCollection,
    images: beam.PCollection,
    tokens: beam.PCollection,
    output: str,
    seed: int,
    validation_fraction: float,
    checkpoint: str,
) -> tuple[beam.PCollection, list]:
    """What `uvd dataset` calls between tokenize and compose: (sentences that go on, [failure rows])."""
    remove_stale(output)
    if not q.enabled:
        return sentences, []
    config = {
        "near_duplicates": vars(q.dups),
        "decontaminate": {**vars(q.decon)},
        "learnability": vars(q.learn),
        "sequences": vars(q.seq),
    }
    out = (sentences, images, tokens) | "Quality" >> QualityChecks(
        q, output, seed, validation_fraction, checkpoint, build_eval_index(q, checkpoint), config
    )
    return out.sentences, [out.failures]
