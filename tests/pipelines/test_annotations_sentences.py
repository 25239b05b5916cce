import pytest

from uvd.annotated.sentences import (
    Pair,
    bucket_of,
    chunk_pairs,
    multi_annotation_sentence,
    pair_sentence,
    video_sentences,
)


def _pairs(n):
    return [Pair(f"rec{i}", f"in{i}", f"out{i}") for i in range(n)]


def test_pair_sentence_is_eight_pairs_in_input_output_order():
    chunks, leftover = chunk_pairs(_pairs(17), seed=0, pairs_per_sentence=8, min_pairs=2)
    assert [len(c) for c in chunks] == [8, 8] and len(leftover) == 1
    row = pair_sentence(chunks[0], "depth", "ann/nyu/0", None, seed=0)
    assert row["kind"] == "annotated" and row["source"] == "ann/depth" and len(row["image_ids"]) == 16
    ids = row["image_ids"]
    for k in range(8):
        assert ids[2 * k].startswith("in") and ids[2 * k + 1] == "out" + ids[2 * k][2:]


def test_chunks_do_not_depend_on_arrival_order_but_on_the_seed():
    pairs = _pairs(24)
    a, _ = chunk_pairs(pairs, seed=1)
    b, _ = chunk_pairs(list(reversed(pairs)), seed=1)
    c, _ = chunk_pairs(pairs, seed=2)
    assert a == b and a != c
    assert sorted(p.record_id for ch in a for p in ch) == sorted(p.record_id for p in pairs)


def test_multi_annotation_image_first_seeded_and_bounded():
    anns = {f"t{i}": f"a{i}" for i in range(20)}
    row = multi_annotation_sentence("img", anns, "rec", "g", None, seed=0)
    assert row["image_ids"][0] == "img" and 2 <= len(row["image_ids"]) <= 16
    assert set(row["image_ids"][1:]) <= set(anns.values()) and len(set(row["image_ids"])) == len(row["image_ids"])
    again = multi_annotation_sentence("img", anns, "rec", "g", None, seed=0)
    assert again == row
    lengths = {
        len(multi_annotation_sentence("img", anns, f"rec{i}", "g", None, seed=0)["image_ids"]) for i in range(40)
    }
    assert len(lengths) > 3  # m really varies
    fixed = multi_annotation_sentence("img", {"a": "x", "b": "y"}, "rec", "g", None, seed=0, m=16)
    assert fixed["image_ids"][0] == "img" and len(fixed["image_ids"]) == 3  # m <= 1 + k
    assert multi_annotation_sentence("img", {}, "rec", "g", None, seed=0) is None


def test_video_sentences_in_both_orders():
    frames = [f"f{i}" for i in range(1, 11)]
    anns = [f"a{i}" for i in range(1, 11)]
    rows = list(video_sentences(frames, anns, "vos", "clip", None, window=8))
    assert [r["kind"] for r in rows] == ["annotated_video"] * 4 and rows[0]["source"] == "ann_video/vos"
    assert rows[0]["image_ids"] == [
        "f1",
        "a1",
        "f2",
        "a2",
        "f3",
        "a3",
        "f4",
        "a4",
        "f5",
        "a5",
        "f6",
        "a6",
        "f7",
        "a7",
        "f8",
        "a8",
    ]
    assert rows[1]["image_ids"] == frames[:8] + anns[:8]
    assert rows[2]["image_ids"] == ["f9", "a9", "f10", "a10"] and rows[3]["image_ids"] == ["f9", "f10", "a9", "a10"]
    assert len({r["sentence_id"] for r in rows}) == 4
    with pytest.raises(ValueError):
        list(video_sentences(frames, anns[:-1], "vos", "clip", None))


def test_bucket_is_stable_per_group():
    assert bucket_of("img1", 16) == bucket_of("img1", 16)
    assert len({bucket_of(f"img{i}", 16) for i in range(200)}) == 16
    assert bucket_of("anything", 1) == 0
