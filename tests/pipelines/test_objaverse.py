"""The Objaverse source stage: windows, splits, uid resolution, failure rows, and the Beam stage."""

from __future__ import annotations

import glob
import gzip
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.localfilesystem import LocalFileSystem

from uvd import schema
from uvd.config import ConfigError, from_dict
from uvd.core.outputs import FAILURES, IMAGES, SENTENCES
from uvd.sources.objaverse import pipeline as ov
from uvd.transforms.image import decode_png

SAMPLES = Path(__file__).resolve().parents[2] / "uvd" / "sample" / "meshes"
UID = "0123456789abcdef0123456789abcdef"


# --- pure helpers -----------------------------------------------------------------------------------
def test_default_windows_wrap_the_orbit_and_cover_each_view_twice():
    windows = ov.view_windows(24, 16, 8)
    assert windows == [list(range(16)), list(range(8, 24)), list(range(16, 24)) + list(range(8))]
    assert np.bincount(np.concatenate(windows), minlength=24).tolist() == [2] * 24


@pytest.mark.parametrize(
    "window,stride,wrap,starts",
    [
        (16, 8, False, [0, 8]),
        (16, 24, True, [0]),
        (16, 4, False, [0, 4, 8]),
        (12, 12, True, [0, 12]),
    ],
)
def test_window_variants(window, stride, wrap, starts):
    windows = ov.view_windows(24, window, stride, wrap)
    assert [w[0] for w in windows] == starts
    assert all(len(w) == window <= schema.MAX_IMAGES_PER_SENTENCE for w in windows)
    assert all((b - a) % 24 == 1 for w in windows for a, b in zip(w, w[1:]))  # consecutive views


def test_split_by_uid_is_deterministic_with_the_configured_fraction():
    uids = [f"{i:032x}" for i in range(5000)]
    splits = [ov.split_for(u, 0.16) for u in uids]
    assert splits == [ov.split_for(u, 0.16) for u in uids]
    assert abs(splits.count("validation") / len(uids) - 0.16) < 0.02  # the vocabulary of every source
    assert {ov.split_for(u, 0.0) for u in uids[:100]} == {"train"}
    assert {ov.split_for(u, 1.0) for u in uids[:100]} == {"validation"}
    # A larger fraction only moves objects train -> validation, never back.
    assert all(ov.split_for(u, 0.3) == "validation" for u, s in zip(uids, splits) if s == "validation")


def test_entries_and_uid_resolution(tmp_path):
    text = f"# objects\n{UID}\n\n  a/b/{UID}.glb  \nmeshes/chair.obj\n"
    assert list(ov.list_entries(text)) == [UID, f"a/b/{UID}.glb", "meshes/chair.obj"]
    assert list(ov.list_entries(text + "/abs/x.glb\n", "/lists")) == [
        UID,
        f"/lists/a/b/{UID}.glb",
        "/lists/meshes/chair.obj",
        "/abs/x.glb",
    ]
    assert ov.is_uid(UID) and not ov.is_uid("chair")
    folder = tmp_path / "hf-objaverse-v1" / "glbs" / "000-017"
    folder.mkdir(parents=True)
    shutil.copy(SAMPLES / "house.glb", folder / f"{UID}.glb")
    assert ov.resolve_uid(UID, str(tmp_path)) == str(folder / f"{UID}.glb")
    assert ov.resolve_uid("f" * 32, str(tmp_path)) is None


class _BucketFS(LocalFileSystem):
    """A stand-in object store (`uvdtest://...` -> a local folder) to test remote paths offline."""

    root = ""

    @classmethod
    def scheme(cls) -> str:
        return "uvdtest"

    def join(self, base, *paths):
        return "/".join([base.rstrip("/"), *paths])

    def _local(self, path):
        return os.path.join(self.root, path.removeprefix("uvdtest://"))

    def open(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO):
        return super().open(self._local(path), mime_type, compression_type)

    def match(self, patterns, limits=None):
        return super().match([self._local(p) for p in patterns], limits)


def test_remote_cache_resolves_uids_by_its_index_and_reads_bytes(tmp_path, render_object):
    folder = tmp_path / "cache" / "hf-objaverse-v1"
    (folder / "glbs" / "000-042").mkdir(parents=True)
    shutil.copy(SAMPLES / "crate.glb", folder / "glbs" / "000-042" / f"{UID}.glb")
    (folder / "object-paths.json.gz").write_bytes(gzip.compress(json.dumps({UID: f"glbs/000-042/{UID}.glb"}).encode()))
    _BucketFS.root = str(tmp_path)
    path = ov.resolve_uid(UID, "uvdtest://cache")
    assert path == f"uvdtest://cache/hf-objaverse-v1/glbs/000-042/{UID}.glb"
    assert ov.resolve_uid("a" * 32, "uvdtest://cache") is None
    fn = ov.RenderObject(ov.Config(input="uids.txt", objaverse_cache="uvdtest://cache"))
    fn.renderer = render_object.renderer
    out = _by_tag(fn(UID))  # loaded from bytes, not a path
    assert len(out[IMAGES]) == 24 and out[SENTENCES][0]["group"] == UID


def test_pattern_for_directories_and_globs():
    assert ov.pattern_for("/data/objs") == "/data/objs/**"
    assert ov.pattern_for("/data/objs/*/x*.glb") == "/data/objs/*/x*.glb"
    assert ov.pattern_for("/data/one.obj") == "/data/one.obj"


@pytest.mark.parametrize(
    "options,field",
    [
        ({"window": 17}, "window"),
        ({"num_views": 12, "window": 16}, "window"),
        ({"yfov_deg": 60.0}, "yfov_deg"),
        ({"radius_min": 0.9}, "yfov_deg"),
        ({"platform": "glx"}, "platform"),
        ({"test_fraction": 1.5}, "test_fraction"),
        ({"background": [0, 0]}, "background"),
        ({"stride": 0}, "stride"),
    ],
)
def test_config_rejects_bad_options(options, field):
    with pytest.raises(ConfigError, match=field):
        from_dict(ov.Config, {"input": "x", **options}, where="objaverse")


# --- one object -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def render_object():
    fn = ov.RenderObject(ov.Config(input=str(SAMPLES)))
    fn.setup()
    yield fn
    fn.teardown()


def _by_tag(rows):
    out = {IMAGES: [], SENTENCES: [], FAILURES: []}
    for tag, row in rows:
        out[tag].append(row)
    return out


def test_one_object_gives_24_images_and_3_sentences(render_object):
    out = _by_tag(render_object(str(SAMPLES / "house.glb")))
    assert len(out[IMAGES]) == 24 and not out[FAILURES]
    provenance = [json.loads(r["provenance"]) for r in out[IMAGES]]
    assert [p["azimuth_deg"] for p in provenance] == [15.0 * i for i in range(24)]
    assert len({(p["elevation_deg"], p["radius"]) for p in provenance}) == 1
    for row in out[IMAGES][:3]:
        pixels = decode_png(row["image"])
        assert pixels.shape == (256, 256, 3) and row["image_id"] == schema.image_id_for(pixels)
    ids = [r["image_id"] for r in out[IMAGES]]
    assert len(out[SENTENCES]) == 3
    for s, window in zip(out[SENTENCES], ov.view_windows(24, 16, 8)):
        assert s["kind"] == "sequence" and s["source"] == "objaverse" and s["group"] == "house.glb"
        assert s["image_ids"] == [ids[i] for i in window] and s["split"] == ov.split_for("house.glb", 0.16)
    # Same object, same seed: same ids (a rerun dedupes); another seed moves the camera.
    again = _by_tag(render_object(str(SAMPLES / "house.glb")))
    assert [s["sentence_id"] for s in again[SENTENCES]] == [s["sentence_id"] for s in out[SENTENCES]]
    assert [r["image_id"] for r in again[IMAGES]] == ids


@pytest.mark.parametrize(
    "entry,data,reason,status",
    [
        ("truncated.glb", (SAMPLES / "crate.glb").read_bytes()[:3000], "unreadable", "failed"),
        ("empty.obj", b"# nothing here\n", "no_geometry", "failed"),
        ("nan.obj", b"v 0 0 0\nv 1 nan 0\nv 0 1 0\nf 1 2 3\n", "nan_vertices", "failed"),
        ("missing.glb", None, "not_found", "failed"),
        ("scan.ply", b"ply\n", "unreadable", "failed"),
        ("scan.fbx", b"Kaydara FBX Binary", "unsupported_format", "skipped"),
        ("notes.md", b"# not a mesh", "unsupported_format", "skipped"),
        ("crate.mtl", b"newmtl a\n", "mesh_companion", "skipped"),
        (UID, None, "not_found", "failed"),
    ],
)
def test_broken_inputs_become_failure_rows(tmp_path, render_object, entry, data, reason, status):
    path = tmp_path / entry
    if data is not None:
        path.write_bytes(data)
    element = entry if ov.is_uid(entry) else str(path)
    out = _by_tag(render_object(element))
    assert not out[IMAGES] and not out[SENTENCES]
    [failure] = out[FAILURES]
    assert (failure["record_id"], failure["reason"], failure["status"]) == (element, reason, status)
    assert failure["source"] == "objaverse" and failure["stage"] == "objaverse"


@pytest.mark.parametrize(
    "limits,reason", [({"max_faces": 10}, "too_many_faces"), ({"max_file_mb": 0.001}, "file_too_large")]
)
def test_huge_object_is_filtered_not_failed(limits, reason):
    fn = ov.RenderObject(ov.Config(input="unused", **limits))
    [(tag, row)] = list(fn(str(SAMPLES / "crate.glb")))
    assert tag == FAILURES and (row["reason"], row["status"]) == (reason, "filtered")
    fn.teardown()


# --- the Beam stage ---------------------------------------------------------------------------------
def _read(folder: Path, table: str) -> list[dict]:
    files = glob.glob(str(folder / table / "*.parquet"))
    return pq.read_table(files).to_pylist() if files else []


@pytest.mark.slow
def test_stage_on_a_list_of_paths_uids_and_broken_files(tmp_path):
    cache = tmp_path / "cache" / "hf-objaverse-v1" / "glbs" / "000-001"
    cache.mkdir(parents=True)
    shutil.copy(SAMPLES / "house.glb", cache / f"{UID}.glb")
    (tmp_path / "broken.glb").write_bytes((SAMPLES / "house.glb").read_bytes()[:999])
    missing_uid = "e" * 32
    entries = [str(SAMPLES / "torus.obj"), UID, missing_uid, "broken.glb"]  # relative to the list
    (tmp_path / "objects.txt").write_text("# mixed list\n" + "\n".join(entries) + "\n")
    out = tmp_path / "out"
    rc = ov.run(
        [
            "--input",
            str(tmp_path / "objects.txt"),
            "--output",
            str(out),
            "--objaverse_cache",
            str(tmp_path / "cache"),
            "--stride",
            "24",
            "--validation_fraction",
            "0.5",
            "--direct_running_mode=in_memory",
            "--direct_num_workers=1",
        ]
    )
    assert rc == 0
    images, sentences, failures = (_read(out, t) for t in ("images", "sentences", "failures"))
    assert len(images) == 48 and len({r["image_id"] for r in images}) == 48
    torus = ov.content_id(str(SAMPLES / "torus.obj"))  # a path in a list: its content names it
    assert sorted(s["group"] for s in sentences) == sorted([torus, UID])  # stride 24: one each
    assert all(len(s["image_ids"]) == 16 and s["split"] == ov.split_for(s["group"], 0.5) for s in sentences)
    assert {i for s in sentences for i in s["image_ids"]} <= {r["image_id"] for r in images}
    assert sorted((f["record_id"], f["reason"]) for f in failures) == sorted(
        [(missing_uid, "not_found"), (str(tmp_path / "broken.glb"), "unreadable")]
    )


@pytest.mark.slow
def test_source_transform_on_the_sample_directory():
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from uvd.core.options import pipeline_options

    options = pipeline_options(["--direct_running_mode=in_memory", "--direct_num_workers=1"])
    with TestPipeline(options=options) as p:
        out = p | ov.source_transform({"input": str(SAMPLES), "window": 12, "stride": 12})
        assert_that(
            out.sentences | beam.Map(lambda s: (s["group"], len(s["image_ids"]))),
            equal_to([(g, 12) for g in ("crate.glb", "house.glb", "torus.obj") for _ in range(2)]),
            label="sent",
        )
        assert_that(out.images | "N" >> beam.combiners.Count.Globally(), equal_to([72]), label="img")
        # Every file of the folder is an input: the README and the script are skipped rows, not lost.
        assert_that(
            out.failures | beam.Map(lambda f: (f["record_id"].rsplit("/", 1)[-1], f["reason"], f["status"])),
            equal_to(
                [("README.md", "unsupported_format", "skipped"), ("make_meshes.py", "unsupported_format", "skipped")]
            ),
            label="fail",
        )


def test_source_transform_checks_options_first():
    with pytest.raises(ConfigError, match="sources.objaverse.options.window"):
        ov.source_transform({"input": str(SAMPLES), "window": 20})


# --- ids and formats (issue 15) ---------------------------------------------------------------------
def _small(input_: str, **kw) -> ov.RenderObject:
    return ov.RenderObject(ov.Config(input=input_, num_views=4, window=4, stride=4, **kw))


def test_same_named_meshes_in_a_tree_are_different_objects(tmp_path, render_object):
    """ShapeNet-style `a/model.obj`, `b/model.obj`, and `duck.glb` beside `duck.obj`: four objects."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    shutil.copy(SAMPLES / "torus.obj", tmp_path / "a" / "model.obj")
    (tmp_path / "b" / "model.obj").write_bytes(b"v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\nf 1 3 4\n")
    shutil.copy(SAMPLES / "house.glb", tmp_path / "duck.glb")
    shutil.copy(SAMPLES / "torus.obj", tmp_path / "duck.obj")
    fn = _small(str(tmp_path))
    fn.renderer = render_object.renderer
    paths = [tmp_path / "a" / "model.obj", tmp_path / "b" / "model.obj", tmp_path / "duck.glb", tmp_path / "duck.obj"]
    outs = [_by_tag(fn(str(p))) for p in paths]
    groups = [o[SENTENCES][0]["group"] for o in outs]
    assert groups == ["a/model.obj", "b/model.obj", "duck.glb", "duck.obj"]
    sentence_ids = [o[SENTENCES][0]["sentence_id"] for o in outs]
    assert len(set(sentence_ids)) == 4
    # Same bytes at a/model.obj and duck.obj, yet two objects: different cameras, different ids.
    assert outs[0][IMAGES][0]["provenance"] != outs[3][IMAGES][0]["provenance"]
    # Stable: the same tree listed again (from a glob of it, too) gives the same ids.
    again = _small(str(tmp_path / "*" / "*.obj"))
    again.renderer = render_object.renderer
    assert _by_tag(again(str(paths[1])))[SENTENCES][0]["sentence_id"] == sentence_ids[1]


def test_list_paths_get_content_ids(tmp_path):
    (tmp_path / "x.obj").write_bytes(b"v 0 0 0\n")
    (tmp_path / "y.obj").write_bytes(b"v 0 0 0\n")
    (tmp_path / "z.obj").write_bytes(b"v 1 0 0\n")
    fn = ov.RenderObject(ov.Config(input=str(tmp_path / "objects.txt")))
    ids = [fn.object_id(str(tmp_path / n), str(tmp_path / n)) for n in ("x.obj", "y.obj", "z.obj")]
    assert ids[0] == ids[1] != ids[2] and ids[0].startswith("blake2b-") and not ov.is_uid(ids[0])
    assert ids[0] == ov.content_id(b"v 0 0 0\n")
    assert ov.input_root("/d/objs/*/x*.glb") == "/d/objs" and ov.input_root("/d/one.ply") == "/d"
    assert ov.relative_id("/d/objs/a/m.obj", "/d/objs") == "a/m.obj" and ov.relative_id("/e/m.obj", "/d") is None
    assert ov.relative_id("gs://b/objs/a/m.obj", "gs://b/objs") == "a/m.obj"


@pytest.mark.parametrize("file_type", ["ply", "stl"])
def test_ply_and_stl_meshes_render(tmp_path, render_object, file_type):
    import trimesh

    path = tmp_path / f"box.{file_type}"
    path.write_bytes(trimesh.creation.box().export(file_type=file_type))
    fn = _small(str(tmp_path))
    fn.renderer = render_object.renderer
    out = _by_tag(fn(str(path)))
    assert not out[FAILURES] and len(out[IMAGES]) == 4 and out[SENTENCES][0]["group"] == f"box.{file_type}"
    pixels = decode_png(out[IMAGES][0]["image"])
    assert (pixels != 255).any(axis=2).mean() > 0.05  # the box covers part of the view
