"""ImageNet same-class sentences: sampling rules, class purity, failures counted not lost."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from uvd.config import ConfigError
from uvd.core.outputs import FAILURES, IMAGES, SENTENCES
from uvd.sources.imagenet import pipeline as m
from uvd.transforms.image import decode_png

SAMPLE = Path(m.__file__).resolve().parents[2] / "sample" / "imagenet"


def _cfg(**kw) -> m.Config:
    return m.Config(input="x", **kw)


@pytest.mark.parametrize("n", [16, 17, 31, 32, 45, 100])
def test_fill_uses_every_image_and_never_repeats_one_in_a_sentence(n):
    sentences, unused = m.class_sentences(n, "cls", _cfg())
    assert unused == [] and len(sentences) == -(-n // 16)
    assert all(len(s) == 16 and len(set(s)) == 16 for s in sentences)
    assert set().union(*map(set, sentences)) == set(range(n))
    # Without replacement inside a pass: only the last sentence may reuse images.
    counts = Counter(i for s in sentences[:-1] for i in s)
    assert max(counts.values(), default=1) == 1


def test_skip_remainder_leaves_the_rest_unused():
    sentences, unused = m.class_sentences(40, "cls", _cfg(remainder="skip"))
    assert len(sentences) == 2 and len(unused) == 8
    assert set(unused).isdisjoint(i for s in sentences for i in s)


def test_sampling_is_seeded_by_seed_and_class():
    assert m.class_sentences(50, "a", _cfg(seed=1)) == m.class_sentences(50, "a", _cfg(seed=1))
    assert m.class_sentences(50, "a", _cfg(seed=1)) != m.class_sentences(50, "b", _cfg(seed=1))
    assert m.class_sentences(50, "a", _cfg(seed=1)) != m.class_sentences(50, "a", _cfg(seed=2))


def test_passes_reshuffle_for_new_sentences():
    one, _ = m.class_sentences(32, "a", _cfg())
    three, _ = m.class_sentences(32, "a", _cfg(passes=3))
    assert three[:2] == one and len(three) == 6
    assert len({tuple(sorted(s)) for s in three}) > 2


def test_small_class_skip_or_short():
    assert m.class_sentences(5, "a", _cfg()) == ([], [0, 1, 2, 3, 4])
    sentences, unused = m.class_sentences(5, "a", _cfg(small_class="short"))
    assert unused == [] and [sorted(s) for s in sentences] == [[0, 1, 2, 3, 4]]
    assert m.class_sentences(1, "a", _cfg(small_class="short", min_images=2)) == ([], [0])


def test_decode_image_rows_and_failures(tmp_path):
    good = next(SAMPLE.glob("cat/*.JPEG"))
    bad = tmp_path / "bad.JPEG"
    bad.write_bytes(good.read_bytes()[:200])
    decode = m.DecodeImage(_cfg())
    ((tag, row),) = list(decode({"path": str(good), "class": "cat", "split": None}))
    assert tag == IMAGES and decode_png(row["image"]).shape == (256, 256, 3)
    assert json.loads(row["provenance"]) == {"path": str(good), "class": "cat", "split": None}
    reasons = [
        row["reason"]
        for rec in (
            {"path": str(bad), "class": "x", "split": None},
            {"path": str(tmp_path / "gone.JPEG"), "class": "x", "split": None},
            {"path": str(good), "class": "", "split": None},
        )
        for tag, row in decode(rec)
    ]
    assert reasons[0] in ("truncated", "not_an_image", "corrupt_image")
    assert reasons[1:] == ["unreadable_file", "missing_class"]


def test_class_sentences_rows_are_pure_and_skips_name_each_image():
    members = [(f"/d/cat/{i}.JPEG", f"id{i:02d}") for i in range(20)] + [("/d/cat/dup.JPEG", "id00")]
    rows = list(m.ClassSentences(_cfg(remainder="skip"))((("train", "cat"), members)))
    sentences = [r for t, r in rows if t == SENTENCES]
    skipped = [r for t, r in rows if t == FAILURES]
    assert len(sentences) == 1 and sentences[0]["group"] == "cat" and sentences[0]["split"] == "train"
    assert len(set(sentences[0]["image_ids"])) == 16  # duplicate pixels counted once
    assert len(skipped) == 4 and {r["reason"] for r in skipped} == {"class_remainder"}
    assert {r["status"] for r in skipped} == {"skipped"}
    id_of = dict(members[:20])
    assert set(sentences[0]["image_ids"]).isdisjoint(id_of[r["record_id"]] for r in skipped)


def test_csv_records_resolve_paths(tmp_path):
    (tmp_path / "list.csv").write_text("path,label,split\nimgs/a.JPEG,dog,val\n/abs/b.JPEG,cat,\n,cat,train\n")
    rows = list(m.csv_records(str(tmp_path / "list.csv")))
    assert rows[0] == {"path": str(tmp_path / "imgs" / "a.JPEG"), "class": "dog", "split": "val"}
    assert rows[1] == {"path": "/abs/b.JPEG", "class": "cat", "split": None}
    assert [r for t, r in m.DecodeImage(_cfg())(rows[2])][0]["reason"] == "missing_path"


@pytest.mark.parametrize(
    "options, field",
    [
        ({"input": "x", "images_per_sentence": 17}, "images_per_sentence"),
        ({"input": "x", "remainder": "drop"}, "remainder"),
        ({"input": "x", "passes": 0}, "passes"),
    ],
)
def test_bad_config_names_the_field(options, field):
    with pytest.raises(ConfigError, match=field):
        m.source_transform(options)


def _read(out: Path, table: str) -> list[dict]:
    return pa.concat_tables(pq.read_table(p) for p in sorted((out / table).glob("part*.parquet"))).to_pylist()


@pytest.mark.slow
def test_stage_on_the_sample_tree_plus_bad_files(tmp_path):
    root = tmp_path / "tree"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("*.py", "*.md"))
    (root / "temple" / "broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "cat" / "notes.txt").write_text("not an image: a skipped row")
    (root / "stray.JPEG").write_bytes((root / "cat" / "cat_00.JPEG").read_bytes())  # in no class folder
    (root / "cat" / "deeper").mkdir()
    (root / "cat" / "deeper" / "x.JPEG").write_bytes((root / "cat" / "cat_00.JPEG").read_bytes())
    out = tmp_path / "out"
    assert (
        m.run(["--input", str(root), "--output", str(out), "--direct_running_mode=in_memory", "--direct_num_workers=1"])
        == 0
    )
    images, sentences, failures = _read(out, "images"), _read(out, "sentences"), _read(out, "failures")
    class_of = {r["image_id"]: json.loads(r["provenance"])["class"] for r in images}
    assert Counter(s["group"] for s in sentences) == {"cat": 2, "temple": 1}
    for s in sentences:  # class purity
        assert len(s["image_ids"]) == 16 and len(set(s["image_ids"])) == 16
        assert {class_of[i] for i in s["image_ids"]} == {s["group"]}
        assert s["source"] == "imagenet_class" and s["kind"] == "sequence"
    assert Counter((f["reason"], f["status"]) for f in failures) == {
        ("class_too_small", "skipped"): 6,
        ("not_an_image", "failed"): 1,
        ("unsupported_format", "skipped"): 1,
        ("not_in_class_folder", "skipped"): 2,
    }
    # Every file under the root is accounted for: an image row or a failure row.
    listed = sum(1 for p in root.rglob("*") if p.is_file())
    assert len(images) + 1 + 3 == listed == 18 + 17 + 6 + 3
