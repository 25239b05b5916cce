"""`uvd dataset` end to end on fake sources (card == shards counted back, failures, reruns) and preview."""

from __future__ import annotations

import glob
import importlib.util
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from tests.pipelines.fake_sources import FakeTokenize, fake_module
from uvd import hashing
from uvd.assembly import dataset, preview
from uvd.assembly import manifest as M
from uvd.core.files import read_json

ROOT = Path(__file__).resolve().parents[2]
STALE = "train-00003-of-00009.parquet"


def _manifest(tmp_path: Path, target_shard_mb: float = 0.5, **top) -> M.Manifest:
    data = {
        "name": "fake-mix",
        "seed": 1,
        "validation_fraction": 0.2,
        "shards": {"target_shard_mb": target_shard_mb, "row_group_mb": min(0.1, target_shard_mb)},
        "sources": {
            "singles": {
                "stage": "laion",
                "input": str(tmp_path),
                "weight": 3,
                "options": {"n": 400, "source": "laion", "fail_every": 40, "missing_every": 50},
            },
            "clips": {
                "stage": "video",
                "input": str(tmp_path),
                "weight": 1,
                "replacement": True,
                "options": {"n": 30, "source": "video", "kind": "sequence", "images": 4, "groups": 6},
            },
        },
        **top,
    }
    return M.parse(data, text="fake manifest text", base=tmp_path)


def _build(m: M.Manifest, out: str) -> dict:
    options = PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"])
    return dataset.build_dataset(
        m, out, options, modules={"singles": fake_module, "clips": fake_module}, tokenize=FakeTokenize
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dataset")
    out = str(tmp / "out")
    os.makedirs(os.path.join(out, "stats"))
    for path in (os.path.join(out, STALE), os.path.join(out, "stats", STALE + ".json")):
        open(path, "wb").write(b"from an earlier run with another shard count")
    return out, _build(_manifest(tmp), out)


def _count_back(out: str) -> dict:
    counts: dict = {}
    for f in glob.glob(os.path.join(out, "*-of-*.parquet")):
        split = os.path.basename(f).split("-")[0]
        for row in pq.read_table(f, columns=["source", "num_images", "tokens"]).to_pylist():
            c = counts.setdefault((row["source"], split), {"sentences": 0, "images": 0, "tokens": 0})
            c["sentences"] += 1
            c["images"] += row["num_images"]
            c["tokens"] += len(row["tokens"])
    return counts


def test_card_numbers_equal_the_shards_counted_back(built):
    out, summary = built
    counted = _count_back(out)
    carded = {
        (r["source"], r["split"]): {k: r[k] for k in ("sentences", "images", "tokens")}
        for r in summary["totals"]["by_source"]
    }
    assert carded == counted and {s for s, _ in counted} == {"laion", "video"}
    text = open(os.path.join(out, "README.md")).read()
    for (source, split), c in counted.items():
        assert f"| {source} | {split} | {c['sentences']:,} | {c['images']:,} | {c['tokens']:,} |" in text
    assert "fake manifest text" in text and hashing.text_hash("fake manifest text") in text
    assert "uvd version" in text and "tokenizer checkpoint hash" in text


def test_failures_table_and_input_reconciliation(built):
    out, summary = built
    failures = pq.read_table(glob.glob(os.path.join(out, "failures", "*.parquet"))).to_pylist()
    reasons = {}
    for f in failures:
        reasons[(f["stage"], f["reason"])] = reasons.get((f["stage"], f["reason"]), 0) + 1
    assert reasons[("laion", "fake_bad_input")] == 10  # records 39, 79, ... of 400
    assert reasons[("shards", "missing_tokens")] == 8  # records 0, 50, ... minus the failed

    def key(f: dict) -> tuple:
        return f["stage"], f["source"], f["status"], f["reason"], f["count"]

    assert sorted(summary["failures"], key=key) == sorted(
        [
            {"stage": s, "source": src, "status": st, "reason": r, "count": n}
            for (s, src, st, r), n in _group(failures).items()
        ],
        key=key,
    )
    records = summary["records"]["fake_laion"]
    assert records["inputs"] == 400 == records["records_with_sentences"] + records["records_failures_only"]
    assert records["records_failures_only"] == 10
    # every record: sentences available to mix + failures (source or compose) = inputs
    available = {e["entry"]: e["available"] for e in summary["mixture"]["entries"]}
    # (shared images: a validation sentence using an image a train sentence has is filtered out)
    leaked = reasons.get(("shards", "image_in_other_split"), 0)
    assert available["singles"] + 10 + 8 + leaked == 400


def _group(rows):
    out = {}
    for f in rows:
        k = (f["stage"], f["source"], f["status"], f["reason"])
        out[k] = out.get(k, 0) + 1
    return out


def test_mixture_follows_the_weights(built):
    out, summary = built
    mixed = {e["entry"]: e for e in summary["mixture"]["entries"]}
    assert not mixed["singles"]["short"] and mixed["singles"]["rate"] == 1.0
    assert mixed["clips"]["rate"] > 1  # 30 clips repeated (replacement: true) up to a quarter
    assert abs(mixed["clips"]["share"] - 0.25) < 0.05
    video_rows = sum(c["sentences"] for (s, _), c in _count_back(out).items() if s == "video")
    assert video_rows == mixed["clips"]["sampled"] > 30


def test_dataset_folder_loads_with_hf_datasets_from_its_card(built):
    datasets = pytest.importorskip("datasets")
    out, summary = built
    ds = datasets.load_dataset(out, cache_dir=os.path.join(out, "..", "hf-cache"))
    assert set(ds) == set(summary["totals"]["by_split"])
    for split, t in summary["totals"]["by_split"].items():
        assert len(ds[split]) == t["sentences"]
    assert ds["train"].features["tokens"].feature.dtype == "uint16"


def test_shards_of_an_earlier_run_are_removed(built):
    out, summary = built
    names = sorted(os.path.basename(f) for f in glob.glob(os.path.join(out, "*.parquet")))
    assert names == sorted(s["file"] for s in summary["shards"])
    assert STALE not in names and not os.path.exists(os.path.join(out, "stats", STALE + ".json"))
    assert len(glob.glob(os.path.join(out, "stats", "*-of-*.json"))) == len(names)


# --- preview ---------------------------------------------------------------------------------------
def test_contact_sheet_places_thumbnails_in_rows():
    red = np.zeros((2, 256, 256, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((3, 256, 256, 3), np.uint8)
    blue[..., 2] = 255
    sheet = preview.contact_sheet([("a", red), ("b", blue)], thumb=32, max_images=16)
    step = 32 + preview.GAP
    assert sheet.shape == (2 * step, preview.LABEL_WIDTH + 3 * step, 3)
    assert tuple(sheet[5, preview.LABEL_WIDTH + 5]) == (255, 0, 0)
    assert tuple(sheet[step + 5, preview.LABEL_WIDTH + 2 * step + 5]) == (0, 0, 255)
    assert tuple(sheet[5, preview.LABEL_WIDTH + 2 * step + 5]) == (255, 255, 255)  # row a has 2 images
    assert sheet[:, : preview.LABEL_WIDTH].min() < 128  # labels were drawn
    assert np.array_equal(preview.thumbnail(red[0], 64), red[0, :64, :64])


def test_preview_decodes_a_few_sentences_per_source(built, tmp_path):
    out, _ = built
    png = str(tmp_path / "preview.png")
    rc = preview.run(["--shards", out, "--output", png, "--per_source", "1", "--max_images", "2", "--thumb", "32"])
    assert rc == 0 and os.path.exists(png)
    from PIL import Image

    image = np.asarray(Image.open(png))
    assert image.shape == (2 * (32 + preview.GAP), preview.LABEL_WIDTH + 2 * (32 + preview.GAP), 3)
    assert image[:, preview.LABEL_WIDTH :].std() > 0  # decoded pixels, not a blank sheet
    rows = preview.sample_sentences(preview.shard_files(out), 2)
    assert [r["source"] for r in rows] == ["laion", "laion", "video", "video"]


# --- the embedded sample, for real ---------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("uvd.tokenize.stage") is None, reason="tokenizer stage not present")
def test_make_dataset_on_the_embedded_sample(tmp_path):
    """`make dataset` twice (two folders, two caches: nothing reused) gives byte-identical folders."""
    out = str(tmp_path / "sample")
    assert dataset.run(["--manifest", str(ROOT / "manifests" / "sample.yaml"), "--output", out]) == 0
    again = str(tmp_path / "again")
    assert dataset.run(["--manifest", str(ROOT / "manifests" / "sample.yaml"), "--output", again]) == 0

    def published(folder: str) -> dict[str, bytes]:
        names = [
            f
            for p in ("*.parquet", "README.md", "_COMPLETE.json", "failures/*", "stats/*")
            for f in glob.glob(os.path.join(folder, p))
        ]
        return {os.path.relpath(f, folder): open(f, "rb").read() for f in sorted(names)}

    first = published(out)
    assert first == published(again) and "README.md" in first and "_COMPLETE.json" in first
    assert str(ROOT) not in first["README.md"].decode()  # no machine path in the card
    summary = read_json(os.path.join(out, "stats", "dataset.json"))
    counted = _count_back(out)
    assert {(r["source"], r["split"]): r["sentences"] for r in summary["totals"]["by_source"]} == {
        k: v["sentences"] for k, v in counted.items()
    }
    assert {"laion", "video", "objaverse"} <= {s for s, _ in counted}
    assert any(s.startswith("ann/") for s, _ in counted)
    assert all(v.get("records_no_output", 0) == 0 for v in (summary["records"] or {}).values())
