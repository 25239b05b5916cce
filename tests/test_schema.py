"""The shard contract and record builders: ids are stable, rows are checked."""

import numpy as np
import pyarrow as pa
import pytest

from uvd import schema


def test_vocabulary_matches_the_lvm():
    assert schema.TOKENS_PER_IMAGE == 256
    assert schema.BOS_ID == schema.CODEBOOK_SIZE and schema.EOS_ID == schema.CODEBOOK_SIZE + 1
    assert schema.VOCAB_SIZE == 8292 > schema.EOS_ID
    assert schema.MAX_IMAGES_PER_SENTENCE * schema.TOKENS_PER_IMAGE == schema.CONTEXT_LENGTH


def test_shard_schema_tokens_are_uint16_and_roundtrip():
    row = {
        "sentence_id": "a",
        "source": "laion",
        "kind": "single",
        "num_images": 1,
        "tokens": list(range(8190, 8192)) + [0] * 254,
    }
    table = pa.Table.from_pylist([row], schema=schema.SHARD_SCHEMA)
    assert table.schema.field("tokens").type == pa.list_(pa.uint16())
    assert table.column("tokens")[0].as_py()[:2] == [8190, 8191]


def test_image_id_is_a_content_hash():
    a = np.zeros((256, 256, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 1
    assert schema.image_id_for(a) == schema.image_id_for(a.copy())
    assert schema.image_id_for(a) != schema.image_id_for(b)
    # same bytes, other shape: other image
    assert schema.image_id_for(a.reshape(128, 512, 3)) != schema.image_id_for(a)


def test_sentence_id_depends_on_every_part():
    base = schema.sentence_id_for("video", "vid1", 10, 0)
    assert base == schema.sentence_id_for("video", "vid1", 10, 0)
    assert base != schema.sentence_id_for("video", "vid1", 20, 0)
    assert base != schema.sentence_id_for("objaverse", "vid1", 10, 0)
    # no ambiguity from concatenation
    assert schema.sentence_id_for("s", "ab", "c") != schema.sentence_id_for("s", "a", "bc")


def test_row_builders_reject_bad_values():
    with pytest.raises(ValueError, match="status"):
        schema.failure_row("r", "laion", "download", "http_404", status="lost")
    with pytest.raises(ValueError, match="kind"):
        schema.sentence_row("s", "laion", "caption", ["a"], group="a")
    with pytest.raises(ValueError, match="1..16"):
        schema.sentence_row("s", "video", "sequence", ["a"] * 17, group="v")
    row = schema.failure_row("r", "laion", "download", "http_404", detail="x" * 1000)
    assert len(row["detail"]) == 500 and row["status"] == "failed"
