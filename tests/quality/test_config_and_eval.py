"""The `quality:` block is checked before any work; evaluation sets from image folders and prompt shards;
PSNR from the real shipped tokenizer."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from uvd import schema
from uvd.assembly import manifest as M
from uvd.config import ConfigError
from uvd.quality import testset
from uvd.quality.decontam import EvalIndex, load_eval_set
from uvd.quality.fingerprint import dct_hash
from uvd.quality.pipeline import _Reconstruct, remove_stale


def _manifest(tmp_path: Path, quality) -> dict:
    return {"name": "q", "sources": {"a": {"stage": "laion", "input": str(tmp_path), "weight": 1}}, "quality": quality}


@pytest.mark.parametrize(
    "quality, message",
    [
        (
            {"near_duplicates": {"policy": "drop"}},
            "quality.near_duplicates.policy: must be one of off, report, keep_one",
        ),
        ({"near_duplicates": {"bits": 128, "bands": 3}}, "quality.near_duplicates.bands: must divide"),
        ({"near_duplicates": {"threshold": 64}}, "quality.near_duplicates.threshold: must be in [0, bits/2)"),
        ({"learnability": {"enabled": True, "min_psnr": 20}}, "quality.learnability.min_psnr: needs `psnr: true`"),
        ({"sequences": {"filter": ["cuts"]}}, "quality.sequences.enabled: must be true"),
        ({"sequences": {"enabled": True, "filter": ["jumps"]}}, "quality.sequences.filter: unknown flag 'jumps'"),
        ({"decontaminate": {"eval_sets": ["nowhere"]}}, "is not a folder"),
        ({"dedup": {}}, "quality.dedup: unknown option"),
        ({"decontaminate": {"action": "delete"}}, "quality.decontaminate.action: must be drop or flag"),
    ],
)
def test_bad_quality_blocks_fail_on_load(tmp_path, quality, message):
    with pytest.raises(ConfigError, match=None) as exc:
        M.parse(_manifest(tmp_path, quality), base=tmp_path)
    assert message in str(exc.value)


def test_defaults_are_off_and_paths_resolve_against_the_manifest(tmp_path):
    assert not M.parse(_manifest(tmp_path, {}), base=tmp_path).quality_spec.enabled
    (tmp_path / "ev").mkdir()
    cv2.imwrite(str(tmp_path / "ev" / "x.png"), np.zeros((40, 40, 3), np.uint8))
    q = M.parse(_manifest(tmp_path, {"decontaminate": {"eval_sets": ["ev"]}}), base=tmp_path).quality_spec
    assert q.enabled and q.decon.eval_sets == [str(tmp_path / "ev")] and q.decon_threshold == 32


def test_the_sample_manifest_turns_the_cheap_checks_on():
    q = M.load(M.DEFAULT_MANIFEST).quality_spec
    assert q.dups.policy == "report" and q.learn.enabled and q.seq.enabled and q.decon.validation
    assert q.decon.action == "flag" and not q.seq.filter  # report only: the sample's shards stay as they were


def test_eval_index_from_an_image_folder_matches_edits_not_strangers(tmp_path):
    photos = testset.sample_photos(4)
    for i, p in enumerate(photos[:2]):
        cv2.imwrite(str(tmp_path / f"e{i}.jpg"), cv2.resize(p, (320, 320))[..., ::-1])
    index = EvalIndex({"ev": load_eval_set(str(tmp_path), 128)}, bands=16, threshold=32)
    assert index.sizes == {"ev": 2}
    edited = dct_hash(testset.EDITS["jpeg50"](photos[1]), 128)[0]
    assert index.match(edited)[:2] == ("ev", "e1.jpg")
    assert index.match(dct_hash(photos[3], 128)[0]) is None


@pytest.fixture(scope="module")
def tokenized():
    from uvd.tokenize import DEFAULT_CHECKPOINT, encode, load_vqgan

    photos = np.stack(testset.sample_photos(2))
    model = load_vqgan(DEFAULT_CHECKPOINT)
    return DEFAULT_CHECKPOINT, photos, encode(model, photos, batch_size=1), model


def test_prompt_shards_are_decoded_then_matched(tmp_path, tokenized):
    checkpoint, photos, ids, _ = tokenized
    table = pa.table(
        {"sentence_id": ["p0"], "source": ["eval"], "kind": ["single"], "num_images": [1], "tokens": [ids[0].tolist()]},
        schema=schema.SHARD_SCHEMA,
    )
    pq.write_table(table, tmp_path / "test-00000-of-00001.parquet")
    items = load_eval_set(str(tmp_path), 128, checkpoint)
    index = EvalIndex({"prompts": items}, bands=16, threshold=32)
    assert list(items) == ["p0/0"]
    assert index.match(dct_hash(photos[0], 128)[0])[:2] == ("prompts", "p0/0")  # original vs decoded tokens
    assert index.match(dct_hash(photos[1], 128)[0]) is None


def test_reconstruct_measures_psnr_of_the_decoded_tokens(tokenized):
    from uvd.transforms.image import encode_png

    checkpoint, photos, ids, model = tokenized
    fn = _Reconstruct(checkpoint, fraction=1.0, seed=0)
    fn.model = model  # what setup() loads once per worker
    ((image_id, out),) = fn.process(("a", {"png": [encode_png(photos[0])], "tokens": [ids[0]]}))
    assert image_id == "a" and 12 < out["psnr"] < 40  # the small VQGAN: ~20 dB on photos
    noise = np.random.default_rng(0).integers(0, 256, photos[0].shape, dtype=np.uint8)
    ((_, worse),) = fn.process(("b", {"png": [encode_png(noise)], "tokens": [ids[0]]}))
    assert worse["psnr"] < out["psnr"] - 5  # the tokens of another image reconstruct badly
    unsampled = _Reconstruct(checkpoint, fraction=1e-9, seed=0)
    assert list(unsampled.process(("a", {"png": [b""], "tokens": [ids[0]]}))) == []


def test_a_rerun_never_shows_an_earlier_runs_quality_section(tmp_path):
    (tmp_path / "stats").mkdir()
    (tmp_path / "quality").mkdir()
    (tmp_path / "stats" / "quality.json").write_text("{}")
    (tmp_path / "quality" / "part-00000-of-00001.parquet").write_bytes(b"old")
    (tmp_path / "stats" / "failures.json").write_text("[]")
    remove_stale(str(tmp_path))
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["failures.json"]
