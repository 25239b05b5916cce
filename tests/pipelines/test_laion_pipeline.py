"""The LAION stage: reader, filters, per-record logic, config, and the Beam stage end to end."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.http_server import Reply, http_server  # noqa: F401 - the fixture
from uvd.config import ConfigError, from_dict
from uvd.core.outputs import FAILURES, IMAGES, SENTENCES
from uvd.core.stage import parse_stage_args
from uvd.sources.laion import pipeline as laion
from uvd.sources.laion.downloader import DownloadConfig
from uvd.sources.laion.filters import FilterConfig, metadata_rejection, size_rejection
from uvd.sources.laion.reader import column_map, metadata_columns, normalize_row
from uvd.sources.laion.record import LaionRecord, RenderConfig
from uvd.transforms.image import decode_png

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "uvd" / "sample" / "laion" / "laion_sample.parquet"
PHOTOS = ROOT / "uvd" / "sample" / "images"
LOCAL = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


def _read(folder: Path, table: str) -> list[dict]:
    return pq.read_table(folder / table).to_pylist()


# --- reader -------------------------------------------------------------------------------------
def test_normalize_row_tolerates_missing_and_renamed_columns():
    row = normalize_row({"url": "http://x/a.jpg", "caption": "a cat", "punsafe": float("nan"), "other": 1})
    assert row == {
        "url": "http://x/a.jpg",
        "text": "a cat",
        "width": None,
        "height": None,
        "similarity": None,
        "hash": None,
        "punsafe": None,
        "pwatermark": None,
    }
    assert column_map(["URL", "TEXT", "WIDTH", "HEIGHT", "pwatermark"]) == {
        "url": "URL",
        "text": "TEXT",
        "width": "WIDTH",
        "height": "HEIGHT",
        "pwatermark": "pwatermark",
    }


def test_metadata_columns_needs_a_url_column(tmp_path):
    pq.write_table(pa.table({"TEXT": ["a"]}), tmp_path / "m.parquet")
    with pytest.raises(ValueError, match="URL"):
        metadata_columns(str(tmp_path / "m.parquet"))
    with pytest.raises(FileNotFoundError):
        metadata_columns(str(tmp_path / "none-*.parquet"))
    pq.write_table(pa.table({"url": ["u"], "punsafe": [0.1]}), tmp_path / "n.parquet")
    assert metadata_columns(str(tmp_path / "n.parquet")) == {"url": "url", "punsafe": "punsafe"}


# --- filters ------------------------------------------------------------------------------------
def test_filters_from_config():
    cfg = FilterConfig(min_side=100, max_aspect_ratio=2.0, max_punsafe=0.5, max_pwatermark=0.8)
    ok = {"width": 300, "height": 200, "punsafe": 0.1, "pwatermark": 0.1}
    assert metadata_rejection(ok, cfg) is None
    assert metadata_rejection({**ok, "punsafe": 0.51}, cfg)[0] == "filtered_punsafe"
    assert metadata_rejection({**ok, "pwatermark": 0.9}, cfg)[0] == "filtered_pwatermark"
    assert metadata_rejection({**ok, "width": 99}, cfg)[0] == "too_small"
    assert metadata_rejection({**ok, "width": 401}, cfg)[0] == "filtered_aspect"
    assert metadata_rejection({"width": None, "height": None, "punsafe": None, "pwatermark": None}, cfg) is None
    assert metadata_rejection({**ok, "punsafe": 0.99}, FilterConfig(max_punsafe=None)) is None
    assert size_rejection(200, 100, cfg) is None and size_rejection(201, 100, cfg)[0] == "filtered_aspect"


# --- config -------------------------------------------------------------------------------------
def test_config_rejects_bad_values_naming_the_field():
    with pytest.raises(ConfigError, match="mode"):
        from_dict(laion.Config, {"input": "x.parquet", "mode": "pad"})
    with pytest.raises(ConfigError, match="max_punsafe"):
        from_dict(laion.Config, {"input": "x.parquet", "max_punsafe": 1.5})
    with pytest.raises(ConfigError, match="allowed_schemes"):
        from_dict(laion.Config, {"input": "x.parquet", "allowed_schemes": ["ftp"]})
    with pytest.raises(ConfigError, match="unknown option"):
        laion.source_transform({"input": "x.parquet", "min_sdie": 3})
    cfg = from_dict(laion.Config, {"input": "/data/laion/part-*.parquet", "max_punsafe": None})
    assert cfg.download().base_dir == "/data/laion" and cfg.filters().max_punsafe is None
    assert from_dict(laion.Config, {"input": "gs://b/laion/*.parquet"}).download().base_dir == "gs://b/laion"


def test_cli_flags_become_a_typed_config():
    cfg, args, options = parse_stage_args(
        laion.STAGE_SPEC,
        [
            "--input",
            laion.SAMPLE_INPUT,
            "--output",
            "o",
            "--max_punsafe",
            "none",
            "--min_side",
            "64",
            "--allowed_schemes",
            "http,https",
            "--honour_opt_out",
            "false",
            "--runner",
            "DirectRunner",
        ],
    )
    assert (cfg.input, args.output, cfg.max_punsafe, cfg.min_side) == (laion.SAMPLE_INPUT, "o", None, 64)
    assert cfg.allowed_schemes == ["http", "https"] and cfg.honour_opt_out is False
    assert cfg.max_pwatermark == 0.8  # untouched defaults stay the dataclass's
    assert options.get_all_options()["runner"] == "DirectRunner"
    with pytest.raises(ConfigError, match="mode"):
        parse_stage_args(laion.STAGE_SPEC, ["--output", "o", "--mode", "stretch"])


def test_metadata_that_is_not_laion_parquet_fails_before_any_work(tmp_path):
    """Not Parquet, or Parquet without a URL column: a ConfigError naming the input (the CLI exits 2)."""
    text = tmp_path / "urls.parquet"
    text.write_text("http://example.com/a.jpg\n")
    no_url = tmp_path / "no_url.parquet"
    pq.write_table(pa.table({"caption": ["a cat"]}), no_url)
    for path, why in ((text, "Parquet"), (no_url, "no URL column")):
        with pytest.raises(ConfigError, match=f"laion.input: .*{why}"):
            parse_stage_args(laion.STAGE_SPEC, ["--input", str(path), "--output", str(tmp_path / "o")])
        with pytest.raises(ConfigError, match=f"sources.laion.options.input: .*{why}"):
            laion.source_transform({"input": str(path)})


# --- one record, no Beam ---------------------------------------------------------------------
def test_debug_one_url_writes_its_image(tmp_path, http_server):
    ok = http_server.add("/hopper.jpg", Reply(200, (PHOTOS / "grace_hopper.jpg").read_bytes()))
    assert laion.run(["--output", str(tmp_path), "--url", ok, "--allow_private_addresses", "true"]) == 0
    (jpg,) = tmp_path.glob("*.jpg")
    assert decode_png(jpg.read_bytes()).shape == (256, 256, 3)
    assert (
        laion.run(
            ["--output", str(tmp_path), "--url", http_server.add("/x", Reply(404)), "--allow_private_addresses", "true"]
        )
        == 1
    )


def _record(**download) -> LaionRecord:
    rec = LaionRecord(
        DownloadConfig(read_timeout_s=1.0, backoff_s=0.01, allow_private_addresses=True, **download),
        RenderConfig(),
        FilterConfig(),
    )
    rec.setup()
    return rec


def _row(url, **kw):
    return {
        "url": url,
        "text": "t",
        "width": None,
        "height": None,
        "similarity": 0.3,
        "hash": 1,
        "punsafe": 0.0,
        "pwatermark": 0.0,
        **kw,
    }


def test_record_turns_a_photo_into_an_image_and_a_single_sentence(http_server):
    body = (PHOTOS / "grace_hopper.jpg").read_bytes()
    url = http_server.add("/hopper.jpg", Reply(200, body))
    rows = list(_record()(_row(url)))
    assert [tag for tag, _ in rows] == [IMAGES, SENTENCES]
    image, sentence = rows[0][1], rows[1][1]
    px = decode_png(image["image"])
    assert px.shape == (256, 256, 3) and px.std() > 20
    assert sentence["kind"] == "single" and sentence["source"] == "laion"
    assert sentence["image_ids"] == [image["image_id"]] and sentence["group"] == image["image_id"]
    prov = json.loads(image["provenance"])
    assert prov["url"] == url and (prov["width"], prov["height"]) == (512, 600)


def test_same_photo_at_two_urls_gives_one_image_id(http_server):
    body = (PHOTOS / "coffee.jpg").read_bytes()
    rec = _record()
    a = dict(rec(_row(http_server.add("/a.jpg", Reply(200, body)))))
    b = dict(rec(_row(http_server.add("/b.jpg", Reply(200, body)))))
    assert a[IMAGES]["image_id"] == b[IMAGES]["image_id"]
    assert a[SENTENCES]["sentence_id"] == b[SENTENCES]["sentence_id"]


def _jpeg_of_size(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "reply, reason, status",
    [
        (Reply(404), "http_404", "failed"),
        (Reply(200, b"<html>hello</html>"), "not_an_image", "failed"),
        (Reply(200, (PHOTOS / "rocket.jpg").read_bytes()[:5000]), "truncated", "failed"),
        (Reply(200, (PHOTOS / "rocket.jpg").read_bytes(), {"X-Robots-Tag": "noimageai"}), "opted_out", "filtered"),
        (Reply(200, _jpeg_of_size(60, 300)), "too_small", "filtered"),  # real size, metadata had none
        (Reply(200, _jpeg_of_size(1000, 200)), "filtered_aspect", "filtered"),
    ],
)
def test_record_failures_are_rows_with_reasons(http_server, reply, reason, status):
    url = http_server.add("/x", reply)
    rows = list(_record()(_row(url)))
    assert len(rows) == 1 and rows[0][0] == FAILURES
    failure = rows[0][1]
    assert (failure["reason"], failure["status"], failure["record_id"]) == (reason, status, url)


@pytest.mark.parametrize("mode, red_kept", [("crop", False), ("squash", True)])
def test_render_mode_reaches_the_pixels(http_server, mode, red_kept):
    arr = np.full((200, 500, 3), 128, np.uint8)
    arr[:, :100] = (255, 0, 0)  # only the sides hold red: a centre crop drops it, squash keeps it
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    rec = LaionRecord(DownloadConfig(allow_private_addresses=True), RenderConfig(size=64, mode=mode), FilterConfig())
    rows = dict(rec(_row(http_server.add("/wide.png", Reply(200, buf.getvalue())))))
    px = decode_png(rows[IMAGES]["image"])
    assert px.shape == (64, 64, 3)
    assert bool((px[..., 0] > 200).any() and (px[..., 1] < 50).any()) is red_kept


def test_row_without_url_fails_with_its_position_as_id():
    rows = list(_record()(_row(None, hash=42, _position="m.parquet#3")))
    assert rows[0][1]["reason"] == "missing_url" and rows[0][1]["record_id"] == "m.parquet#3"


def test_metadata_filter_skips_the_download(http_server):
    url = http_server.add("/unsafe.jpg", Reply(200, (PHOTOS / "moon.jpg").read_bytes()))
    rows = list(_record()(_row(url, punsafe=0.99)))
    assert rows[0][1]["reason"] == "filtered_punsafe"
    assert http_server.hits["/unsafe.jpg"] == 0


# --- the Beam stage end to end --------------------------------------------------------------------
@pytest.mark.slow
def test_stage_on_the_embedded_sample_reconciles(tmp_path):
    assert (
        laion.run(["--input", str(SAMPLE), "--output", str(tmp_path), "--allowed_schemes", "http,https,file", *LOCAL])
        == 0
    )
    inputs = pq.read_table(SAMPLE).num_rows
    images, sentences, failures = (_read(tmp_path, t) for t in ("images", "sentences", "failures"))
    assert inputs == len(sentences) + len(failures)
    reasons = Counter(f["reason"] for f in failures)
    assert reasons == Counter(
        {
            "file_not_found": 1,
            "filtered_punsafe": 1,
            "filtered_pwatermark": 1,
            "filtered_aspect": 1,
            "not_an_image": 1,
            "truncated": 1,
            "bad_scheme": 1,
            "missing_url": 1,
            "too_small": 1,
        }
    )
    assert {f["record_id"] for f in failures if f["reason"] == "missing_url"} == {f"{SAMPLE.name}#{inputs - 1}"}
    assert {f["status"] for f in failures if f["reason"].startswith("filtered")} == {"filtered"}
    # 22 photos, one too small, plus one duplicate URL of the cat: 22 sentences, 21 unique images.
    ids = {i["image_id"] for i in images}
    assert len(images) == len(ids) == 21
    assert len(sentences) == 22 and len({s["sentence_id"] for s in sentences}) == 21
    assert {s["image_ids"][0] for s in sentences} == ids
    for image in images[:3]:
        assert decode_png(image["image"]).shape == (256, 256, 3)
        assert json.loads(image["provenance"])["url"].startswith("file:")  # traceable to its URL


@pytest.mark.slow
def test_stage_over_loopback_http(tmp_path, http_server):
    photo = (PHOTOS / "astronaut.jpg").read_bytes()
    urls = {
        "ok": http_server.add("/ok.jpg", Reply(200, photo)),
        "retry": http_server.add("/retry.jpg", Reply(500), Reply(200, (PHOTOS / "chelsea_cat.jpg").read_bytes())),
        "gone": http_server.add("/gone.jpg", Reply(404)),
        "noai": http_server.add("/noai.jpg", Reply(200, photo, {"X-Robots-Tag": "noai"})),
        "html": http_server.add("/page.jpg", Reply(200, b"<html></html>")),
    }
    meta = tmp_path / "meta.parquet"
    pq.write_table(pa.table({"url": list(urls.values())}), meta)  # lower-case URL, no other columns
    out = tmp_path / "out"
    assert (
        laion.run(
            [
                "--input",
                str(meta),
                "--output",
                str(out),
                "--backoff_s",
                "0.01",
                "--allow_private_addresses",
                "true",
                *LOCAL,
            ]
        )
        == 0
    )
    sentences, failures = _read(out, "sentences"), _read(out, "failures")
    assert len(sentences) == 2 and len(failures) == 3
    assert {f["record_id"]: f["reason"] for f in failures} == {
        urls["gone"]: "http_404",
        urls["noai"]: "opted_out",
        urls["html"]: "not_an_image",
    }
    assert http_server.hits["/retry.jpg"] == 2
