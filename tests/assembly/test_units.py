"""Work units and the tokens cache on fake sources (in process, ~10 s): a rerun reuses everything and
writes the same bytes; a new tokenizer re-encodes only; the unit identity follows file contents."""

from __future__ import annotations

import glob
import os

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from tests.pipelines.fake_sources import FakeTokenize, fake_module
from uvd.assembly import dataset
from uvd.assembly import manifest as M
from uvd.core import units


def _manifest(tmp_path, checkpoint: str = "fake-a") -> M.Manifest:
    (tmp_path / "in").mkdir(exist_ok=True)  # the entries' input: its files are part of the entry's identity
    return M.parse(
        {
            "name": "units",
            "seed": 1,
            "validation_fraction": 0.2,
            "tokenizer": {"checkpoint": checkpoint},
            "sources": {
                "singles": {
                    "stage": "laion",
                    "input": str(tmp_path / "in"),
                    "weight": 3,
                    "options": {"n": 60, "source": "laion", "fail_every": 7},
                },
                "clips": {
                    "stage": "video",
                    "input": str(tmp_path / "in"),
                    "weight": 1,
                    "options": {"n": 10, "source": "video", "kind": "sequence", "images": 4},
                },
            },
        },
        text="units",
        base=tmp_path,
    )


def _build(m, out, **kw):
    options = PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"])
    return dataset.build_dataset(
        m, out, options, modules={"singles": fake_module, "clips": fake_module}, tokenize=FakeTokenize, **kw
    )


def _files(out):
    names = [f for p in ("*.parquet", "README.md", "failures/*", "stats/*") for f in glob.glob(os.path.join(out, p))]
    return {os.path.relpath(f, out): open(f, "rb").read() for f in sorted(names)}


def test_rerun_reuses_every_unit_and_writes_the_same_bytes(tmp_path):
    out = str(tmp_path / "out")
    first = _build(_manifest(tmp_path), out)
    before = _files(out)
    second = _build(_manifest(tmp_path), out)
    assert first["work"]["units computed"] == 70 and first["work"]["units reused"] == 0
    assert second["work"]["units reused"] == 70 and second["work"]["units computed"] == 0
    assert second["work"]["tokens encoded"] == 0 and second["work"]["tokens cached"] == first["work"]["tokens encoded"]
    assert _files(out) == before
    assert second["records"] == first["records"]  # reused units replay their counters
    fresh = _build(_manifest(tmp_path), out, mode="fresh")
    assert fresh["work"]["units computed"] == 70 and _files(out) == before


def test_a_new_tokenizer_checkpoint_retokenizes_only(tmp_path):
    out = str(tmp_path / "out")
    first = _build(_manifest(tmp_path, "fake-a"), out)
    second = _build(_manifest(tmp_path, "fake-b"), out)  # another checkpoint: another token cache key
    assert second["work"]["units reused"] == 70 and second["work"]["units computed"] == 0
    assert second["work"]["tokens encoded"] == first["work"]["tokens encoded"] > 0


def test_unit_identity_follows_size_and_mtime_of_local_files(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"1")
    b.write_bytes(b"1")
    step = units.Units(str(tmp_path / "cache")).for_step("s")
    key_a, key_b = step.key({"path": str(a)}), step.key({"path": str(b)})
    assert key_a != key_b and step.key({"path": str(a)}) == key_a
    a.write_bytes(b"22")
    assert step.key({"path": str(a)}) != key_a and step.key({"path": str(b)}) == key_b


def test_reuse_only_refuses_to_compute(tmp_path):
    step = units.Units(str(tmp_path / "cache"), mode="reuse_only").for_step("s")
    with pytest.raises(units.UnitNotCached):
        step.rows(1, lambda: [])


def test_remix_of_a_new_weight_is_a_full_build_without_sources_or_tokenizer(tmp_path):
    out, remixed, full = (str(tmp_path / n) for n in ("out", "remixed", "full"))
    _build(_manifest(tmp_path), out)
    new = _manifest(tmp_path)
    new.entries["clips"].weight = 2
    new.seed = 5
    options = PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"])
    summary = dataset.build_dataset(
        new,
        remixed,
        options,
        modules={"singles": fake_module, "clips": fake_module},
        tokenize=None,
        cache_dir=os.path.join(out, "cache"),
        remix=True,
    )
    work = summary["work"]
    assert work["units reused"] == work["units computed"] == work["tokens encoded"] == 0 < work["tokens cached"]
    _build(new, full)
    assert _files(remixed) == _files(full)
    other = _manifest(tmp_path)
    other.entries["clips"].options = {**other.entries["clips"].options, "n": 11}  # not built: remix refuses
    with pytest.raises(Exception, match="no finished build of entry 'clips'"):
        dataset.build_dataset(
            other,
            str(tmp_path / "x"),
            options,
            modules={"singles": fake_module, "clips": fake_module},
            cache_dir=os.path.join(out, "cache"),
            remix=True,
        )


def test_portable_runner_resumes_and_remixes_like_the_local_one(tmp_path):
    from uvd.core.options import pipeline_options

    portable = pipeline_options(["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK"])
    local_out, out = str(tmp_path / "local"), str(tmp_path / "portable")
    _build(_manifest(tmp_path), local_out)
    modules = {"singles": fake_module, "clips": fake_module}
    first = dataset.build_dataset(_manifest(tmp_path), out, portable, modules=modules, tokenize=FakeTokenize)
    second = dataset.build_dataset(_manifest(tmp_path), out, portable, modules=modules, tokenize=FakeTokenize)
    assert first["work"]["units computed"] == 70 and second["work"]["units reused"] == 70
    assert _files(out) == _files(local_out)
    remixed = str(tmp_path / "remixed")
    summary = dataset.build_dataset(
        _manifest(tmp_path), remixed, portable, modules=modules, cache_dir=os.path.join(out, "cache"), remix=True
    )
    assert summary["work"]["tokens encoded"] == 0 and _files(remixed) == _files(local_out)


def test_grouped_values_count_as_a_multiset_so_runner_order_does_not_miss():
    step = units.Units("/nowhere").for_step("s")
    assert step.key((("train", "cat"), [("a.jpg", "1"), ("b.jpg", "2")])) == step.key(
        (("train", "cat"), [("b.jpg", "2"), ("a.jpg", "1")])
    )
    assert step.key(("cat", ["a.jpg"])) != step.key(("cat", ["b.jpg"]))
